"""Resilience in the real window with a real hub: the hub killed and restarted under a running app,
and the shell itself restarted."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import REPO, HubProcess, start_hub
from tests.e2e.window import shell_process
from vehicle_host.shell.driver import ShellDriver, is_uniform
from vehicle_host.shell.xvfb import VirtualDisplay

pytestmark = pytest.mark.e2e
ARTIFACTS = REPO / "artifacts" / "e2e"
VEHICLE_INFO = "org.vehiclehost.samples.vehicleinfo"


class Host:
    def __init__(self, root: Path, display: str) -> None:
        self.root = root
        self.display = display
        self.hub: HubProcess = start_hub(root, root / "apps")
        self.shell = ExitStack()
        self.driver: ShellDriver | None = None

    def start_shell(self) -> ShellDriver:
        self.driver = self.shell.enter_context(shell_process(self.root, self.hub.runtime_dir, self.display))
        return self.driver

    def stop_shell(self) -> None:
        self.shell.close()
        self.driver = None

    def kill_hub(self) -> None:
        """The hub dies at once (its workers and plugins with it), leaving its socket file behind."""
        os.killpg(self.hub.process.pid, signal.SIGKILL)
        self.hub.process.wait(10)

    def restart_hub(self) -> None:
        (self.hub.runtime_dir / "hub.sock").unlink(missing_ok=True)
        self.hub = start_hub(self.root, self.root / "apps")


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    root = Path(tempfile.mkdtemp(prefix="vh-rc-"))
    shutil.copytree(REPO / "examples", root / "apps")
    with VirtualDisplay(800, 480) as display:
        host = Host(root, display.display)
        try:
            host.start_shell()
            yield host
        finally:
            host.stop_shell()
            host.hub.stop()
            shutil.rmtree(root, ignore_errors=True)


def test_a_restarted_hub_gets_the_open_app_back_on_screen(host: Host) -> None:
    driver = host.driver
    assert driver is not None
    driver.wait_for(lambda s: s["online"] and s["apps"] >= 3, what="the launcher")
    driver.tap_selector(f'[data-app-id="{VEHICLE_INFO}"]')
    driver.wait_for(lambda s: s["appId"] == VEHICLE_INFO and s["painted"] > 0, what="the app")
    host.kill_hub()
    snap = driver.wait_for(lambda s: not s["online"], timeout=10, what="the link to notice")
    assert snap["linkBanner"].startswith("Reconnecting")
    assert driver.stats()["hub_online"] is False
    assert not is_uniform(driver.screenshot(ARTIFACTS / "shell-reconnecting.png"))
    host.restart_hub()  # nobody touches the shell
    snap = driver.wait_for(
        lambda s: (
            s["online"]
            and s["appId"] == VEHICLE_INFO
            and s["painted"] > 0
            and s["relaunched"] == [VEHICLE_INFO]
        ),
        timeout=40,
        what="the app to come back on screen",
    )
    assert snap["view"] == "app" and snap["linkBanner"] is None
    assert "Tapped 0 times" in driver.inspect()["text"]
    assert driver.stats()["hub_reconnects"] >= 1


def test_a_restarted_shell_comes_back_to_the_launcher(host: Host) -> None:
    host.stop_shell()
    driver = host.start_shell()
    snap = driver.wait_for(lambda s: s["online"] and s["apps"] >= 3, what="the launcher of the new shell")
    assert snap["view"] == "launcher" and snap["appId"] is None and snap["linkBanner"] is None
    assert not is_uniform(driver.screenshot(ARTIFACTS / "shell-restarted.png"))
