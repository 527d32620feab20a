"""A real hub process, real worker processes running real JS, real ZeroMQ sockets, no GUI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.conftest import HubProcess
from vehicle_host.hub.client import HubClient
from vehicle_host.hub.service import MAX_RECORDED_ERRORS
from vehicle_host.updates.health import HealthLog, summarize
from vehicle_host.wire import API_LEVEL, MAX_MESSAGE_BYTES, Envelope, encode

pytestmark = pytest.mark.integration
VEHICLE_INFO = "org.vehiclehost.samples.vehicleinfo"


def with_shell(hub: HubProcess, body: Callable[[HubClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        shell = HubClient(hub.endpoint, role="shell")
        await shell.connect()
        try:
            return await body(shell)
        finally:
            await shell.close()

    return asyncio.run(main())


async def launch(shell: HubClient, app_id: str = VEHICLE_INFO) -> tuple[Envelope, Envelope]:
    shell.send("app.launch", "hub", {"app_id": app_id})
    opened = await shell.expect("page.open", app_id=app_id)
    rendered = await shell.expect("page.render", timeout=15, page_id=opened.payload["page_id"])
    return opened, rendered


async def stats(client: HubClient) -> dict[str, Any]:
    reply = await client.request("hub.stats", "hub", {})
    return dict(reply.payload["stats"])


def write_app(apps_dir: Path, name: str, page_js: str, wxml: str = "<view>{{n}}</view>") -> str:
    app_id = f"org.test.{name}"
    root = apps_dir / name
    (root / "pages/index").mkdir(parents=True)
    (root / "app.json").write_text(
        json.dumps(
            {
                "pages": ["pages/index/index"],
                "vehicle": {"id": app_id, "name": name, "version": "1.0.0"},
            }
        )
    )
    (root / "app.js").write_text("App({});\n")
    (root / "pages/index/index.js").write_text(page_js)
    (root / "pages/index/index.wxml").write_text(wxml)
    return app_id


def test_launch_lists_renders_and_round_trips_a_tap(hub: HubProcess) -> None:
    async def body(shell: HubClient) -> None:
        listing = await shell.request("app.list", "hub", {})
        ids = [a["id"] for a in listing.payload["apps"]]
        assert VEHICLE_INFO in ids and "org.vehiclehost.samples.servicereminder" in ids
        opened, rendered = await launch(shell)
        assert opened.payload["tree"]["k"] == "root"
        assert opened.payload["title"] == "Vehicle info"
        assert rendered.source == f"app:{VEHICLE_INFO}"
        assert rendered.payload["data"]["taps"] == 0
        first = await shell.expect("page.setData")
        assert first.payload["diff"] == {"unit": "km"}  # onLoad's setData, read from getApp().globalData
        page_id = opened.payload["page_id"]
        shell.send(
            "page.event",
            f"app:{VEHICLE_INFO}",
            {"page_id": page_id, "handler": "onTapCount", "event": {"type": "tap"}},
        )
        update = await shell.expect("page.setData", page_id=page_id)
        assert update.payload["diff"] == {"taps": 1, "checks[2].ok": False}

    with_shell(hub, body)


def test_script_errors_name_file_and_line_and_the_app_keeps_running(hub: HubProcess) -> None:
    app_id = write_app(
        hub.apps_dir,
        "thrower",
        (
            "Page({\n"
            "  data: { n: 0 },\n"
            "  onBoom() {\n"
            "    const nothing = null;\n"
            "    return nothing.field;\n"
            "  },\n"
            "  onSpin() { while (true) {} },\n"
            "  onOk() { this.setData({ n: this.data.n + 1 }); },\n"
            "});\n"
        ),
    )

    async def body(shell: HubClient) -> None:
        opened, _ = await launch(shell, app_id)
        page_id = opened.payload["page_id"]
        target = f"app:{app_id}"
        shell.send("page.event", target, {"page_id": page_id, "handler": "onBoom", "event": {}})
        error = await shell.expect("app.error", app_id=app_id)
        assert error.payload["kind"] == "script"
        assert (error.payload["file"], error.payload["line"]) == ("pages/index/index.js", 5)
        assert "null" in error.payload["message"]
        shell.send("page.event", target, {"page_id": page_id, "handler": "onSpin", "event": {}})
        spin = await shell.expect("app.error", timeout=15, app_id=app_id)
        assert "longer than" in spin.payload["message"]
        assert spin.payload["line"] == 7
        shell.send("page.event", target, {"page_id": page_id, "handler": "onOk", "event": {}})
        update = await shell.expect("page.setData", page_id=page_id)
        assert update.payload["diff"] == {"n": 1}

    with_shell(hub, body)
    assert runs(hub) == {(app_id, "1.0.0"): (1, 0, 2)}  # both script errors count against the version


def test_killed_worker_is_reported_and_the_app_opens_again(hub: HubProcess) -> None:
    async def body(shell: HubClient) -> None:
        await launch(shell)
        pid = (await stats(shell))["workers"][VEHICLE_INFO]
        os.kill(pid, signal.SIGKILL)
        crashed = await shell.expect("app.error", app_id=VEHICLE_INFO)
        assert crashed.payload["kind"] == "crashed"
        assert "signal 9" in crashed.payload["message"]
        assert VEHICLE_INFO not in (await stats(shell))["workers"]
        _, rendered = await launch(shell)
        assert rendered.payload["data"]["taps"] == 0
        assert (await stats(shell))["workers"][VEHICLE_INFO] != pid

    with_shell(hub, body)
    ((key, (launches, crashes, errors)),) = runs(hub).items()
    assert key[0] == VEHICLE_INFO and (launches, crashes, errors) == (2, 1, 0)


def runs(hub: HubProcess) -> dict[tuple[str, str], tuple[int, int, int]]:
    """The hub's run log, summed per app version: (launches, crashes, errors)."""
    log = HealthLog(hub.runtime_dir.parent / "state" / "app-runs.db")
    try:
        rows = summarize(log.since(0))
    finally:
        log.close()
    return {(r["app_id"], r["version"]): (r["launches"], r["crashes"], r["errors"]) for r in rows}


def test_garbage_and_oversized_frames_are_dropped_counted_and_survived(hub: HubProcess) -> None:
    async def body(shell: HubClient) -> None:
        before = await stats(shell)
        for junk in (
            b"",
            b"\xff\xfe garbage",
            b"\x9f" * 10_000,
            encode(Envelope("app.list", 1, "x", "hub", {}))[:-1],
        ):
            shell.send_raw(junk)
        shell.send_raw(b"\x00" * (MAX_MESSAGE_BYTES + 10))
        after = await stats(shell)
        assert after.get("dropped_malformed", 0) - before.get("dropped_malformed", 0) == 4
        assert after.get("dropped_oversized", 0) - before.get("dropped_oversized", 0) == 1
        listing = await shell.request("app.list", "hub", {})
        assert listing.payload["apps"]

    with_shell(hub, body)


def test_a_worker_socket_cannot_write_to_another_apps_page_or_take_over_a_worker(hub: HubProcess) -> None:
    async def body(shell: HubClient) -> None:
        opened, _ = await launch(shell)
        other, _ = await launch(shell, "org.vehiclehost.samples.servicereminder")
        victim_page = opened.payload["page_id"]
        before = await stats(shell)
        slot = before["supervisor"]["apps"]["org.vehiclehost.samples.servicereminder"]["slot"]
        impostor = zmq.Context.instance().socket(zmq.DEALER)
        impostor.connect(f"ipc://{hub.runtime_dir / f'w-{slot}.sock'}")  # the second app's socket
        forged = Envelope(
            "page.setData",
            1,
            f"app:{VEHICLE_INFO}",
            "shell",
            {"page_id": victim_page, "diff": {"vin": "FORGED"}},
        )
        impostor.send(encode(forged))
        impostor.send(encode(Envelope("app.launch", 2, "shell", "hub", {"app_id": VEHICLE_INFO})))
        impostor.send(encode(Envelope("hello", 3, "x", "hub", {"role": "worker", "api_level": API_LEVEL})))
        deadline = time.monotonic() + 5

        def refused(counters: dict[str, Any]) -> int:  # a second peer on a worker socket is never heard
            return int(counters.get("dropped_forbidden", 0)) + int(counters.get("dropped_foreign_peer", 0))

        while refused(await stats(shell)) - refused(before) < 3:
            assert time.monotonic() < deadline, "forged messages were not refused"
            await asyncio.sleep(0.05)
        # the real worker still gets the app's events: the impostor's hello did not take its place
        page_id = other.payload["page_id"]
        shell.send(
            "page.event",
            "app:org.vehiclehost.samples.servicereminder",
            {"page_id": page_id, "handler": "onSnooze", "event": {}},
        )
        update = await shell.expect("page.setData", page_id=page_id)
        assert update.payload["diff"] == {"snoozed": True, "dueInKm": 1700}
        impostor.close(0)
        while not shell.inbox.empty():
            assert shell.inbox.get_nowait().payload.get("diff") != {"vin": "FORGED"}

    with_shell(hub, body)


def test_start_failures_and_async_errors_are_reported_not_hung(hub: HubProcess) -> None:
    broken = write_app(hub.apps_dir, "brokenapp", "Page({ data: {} });\n")
    (hub.apps_dir / "brokenapp" / "app.js").write_text("App({});\nundefinedFunction();\n")
    spinner = write_app(
        hub.apps_dir,
        "spinner",
        (
            "Page({\n"
            "  data: { n: 0 },\n"
            "  onLoad() { const again = () => Promise.resolve().then(again); again(); },\n"
            "});\n"
        ),
    )
    callback = write_app(
        hub.apps_dir,
        "callback",
        (
            "Page({\n"
            "  data: { n: 0 },\n"
            "  onTap() {\n"
            "    this.setData({ n: this.data.n + 1 }, () => {\n"
            "      throw new Error('after render');\n"
            "    });\n"
            "  },\n"
            "});\n"
        ),
    )

    async def body(shell: HubClient) -> None:
        shell.send("app.launch", "hub", {"app_id": broken})
        error = await shell.expect("app.error", timeout=15, app_id=broken)
        assert (error.payload["file"], error.payload["line"]) == ("app.js", 2)
        assert "undefinedFunction" in error.payload["message"]
        shell.send("app.launch", "hub", {"app_id": spinner})
        error = await shell.expect("app.error", timeout=15, app_id=spinner)
        assert "re-queuing" in error.payload["message"]
        opened, _ = await launch(shell, callback)
        shell.send(
            "page.event",
            f"app:{callback}",
            {"page_id": opened.payload["page_id"], "handler": "onTap", "event": {}},
        )
        error = await shell.expect("app.error", timeout=15, app_id=callback)
        assert (error.payload["file"], error.payload["line"]) == ("pages/index/index.js", 5)
        assert "after render" in error.payload["message"]
        assert callback in (await stats(shell))["workers"]
        for _ in range(MAX_RECORDED_ERRORS):  # every throw is shown; the run log keeps a few per run
            shell.send(
                "page.event",
                f"app:{callback}",
                {"page_id": opened.payload["page_id"], "handler": "onTap", "event": {}},
            )
            await shell.expect("app.error", timeout=15, app_id=callback)

    with_shell(hub, body)
    recorded = runs(hub)
    assert recorded[(broken, "1.0.0")] == (1, 0, 1)
    assert recorded[(callback, "1.0.0")] == (1, 0, MAX_RECORDED_ERRORS)


def test_sigterm_stops_the_hub_and_every_worker(hub: HubProcess) -> None:
    async def body(shell: HubClient) -> list[int]:
        await launch(shell)
        await launch(shell, "org.vehiclehost.samples.servicereminder")
        return list((await stats(shell))["workers"].values())

    pids = with_shell(hub, body)
    assert len(pids) == 2
    assert hub.stop() == 0, hub.log()[-5000:]
    # the hub waited for each sandbox; the worker inside it is killed with it and reaped by init
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if running(pid)]
    assert '"hub stopped"' in hub.log()


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for init to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_hello_answers_with_the_api_level(hub: HubProcess) -> None:
    async def body(shell: HubClient) -> None:
        reply = await shell.hello()
        assert reply.payload["api_level"] == API_LEVEL

    with_shell(hub, body)
