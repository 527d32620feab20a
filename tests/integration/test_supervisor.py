"""The supervisor with a real broker: pooled and fresh workers, liveness, crash back-off, accounting,
rate limits. Real sandboxed workers where the behaviour is the worker's own; a small stand-in
script speaking the wire protocol where a test needs a worker to misbehave on purpose."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import zmq

from vehicle_host.hub.broker import Broker, Origin
from vehicle_host.hub.supervisor import (
    SandboxUnavailable,
    Supervisor,
    WorkerExit,
    WorkerRestartBlocked,
)
from vehicle_host.sandbox.config import SandboxConfig, WorkerLimits
from vehicle_host.wire import API_LEVEL, Envelope, encode

pytestmark = pytest.mark.integration

#: A stand-in worker: says hello, then behaves as its first argument says.
FAKE_WORKER = r"""
import sys, time
import zmq
from vehicle_host.wire import Envelope, encode
mode = sys.argv[1]
endpoint = sys.argv[sys.argv.index("--endpoint") + 1]
sock = zmq.Context().socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(endpoint)
def send(type_, payload):
    sock.send(encode(Envelope(type_, 1, "worker", "hub", payload)))
send("hello", {"role": "worker", "api_level": 1})
if mode == "crash":
    time.sleep(0.2)
    sys.exit(3)
if mode == "silent":
    time.sleep(3600)
if mode == "flood":
    data = encode(Envelope("heartbeat", 1, "worker", "hub", {}))
    while True:
        try:
            sock.send(data, zmq.NOBLOCK)
        except zmq.Again:
            time.sleep(0.001)
while True:
    send("heartbeat", {})
    time.sleep(0.2)
"""


class Harness:
    """What the hub does with worker messages, reduced to the supervisor's part."""

    def __init__(self, runtime_dir: Path, config: SandboxConfig, worker_args: tuple[str, ...] | None) -> None:
        self.exits: asyncio.Queue[WorkerExit] = asyncio.Queue()
        self.messages: list[tuple[str, Origin]] = []
        self.broker = Broker(runtime_dir, self.handle)
        kwargs: dict[str, Any] = {} if worker_args is None else {"worker_args": worker_args}
        self.supervisor = Supervisor(self.broker, self.exits.put_nowait, config, **kwargs)

    async def handle(self, message: Envelope, origin: Origin) -> None:
        self.messages.append((message.type, origin))
        if origin.kind != "worker":
            return
        if message.type == "hello":
            self.supervisor.on_hello(origin.slot, origin.peer)
        self.supervisor.on_message(origin.slot)


def run(
    runtime_dir: Path,
    body: Callable[[Harness], Awaitable[None]],
    *,
    worker_args: tuple[str, ...] | None = None,
    **settings: Any,
) -> None:
    config = replace(SandboxConfig(), **settings)

    async def main() -> None:
        harness = Harness(runtime_dir / "run", config, worker_args)
        harness.broker.start()
        try:
            await body(harness)
        finally:
            await harness.supervisor.stop_all()
            await harness.broker.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def run_stand_in(
    short_dir: Path, mode: str, body: Callable[[Harness], Awaitable[None]], **settings: Any
) -> None:
    """``run`` with the stand-in worker in ``mode``, unsandboxed, and no pool."""
    script = short_dir / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    worker_args = (str(script), mode)
    run(short_dir, body, worker_args=worker_args, enabled=False, confine=False, pool_size=0, **settings)


async def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_pooled_sandboxed_worker_is_ready_at_assign_and_the_pool_refills(short_dir: Path) -> None:
    async def body(h: Harness) -> None:
        sup = h.supervisor
        await sup.start_pool()
        await until(lambda: sup.stats()["pool"]["ready"] == 1)
        hellos = [o for t, o in h.messages if t == "hello"]
        assert [o.app_id for o in hellos] == [""]  # an idle pooled worker speaks for no app
        first = await sup.assign("org.test.one")
        assert first.ready
        assert "vehicle_host.logic_worker" in cmdline(first.pid)  # the Python worker inside bwrap
        assert sup.workers["org.test.one"].process.pid != first.pid
        # the pool refills in the background with a new slot
        await until(lambda: sup.stats()["pool"]["ready"] == 1)
        second = await sup.assign("org.test.two")
        assert second.ready and second.slot != first.slot
        # once bound, the slot's messages carry the app id
        await until(lambda: any(o.app_id == "org.test.two" for t, o in h.messages if t == "heartbeat"))
        await sup.stop("org.test.one")
        stopped = await h.exits.get()
        assert (stopped.app_id, stopped.reason, stopped.expected) == ("org.test.one", "stopped", True)
        assert "org.test.one" not in sup.workers and "org.test.two" in sup.workers

    run(short_dir, body, pool_size=1)


def test_an_empty_pool_starts_a_fresh_worker_that_says_hello_over_its_bound_socket(short_dir: Path) -> None:
    async def body(h: Harness) -> None:
        sup = h.supervisor
        await sup.start_pool()
        assignment = await sup.assign("org.test.fresh")
        assert not assignment.ready
        assert await sup.wait_ready(assignment.slot)
        hello = next(o for t, o in h.messages if t == "hello")
        assert (hello.slot, hello.app_id) == (assignment.slot, "org.test.fresh")
        # the hub can now talk to it: the worker answers nothing, but the send is routable
        start = Envelope("app.visibility", 1, "hub", "app:org.test.fresh", {"app_id": "x", "visible": True})
        assert await h.broker.send_worker("org.test.fresh", start)
        assert sup.stats()["apps"]["org.test.fresh"]["start_ms"] > 0

    run(short_dir, body, pool_size=0)


def test_a_stopped_worker_is_killed_for_missing_heartbeats(short_dir: Path) -> None:
    async def body(h: Harness) -> None:
        sup = h.supervisor
        await sup.start_pool()
        assignment = await sup.assign("org.test.hang")
        assert await sup.wait_ready(assignment.slot)
        os.kill(sup.workers["org.test.hang"].pid, signal.SIGSTOP)
        ended = await asyncio.wait_for(h.exits.get(), 20)
        assert (ended.app_id, ended.reason) == ("org.test.hang", "killed")
        assert "no heartbeat" in ended.message
        assert not Path(f"/proc/{assignment.pid}").exists()

    run(short_dir, body, pool_size=0, heartbeat_timeout_s=2.0, sample_interval_s=0.5)


def test_a_silent_stand_in_is_killed_and_reported(short_dir: Path) -> None:
    async def body(h: Harness) -> None:
        sup = h.supervisor
        assignment = await sup.assign("org.test.silent")
        await sup.start_pool()
        assert await sup.wait_ready(assignment.slot)
        ended = await asyncio.wait_for(h.exits.get(), 20)
        assert ended.reason == "killed" and ended.code == -signal.SIGKILL

    run_stand_in(short_dir, "silent", body, heartbeat_timeout_s=1.0, sample_interval_s=0.3)


def test_repeated_crashes_block_restarts_with_growing_back_off(short_dir: Path) -> None:
    app = "org.test.crashy"

    async def body(h: Harness) -> None:
        sup = h.supervisor
        await sup.start_pool()
        for _attempt in range(3):
            await sup.assign(app)
            ended = await asyncio.wait_for(h.exits.get(), 20)
            assert (ended.reason, ended.code) == ("crashed", 3)
            assert "exit code 3" in ended.message
        assert ended.blocked_for_s > 0
        assert "can be opened again" in ended.message
        with pytest.raises(WorkerRestartBlocked) as blocked:
            await sup.assign(app)
        assert "can be opened again in" in str(blocked.value)
        entry = sup.stats()["apps"][app]
        assert entry["crashes"] == 3 and entry["restarts_blocked_until"] > time.time()
        await until(lambda: sup.blocked_for(app) == 0, timeout=5)
        for _attempt in range(3):  # the next block lasts twice as long
            await sup.assign(app)
            ended = await asyncio.wait_for(h.exits.get(), 20)
        assert ended.blocked_for_s > 1.5

    run_stand_in(short_dir, "crash", body, backoff_s=1.0)


def test_accounting_reports_cpu_memory_and_message_rate_of_a_sandboxed_worker(short_dir: Path) -> None:
    async def body(h: Harness) -> None:
        sup = h.supervisor
        await sup.start_pool()
        assignment = await sup.assign("org.test.acct")
        assert await sup.wait_ready(assignment.slot)
        await until(lambda: sup.stats()["apps"]["org.test.acct"].get("msgs", 0) >= 3)
        await until(lambda: sup.stats()["apps"]["org.test.acct"]["rss_mb"] > 0)
        entry = sup.stats()["apps"]["org.test.acct"]
        assert entry["pid"] == sup.workers["org.test.acct"].pid
        assert "vehicle_host.logic_worker" in cmdline(entry["pid"])
        assert 5 < entry["rss_mb"] < 300  # an interpreter with pyzmq and QuickJS loaded
        assert 0 < entry["cpu_s"] < 30
        assert entry["msg_rate"] <= 5 and entry["dropped_rate"] == 0  # one heartbeat a second
        assert entry["crashes"] == 0 and entry["restarts_blocked_until"] == 0

    run(short_dir, body, pool_size=0, sample_interval_s=0.3)


def test_a_flooding_worker_has_messages_dropped_and_counted(short_dir: Path) -> None:
    async def body(h: Harness) -> None:
        sup = h.supervisor
        assignment = await sup.assign("org.test.flood")
        await until(lambda: sup.stats()["apps"]["org.test.flood"].get("dropped_rate", 0) > 200, 30)
        assert h.broker.counters["dropped_rate"] > 200
        assert "org.test.flood" in sup.workers  # below the hard bound it keeps running
        delivered = sum(1 for t, o in h.messages if o.slot == assignment.slot)
        assert delivered < h.broker.slot_stats(assignment.slot)["msgs"]

    limits = WorkerLimits(msg_rate=100, msg_burst=100, msg_kill_dropped=10**9)
    run_stand_in(short_dir, "flood", body, limits=limits)


def test_a_worker_flooding_past_the_hard_bound_is_killed(short_dir: Path) -> None:
    async def body(h: Harness) -> None:
        sup = h.supervisor
        await sup.start_pool()
        await sup.assign("org.test.flood")
        ended = await asyncio.wait_for(h.exits.get(), 20)
        assert ended.reason == "killed"
        assert "sent too many messages" in ended.message

    limits = WorkerLimits(msg_rate=100, msg_burst=100, msg_kill_dropped=2000)
    run_stand_in(short_dir, "flood", body, limits=limits)


def test_a_second_peer_on_a_worker_socket_is_refused(short_dir: Path) -> None:
    async def body(h: Harness) -> None:
        sup = h.supervisor
        assignment = await sup.assign("org.test.peer")
        assert await sup.wait_ready(assignment.slot)
        intruder: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        intruder.setsockopt(zmq.LINGER, 0)
        intruder.connect(assignment.endpoint)
        try:
            hello = Envelope("hello", 1, "worker", "hub", {"role": "worker", "api_level": API_LEVEL})
            intruder.send(encode(hello))
            await until(lambda: h.broker.counters["dropped_foreign_peer"] >= 1)
        finally:
            intruder.close()
        assert sum(1 for t, o in h.messages if t == "hello") == 1
        assert sup.on_hello(assignment.slot, b"someone-else") is False

    run_stand_in(short_dir, "normal", body)


def test_without_bwrap_no_worker_starts_unless_the_sandbox_is_disabled(short_dir: Path) -> None:
    async def body(h: Harness) -> None:
        with pytest.raises(SandboxUnavailable) as missing:
            await h.supervisor.assign("org.test.any")
        assert "VEHICLE_HOST_SANDBOX=0" in str(missing.value)
        assert not list((short_dir / "run").glob("w-*.sock"))

    run(short_dir, body, bwrap="/nonexistent/bwrap", pool_size=0)


def worker_start(app_id: str, page_js: str, limits: dict[str, int]) -> Envelope:
    payload = {
        "app_id": app_id,
        "sources": {"app.js": "App({});", "pages/index/index.js": page_js},
        "config": {"pages": ["pages/index/index"]},
        "route": "pages/index/index",
        "page_id": 1,
        "query": {},
        "system": {},
        "apis": [],
        "storage": {},
        "limits": limits,
    }
    return Envelope("worker.start", 1, "hub", f"app:{app_id}", payload)


def test_a_sandboxed_worker_runs_js_and_a_memory_hog_only_hurts_itself(short_dir: Path) -> None:
    async def body(h: Harness) -> None:
        sup = h.supervisor
        limits = sup.config.limits.for_worker_start()
        good = await sup.assign("org.test.good")
        hog = await sup.assign("org.test.hog")
        assert await sup.wait_ready(good.slot) and await sup.wait_ready(hog.slot)
        page = "Page({ data: { n: 41 }, onLoad() { this.setData({ n: this.data.n + 1 }); } });"
        hog_page = (
            "Page({ data: {}, onLoad() { const a = []; while (true) a.push(new Array(1e5).fill(7)); } });"
        )
        assert await h.broker.send_worker("org.test.hog", worker_start("org.test.hog", hog_page, limits))
        assert await h.broker.send_worker("org.test.good", worker_start("org.test.good", page, limits))

        def got(type_: str, app_id: str) -> list[Origin]:
            return [o for t, o in h.messages if t == type_ and o.app_id == app_id]

        await until(lambda: bool(got("page.setData", "org.test.good")))
        assert got("page.render", "org.test.good")
        await until(lambda: bool(got("script.error", "org.test.hog")))  # QuickJS's memory limit
        await asyncio.sleep(1.5)  # heartbeats keep flowing from the healthy worker
        assert "org.test.good" in sup.workers and "org.test.hog" in sup.workers
        assert h.exits.empty()
        assert sup.stats()["apps"]["org.test.good"]["rss_mb"] < 200

    run(short_dir, body, pool_size=0, sample_interval_s=0.3)
