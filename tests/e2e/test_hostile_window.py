"""A hostile mini-app in the real window: a tap that never returns is stopped, the driver is told,
the same app answers its next tap, and the shell and other apps carry on."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, start_hub
from tests.e2e.window import shell_process
from vehicle_host.shell.driver import ShellDriver, is_uniform
from vehicle_host.shell.xvfb import VirtualDisplay

pytestmark = pytest.mark.e2e
ARTIFACTS = REPO / "artifacts" / "e2e"
SPIN = "org.vehiclehost.hostile.spin"
VEHICLE_INFO = "org.vehiclehost.samples.vehicleinfo"


@pytest.fixture(scope="module")
def driver() -> Iterator[ShellDriver]:
    root = Path(tempfile.mkdtemp(prefix="vh-e2e-"))
    shutil.copytree(REPO / "tests" / "fixtures" / "hostile" / "spin", root / "apps" / "spin")
    shutil.copytree(REPO / "examples" / "vehicle-info", root / "apps" / "vehicle-info")
    with VirtualDisplay(800, 480) as display:
        hub = start_hub(root, root / "apps")
        try:
            with shell_process(root, hub.runtime_dir, display.display) as drv:
                yield drv
        finally:
            hub.stop()
            shutil.rmtree(root, ignore_errors=True)


def test_an_endless_tap_handler_is_contained_and_the_shell_stays_usable(driver: ShellDriver) -> None:
    driver.wait_for(lambda s: bool(s["online"]) and s["apps"] >= 2, what="the launcher")
    driver.eval(f"vh.launch('{SPIN}')")
    driver.wait_for(lambda s: s["appId"] == SPIN and s["painted"] > 0, what="the hostile app to paint")
    driver.tap_page_node("spin")  # a real click: the handler loops forever
    assert driver.snapshot()["appId"] == SPIN  # the shell answers while the worker spins
    state = driver.wait_for(lambda s: s.get("banner") is not None, what="the error notice", timeout=15)
    assert "ran longer than" in str(state["banner"])
    shot = driver.screenshot(ARTIFACTS / "hostile-spin-contained.png")
    assert not is_uniform(shot)
    driver.tap_page_node("alive")  # the same app, the same worker, answers the next tap
    driver.wait_for(lambda s: "alive 2" in driver.inspect()["text"], what="the next tap to work")
    driver.eval("vh.home()")
    driver.eval(f"vh.launch('{VEHICLE_INFO}')")
    driver.wait_for(lambda s: s["appId"] == VEHICLE_INFO and s["painted"] > 0, what="another app")
    assert "Tapped 0 times" in driver.inspect()["text"]
