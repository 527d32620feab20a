"""Hostile mini-apps against the real hub and real sandboxed workers: each is contained with a clear
error, and the hub (and every other app) carries on.

The apps live in tests/fixtures/hostile/. The shell is played by a HubClient, so what is checked is
exactly what the shell would be told.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, REPO, HubProcess, start_hub
from vehicle_host.hub.client import HubClient
from vehicle_host.wire import Envelope

pytestmark = pytest.mark.integration
HOSTILE = REPO / "tests" / "fixtures" / "hostile"
VEHICLE_INFO = "org.vehiclehost.samples.vehicleinfo"


def app_id(name: str) -> str:
    return f"org.vehiclehost.hostile.{name}"


@pytest.fixture(scope="module")
def hostile_hub() -> Iterator[HubProcess]:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="vh-"))
    shutil.copytree(HOSTILE, root / "apps")
    shutil.copytree(EXAMPLES / "vehicle-info", root / "apps" / "vehicle-info")
    hub = start_hub(root, root / "apps", plugins="storage,network")
    yield hub
    hub.stop()
    shutil.rmtree(root, ignore_errors=True)


class Shell:
    def __init__(self, client: HubClient) -> None:
        self.client = client

    async def launch(self, app: str) -> int:
        self.client.send("app.launch", "hub", {"app_id": app})
        opened = await self.client.expect("page.open", timeout=20, app_id=app)
        return int(opened.payload["page_id"])

    def tap(self, app: str, page_id: int, handler: str) -> None:
        payload = {"page_id": page_id, "handler": handler, "event": {}}
        self.client.send("page.event", f"app:{app}", payload)

    async def error(self, app: str, timeout: float = 15) -> Envelope:
        return await self.client.expect("app.error", timeout=timeout, app_id=app)

    async def data(self, key: str, timeout: float = 15) -> Any:
        async def wait() -> Any:
            while True:
                message = await self.client.expect("page.setData", timeout=timeout)
                if key in message.payload["diff"]:
                    return message.payload["diff"][key]

        return await asyncio.wait_for(wait(), timeout)

    async def stats(self) -> dict[str, Any]:
        return dict((await self.client.request("hub.stats", "hub", {}, timeout=10)).payload["stats"])

    async def healthy_app_still_works(self) -> None:
        page = await self.launch(VEHICLE_INFO)
        self.tap(VEHICLE_INFO, page, "onTapCount")
        assert await self.data("taps") == 1


def run(hub: HubProcess, body: Any) -> Any:
    async def main() -> Any:
        client = HubClient(hub.endpoint, role="shell")
        await client.connect()
        try:
            return await body(Shell(client))
        finally:
            await client.close()

    return asyncio.run(main())


def test_endless_loop_in_onload_is_stopped_with_a_script_error(hostile_hub: HubProcess) -> None:
    async def body(shell: Shell) -> None:
        started = time.monotonic()
        await shell.launch(app_id("spinload"))
        error = await shell.error(app_id("spinload"))
        assert error.payload["kind"] in ("script", "crashed")
        assert "ran longer than" in error.payload["message"]
        assert time.monotonic() - started < 10
        await shell.healthy_app_still_works()

    run(hostile_hub, body)


def test_endless_loop_in_a_tap_handler_costs_that_tap_only(hostile_hub: HubProcess) -> None:
    async def body(shell: Shell) -> None:
        page = await shell.launch(app_id("spin"))
        shell.tap(app_id("spin"), page, "onSpin")
        error = await shell.error(app_id("spin"))
        assert error.payload["kind"] == "script"
        shell.tap(app_id("spin"), page, "onAlive")  # the same worker answers the next tap
        assert await shell.data("ok") == 2

    run(hostile_hub, body)


def test_allocation_bomb_is_refused_inside_the_worker(hostile_hub: HubProcess) -> None:
    async def body(shell: Shell) -> None:
        page = await shell.launch(app_id("bomb"))
        shell.tap(app_id("bomb"), page, "onBomb")
        error = await shell.error(app_id("bomb"), timeout=30)
        assert error.payload["kind"] in ("script", "crashed", "killed")
        if error.payload["kind"] == "script":
            assert "memory" in error.payload["message"].lower()
        await shell.healthy_app_still_works()
        assert (await shell.stats())["received"] > 0  # the hub answers

    run(hostile_hub, body)


def test_ten_thousand_setdata_calls_a_second_are_merged_not_flooding(hostile_hub: HubProcess) -> None:
    async def body(shell: Shell) -> None:
        app = app_id("flood")
        page = await shell.launch(app)
        await shell.client.expect("page.render", timeout=15, page_id=page)
        shell.tap(app, page, "onFlood")
        messages = 0
        last = None
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                message = await shell.client.expect("page.setData", timeout=0.5, page_id=page)
            except Exception:
                continue
            messages += 1
            last = message.payload["diff"].get("n", last)
        assert isinstance(last, int) and last >= 10_000  # the app really made >10k calls in its second
        assert messages < last / 10  # ...which reached the shell merged, not one message per call
        stats = await shell.stats()
        assert app in stats["workers"]  # merged, not killed: the app did nothing wrong but chatter

    run(hostile_hub, body)


def test_a_ten_megabyte_setdata_is_refused_and_the_page_lives_on(hostile_hub: HubProcess) -> None:
    async def body(shell: Shell) -> None:
        app = app_id("flood")
        page = await shell.launch(app)
        shell.tap(app, page, "onHuge")
        shell.tap(app, page, "onAlive")
        assert await shell.data("n") == -1  # the next tap's change arrives; the 10 MB one never does

    run(hostile_hub, body)
    log = hostile_hub.log()
    assert "setData on page pages/index/index refused" in log


def test_escape_attempts_find_nothing_and_malformed_fc_calls_fail_cleanly(hostile_hub: HubProcess) -> None:
    async def body(shell: Shell) -> None:
        app = app_id("escape")
        page = await shell.launch(app)
        shell.tap(app, page, "onProbe")
        seen: dict[str, Any] = {}
        deadline = time.monotonic() + 15
        while not {"report", "malformed", "request", "unknown"} <= seen.keys():
            assert time.monotonic() < deadline, f"only {sorted(seen)} arrived"
            message = await shell.client.expect("page.setData", timeout=15, page_id=page)
            seen.update(message.payload["diff"])
        report = seen["report"]
        found = dict(item.split("=", 1) if "=" in item else item.split("!", 1) for item in report)
        assert found["require"] == "Error"  # require() reaches the bundle's own modules only
        assert found["climb"] == "Error"
        assert found["process"] == "undefined"
        assert found["module"] == "undefined"
        assert found["import"] == "undefined"
        assert found["std"] == "undefined/undefined"
        assert found["fetch"] == "undefined/undefined/undefined"
        assert found["eval"] in ("ReferenceError", "EvalError", "TypeError")
        assert found["Function"] == "EvalError" and found["ctor"] == "EvalError"
        assert found["vh"] in ("object", "TypeError")  # the host's door cannot be replaced
        assert len(seen["malformed"]) == 4  # each bad call failed on its own; the handler went on
        assert "request:fail" in seen["request"]  # not on the app's allow-list: refused, not sent
        assert "not supported" in seen["unknown"]
        stats = await shell.stats()
        assert app in stats["workers"]  # malformed fc arguments cost an error, not the worker

    run(hostile_hub, body)


def test_a_template_with_script_is_refused_at_launch_naming_file_and_line(hostile_hub: HubProcess) -> None:
    async def body(shell: Shell) -> None:
        app = app_id("inject")
        shell.client.send("app.launch", "hub", {"app_id": app})
        error = await shell.error(app)
        assert error.payload["kind"] == "invalid"
        assert "pages/index/index.wxml" in error.payload["message"]
        assert "<script>" in error.payload["message"]
        assert app not in (await shell.stats())["workers"]

    run(hostile_hub, body)
