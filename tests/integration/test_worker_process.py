"""A real worker process over a real ZeroMQ socket; the test plays the hub (a ROUTER on ipc)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from vehicle_host.wire import API_LEVEL, Envelope, decode, encode

pytestmark = pytest.mark.integration

SOURCES = {
    "app.js": "App({ onLaunch(o) { console.log('launch ' + o.path); } });\n",
    "pages/index/index.js": (
        "Page({\n"
        "  data: { n: 0 },\n"
        "  onLoad(q) { this.setData({ q: q.vin }); },\n"
        "  onReady() { console.log('ready'); },\n"
        "  tap() { this.setData({ n: this.data.n + 1 }); },\n"
        "  go() { fc.navigateTo({ url: '/pages/b/b?x=2', success: (r) => console.log(r.errMsg) }); },\n"
        "  ask() { fc.vehicle.readVin({ ecu: 1 }).then((r) => this.setData({ vin: r.vin })); },\n"
        "  later() { setTimeout(() => this.setData({ late: true }), 50); },\n"
        "  spin() { while (true) {} },\n"
        "  fmt() { this.setData({ t: require('../../utils/fmt').two(7) }); },\n"
        "  idle() { wx.requestIdleCallback(() => this.setData({ idle: true })); },\n"
        "});\n"
    ),
    "utils/fmt.js": "exports.two = (n) => (n < 10 ? '0' : '') + n;\n",
    "pages/b/b.js": "Page({ data: {}, onLoad(q) { this.setData({ x: q.x }); } });\n",
}


class FakeHubSocket:
    def __init__(self, path: Path) -> None:
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(f"ipc://{path}")
        self.peer = b""
        self.ids = 0

    def recv(self, type_: str, timeout: float = 10.0, **match: Any) -> Envelope:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {type_} {match} arrived"
            if not self.sock.poll(int(left * 1000)):
                continue
            peer, data = self.sock.recv_multipart()
            self.peer = peer
            message = decode(data)
            if message.type == type_ and all(message.payload.get(k) == v for k, v in match.items()):
                return message

    def send(self, type_: str, payload: dict[str, Any]) -> None:
        self.ids += 1
        self.sock.send_multipart([self.peer, encode(Envelope(type_, self.ids, "hub", "app:x", payload))])


@pytest.fixture
def worker(short_dir: Path) -> Iterator[tuple[FakeHubSocket, subprocess.Popen[bytes]]]:
    hub = FakeHubSocket(short_dir / "w.sock")
    process = subprocess.Popen(
        [sys.executable, "-m", "vehicle_host.logic_worker", "--endpoint", f"ipc://{short_dir / 'w.sock'}"],
        stdin=subprocess.DEVNULL,
    )
    try:
        yield hub, process
    finally:
        process.kill()
        process.wait(10)
        hub.sock.close(0)


def start(hub: FakeHubSocket, **limits: int) -> None:
    hello = hub.recv("hello")
    assert hello.payload == {"role": "worker", "api_level": API_LEVEL}  # pooled: no app id yet
    hub.send(
        "worker.start",
        {
            "app_id": "org.test.proc",
            "sources": SOURCES,
            "config": {"pages": ["pages/index/index", "pages/b/b"]},
            "route": "pages/index/index",
            "page_id": 1,
            "query": {"vin": "WVW1"},
            "system": {"brand": "Test"},
            "apis": ["vehicle.readVin"],
            "storage": {},
            "limits": {"time_ms": 300, **limits},
        },
    )


def test_start_render_events_navigation_calls_and_timers(worker: tuple[FakeHubSocket, Any]) -> None:
    hub, _ = worker
    start(hub)
    assert hub.recv("log").payload["message"] == "launch pages/index/index"
    rendered = hub.recv("page.render")
    assert rendered.payload == {"page_id": 1, "data": {"n": 0}}
    assert rendered.source == "app:org.test.proc"
    assert hub.recv("page.setData").payload == {"page_id": 1, "diff": {"q": "WVW1"}}
    hub.send("page.painted", {"page_id": 1})
    assert hub.recv("log").payload["message"] == "ready"

    hub.send("page.event", {"page_id": 1, "handler": "tap", "event": {"type": "tap"}})
    assert hub.recv("page.setData").payload["diff"] == {"n": 1}

    hub.send("page.event", {"page_id": 1, "handler": "go", "event": {}})
    nav = hub.recv("nav.request")
    assert nav.payload["url"] == "/pages/b/b?x=2"
    hub.send(
        "nav.result",
        {
            "call_id": nav.payload["call_id"],
            "ok": True,
            "opened": {"page_id": 2, "route": "pages/b/b", "query": {"x": "2"}},
        },
    )
    assert hub.recv("page.render").payload["page_id"] == 2
    assert hub.recv("log").payload["message"] == "navigateTo:ok"  # the turn's setData goes out last
    assert hub.recv("page.setData", page_id=2).payload["diff"] == {"x": "2"}

    hub.send("page.event", {"page_id": 1, "handler": "ask", "event": {}})
    call = hub.recv("api.call")
    assert (call.payload["method"], call.payload["args"]) == ("vehicle.readVin", {"ecu": 1})
    hub.send("api.result", {"call_id": call.payload["call_id"], "ok": True, "result": {"vin": "WVWZZZ"}})
    assert hub.recv("page.setData", page_id=1).payload["diff"] == {"vin": "WVWZZZ"}

    hub.send("page.event", {"page_id": 1, "handler": "later", "event": {}})
    assert hub.recv("page.setData", page_id=1).payload["diff"] == {"late": True}


def test_heartbeats_while_idle_and_a_runaway_handler_is_reported(worker: tuple[FakeHubSocket, Any]) -> None:
    hub, process = worker
    start(hub)
    hub.recv("heartbeat", timeout=5)
    hub.send("page.event", {"page_id": 1, "handler": "spin", "event": {}})
    error = hub.recv("script.error")
    assert "longer than 300 ms" in error.payload["message"]
    assert (error.payload["file"], error.payload["line"]) == ("pages/index/index.js", 9)
    hub.send("page.event", {"page_id": 1, "handler": "tap", "event": {}})
    assert hub.recv("page.setData").payload["diff"] == {"n": 1}
    assert process.poll() is None


def test_api_calls_time_out_from_the_workers_own_clock(worker: tuple[FakeHubSocket, Any]) -> None:
    hub, _ = worker
    start(hub, call_timeout_ms=300)
    hub.send("page.event", {"page_id": 1, "handler": "ask", "event": {}})
    call = hub.recv("api.call")
    cancel = hub.recv("api.cancel", timeout=5)
    assert cancel.payload == {"call_id": call.payload["call_id"]}


def test_garbage_from_the_hub_is_dropped(worker: tuple[FakeHubSocket, Any]) -> None:
    hub, process = worker
    start(hub)
    hub.recv("page.render")
    hub.sock.send_multipart([hub.peer, b"\xff garbage"])
    hub.send("hub.stats", {})  # not a message for workers
    hub.send("page.event", {"page_id": 1, "handler": "tap", "event": {}})
    assert hub.recv("page.setData", page_id=1, diff={"n": 1})
    assert process.poll() is None


def test_required_modules_and_idle_callbacks_in_a_real_worker(worker: tuple[FakeHubSocket, Any]) -> None:
    hub, _ = worker
    start(hub)
    hub.recv("page.render")
    hub.send("page.event", {"page_id": 1, "handler": "fmt", "event": {}})
    assert hub.recv("page.setData", page_id=1, diff={"t": "07"})
    hub.send("page.event", {"page_id": 1, "handler": "idle", "event": {}})
    assert hub.recv("page.setData", page_id=1, diff={"idle": True})
