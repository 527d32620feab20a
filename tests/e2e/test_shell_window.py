"""The real pywebview GTK/WebKit window under Xvfb, driven with real X input (xdotool)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, HubProcess, start_hub
from tests.e2e.window import shell_process
from vehicle_host.hub.client import HubClient
from vehicle_host.shell.driver import ShellDriver, is_uniform
from vehicle_host.shell.xvfb import VirtualDisplay

pytestmark = pytest.mark.e2e
ARTIFACTS = REPO / "artifacts" / "e2e"
VEHICLE_INFO = "org.vehiclehost.samples.vehicleinfo"


class Host:
    def __init__(self, hub: HubProcess, driver: ShellDriver) -> None:
        self.hub = hub
        self.driver = driver

    def hub_stats(self) -> dict[str, Any]:
        async def ask() -> dict[str, Any]:
            client = HubClient(self.hub.endpoint, role="client")
            await client.connect()
            try:
                return dict((await client.request("hub.stats", "hub", {})).payload["stats"])
            finally:
                await client.close()

        return asyncio.run(ask())

    def go_home(self) -> None:
        """Back to the launcher with every app closed (home alone keeps an app running)."""
        self.driver.eval("vh.closeAll(); vh.home()")
        self.driver.wait_for(
            lambda s: s["view"] == "launcher" and s["online"] and s["apps"] >= 2 and not s["running"]
        )
        deadline = time.monotonic() + 10
        while VEHICLE_INFO in self.hub_stats()["workers"]:
            assert time.monotonic() < deadline, "the hub did not stop the closed app"
            time.sleep(0.1)

    def open_vehicle_info_by_tapping(self) -> dict[str, Any]:
        self.driver.tap_selector(f'[data-app-id="{VEHICLE_INFO}"]')
        return self.driver.wait_for(
            lambda s: s["appId"] == VEHICLE_INFO and s["painted"] > 0, what="vehicle info to paint"
        )


@pytest.fixture(scope="module", params=[(800, 480), (1280, 720)], ids=["800x480", "1280x720"])
def host(request: pytest.FixtureRequest) -> Iterator[Host]:
    width, height = request.param
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="vh-e2e-"))
    shutil.copytree(REPO / "examples", root / "apps")
    with VirtualDisplay(width, height) as display:
        hub = start_hub(root, root / "apps")
        try:
            with shell_process(root, hub.runtime_dir, display.display, size=(width, height)) as driver:
                yield Host(hub, driver)
        finally:
            hub.stop()
            shutil.rmtree(root, ignore_errors=True)


def test_launcher_tap_renders_the_app_and_a_tap_round_trips(host: Host) -> None:
    host.go_home()
    launcher = host.driver.screenshot(ARTIFACTS / "launcher.png")
    assert not is_uniform(launcher)
    host.open_vehicle_info_by_tapping()
    page = host.driver.inspect()
    assert "WVWZZZ1JZXW000001" in page["text"]
    assert "Tapped 0 times" in page["text"]
    assert "48213 km" in page["text"]  # {{unit}} came from onLoad's setData with getApp().globalData
    host.driver.tap_page_node("count")  # a real click inside the sandboxed iframe
    host.driver.wait_for(
        lambda s: "Tapped 1 times" in host.driver.inspect()["text"], what="the tap to update"
    )
    assert "Reset" in host.driver.inspect()["text"]  # wx:if shows the reset button once taps > 0
    shot = host.driver.screenshot(ARTIFACTS / "vehicle-info-after-tap.png")
    assert not is_uniform(shot)


def test_killed_worker_shows_an_error_screen_and_restart_works(host: Host) -> None:
    host.go_home()
    host.open_vehicle_info_by_tapping()
    pid = host.hub_stats()["workers"][VEHICLE_INFO]
    os.kill(pid, signal.SIGKILL)
    state = host.driver.wait_for(lambda s: s["error"] is not None, what="the crash screen")
    assert "stopped" in state["error"]["title"]
    assert "signal 9" in state["error"]["text"]
    assert not is_uniform(host.driver.screenshot(ARTIFACTS / "vehicle-info-crashed.png"))
    host.driver.tap_selector("#error-restart")
    host.driver.wait_for(lambda s: s["error"] is None and s["painted"] > 0, what="the restarted app")
    assert "Tapped 0 times" in host.driver.inspect()["text"]
    assert host.hub_stats()["workers"][VEHICLE_INFO] != pid


def test_a_frame_cannot_reach_the_python_bridge(host: Host) -> None:
    host.go_home()
    before = host.driver.stats()["bridge_rejected"]
    # a sandboxed frame like the page frames, whose script forges calls straight into WebKit's handler
    forged = (
        "<script>"
        "var h = window.webkit && window.webkit.messageHandlers && window.webkit.messageHandlers.jsBridge;"
        "var launch = JSON.stringify({type:'app.launch', target:'hub', payload:{app_id:'"
        + VEHICLE_INFO
        + "'}});"
        "if (h) {"
        "  h.postMessage(JSON.stringify({funcName:'send', params:['guess', launch], id:'1'}));"
        "  h.postMessage(JSON.stringify({funcName:'send', params:[launch], id:'2'}));"
        "  h.postMessage(JSON.stringify({funcName:'pywebviewMoveWindow', params:[300, 300], id:'3'}));"
        "  h.postMessage('not json');"
        "}"
        "parent.postMessage({probe: typeof window.pywebview, bridge: !!h}, '*');"
        "</script>"
    )
    host.driver.eval(
        "window.__probe = null; window.addEventListener('message', function (e) {"
        " if (e.data && 'probe' in e.data)"
        " window.__probe = e.data; });"
        "var f = document.createElement('iframe'); f.setAttribute('sandbox', 'allow-scripts');"
        f"f.srcdoc = {forged!r}; document.body.appendChild(f);"
    )
    deadline = time.monotonic() + 10
    while host.driver.stats()["bridge_rejected"] - before < 4:
        assert time.monotonic() < deadline, "the forged bridge calls were not all rejected"
        time.sleep(0.1)
    probe = host.driver.eval("window.__probe")
    assert probe == {"probe": "undefined", "bridge": True}  # the handler is visible, and still useless
    # all four were dropped in the shell before reaching pywebview, so no launch can be on its way
    assert VEHICLE_INFO not in host.hub_stats()["workers"]
    assert host.driver.snapshot()["view"] == "launcher"
