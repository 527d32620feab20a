"""Driving lockout from the real chain: the ECU simulator's DBC frames on a virtual CAN bus -> the
can_diagnostics plugin decodes speed and gear -> the hub publishes the vehicle state -> the shell
covers an app that is not driving-safe, and lifts the cover when the car parks."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import can
import pytest

from tests.conftest import REPO, start_hub
from tests.e2e.window import shell_process
from vehicle_host.shell.driver import ShellDriver, is_uniform
from vehicle_host.shell.xvfb import VirtualDisplay
from vehicle_host.simulator import Scenario, Simulator

pytestmark = pytest.mark.e2e
ARTIFACTS = REPO / "artifacts" / "e2e"
REMINDER = "org.vehiclehost.samples.servicereminder"  # not drivingSafe
VEHICLE_INFO = "org.vehiclehost.samples.vehicleinfo"  # drivingSafe


@pytest.fixture(scope="module")
def car() -> Iterator[tuple[ShellDriver, Simulator]]:
    root = Path(tempfile.mkdtemp(prefix="vh-e2e-"))
    shutil.copytree(REPO / "examples", root / "apps")
    endpoint = f"ipc://{root / 'can0.sock'}"
    bus = can.Bus(interface="vhbus", channel=endpoint)
    sim = Simulator(bus, Scenario.default())
    sim.park(True)
    sim.start()
    config = root / "host.toml"
    config.write_text(f'[plugins.can_diagnostics]\ninterface = "vhbus"\nchannel = "{endpoint}"\n')
    with VirtualDisplay(800, 480) as display:
        hub = start_hub(root, root / "apps", plugins="storage,can_diagnostics", config=config)
        try:
            with shell_process(root, hub.runtime_dir, display.display) as driver:
                yield driver, sim
        finally:
            hub.stop()
            sim.stop()
            bus.shutdown()
            shutil.rmtree(root, ignore_errors=True)


def test_the_simulated_drive_covers_apps_that_are_not_driving_safe(
    car: tuple[ShellDriver, Simulator],
) -> None:
    driver, sim = car
    driver.wait_for(
        lambda s: bool(s["online"]) and (s.get("vehicle") or {}).get("parked") is True,
        what="the parked car's state from the CAN plugin",
        timeout=30,
    )
    driver.eval(f"vh.launch('{REMINDER}')")
    driver.wait_for(lambda s: s["appId"] == REMINDER and s["painted"] > 0, what="the reminder app")
    assert driver.snapshot()["covered"] is False
    sim.park(False)
    sim.set_speed(50.0)  # the drive cycle's DBC frames now say D at 50 km/h
    state = driver.wait_for(lambda s: s["covered"] is True, what="the lockout cover", timeout=20)
    assert state["lockout"]["active"] is True
    assert REMINDER in state["unavailable"] and VEHICLE_INFO not in state["unavailable"]
    assert not is_uniform(driver.screenshot(ARTIFACTS / "lockout-simulated-drive.png"))
    sim.set_speed(0.0)
    sim.park(True)
    driver.wait_for(lambda s: s["covered"] is False, what="the cover to lift when parked", timeout=20)
    assert driver.snapshot()["appId"] == REMINDER  # the app was kept, not restarted
