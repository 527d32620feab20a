"""fc.vehicle.* from a mini-app, end to end: worker -> hub gateway -> can_diagnostics plugin process ->
udsoncan over can-isotp over the vhbus virtual CAN -> the ECU simulator, and back.

Every denial path is exercised against the real processes: no permission in the manifest, permission
but the driver said no, and clearing codes while the vehicle moves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import can
import pytest

from tests.conftest import HubProcess, start_hub
from vehicle_host.hub.client import HubClient
from vehicle_host.simulator import Scenario, Simulator
from vehicle_host.wire import Envelope

pytestmark = pytest.mark.integration

PAGE_JS = """
function show(page, key) {
  return {
    ok: function (r) { var c = {}; c[key] = r; page.setData(c); },
    no: function (e) { var c = {}; c[key + 'Err'] = e.errMsg; page.setData(c); }
  };
}
Page({
  data: {},
  onRead: function () {
    var s = show(this, 'vin');
    fc.vehicle.readVin({ ecu: 'engine' }).then(function (r) { s.ok(r.vin); }, s.no);
  },
  onDtcs: function () {
    var s = show(this, 'dtcs');
    wx.vehicle.readDtcs({ ecu: 'engine', success: function (r) {
      s.ok(r.dtcs.map(function (d) { return d.code + ' ' + d.description; }));
    }, fail: s.no });
  },
  onClear: function () {
    var s = show(this, 'cleared');
    fc.vehicle.clearDtcs({ ecu: 'engine', success: function () { s.ok(true); }, fail: s.no });
  }
});
"""


def write_app(apps: Path, name: str, permissions: list[str]) -> str:
    app_id = f"org.test.{name}"
    root = apps / name
    (root / "pages/index").mkdir(parents=True)
    manifest = {
        "pages": ["pages/index/index"],
        "vehicle": {
            "id": app_id,
            "name": name.title(),
            "version": "1.0.0",
            "permissions": permissions,
            "group": "dealer",
        },
    }
    (root / "app.json").write_text(json.dumps(manifest))
    (root / "app.js").write_text("App({});\n")
    (root / "pages/index/index.js").write_text(PAGE_JS)
    (root / "pages/index/index.wxml").write_text("<view>{{vin}}</view>\n")
    return app_id


class Car:
    """The simulator on a vhbus virtual CAN that the hub's plugin process joins."""

    def __init__(self, endpoint: str) -> None:
        self.bus = can.Bus(interface="vhbus", channel=endpoint)
        self.sim = Simulator(self.bus, Scenario.default())
        self.sim.park(True)
        self.sim.start()

    def close(self) -> None:
        self.sim.stop()
        self.bus.shutdown()


@pytest.fixture
def car_hub(short_dir: Path) -> Iterator[tuple[HubProcess, Car, dict[str, str]]]:
    apps = short_dir / "apps"
    apps.mkdir()
    ids = {
        "none": write_app(apps, "noperm", []),
        "read": write_app(apps, "reader", ["vehicle.diagnostics.read"]),
        "clear": write_app(apps, "clearer", ["vehicle.diagnostics.read", "vehicle.diagnostics.clear"]),
    }
    endpoint = f"ipc://{short_dir / 'can0.sock'}"
    car = Car(endpoint)
    config = short_dir / "host.toml"
    config.write_text(
        f'[plugins.can_diagnostics]\ninterface = "vhbus"\nchannel = "{endpoint}"\nrequest_timeout = 4.0\n'
    )
    hub = start_hub(short_dir, apps, plugins="storage,can_diagnostics", config=config)
    try:
        yield hub, car, ids
    finally:
        hub.stop()
        car.close()


async def open_app(shell: HubClient, app_id: str) -> int:
    # the plugin may still be connecting to the bus: wait until the vehicle state is published
    shell.send("app.launch", "hub", {"app_id": app_id})
    opened = await shell.expect("page.open", timeout=20, app_id=app_id)
    await shell.expect("page.render", timeout=20, page_id=opened.payload["page_id"])
    return int(opened.payload["page_id"])


async def tap(shell: HubClient, app_id: str, page_id: int, handler: str) -> None:
    shell.send("page.event", f"app:{app_id}", {"page_id": page_id, "handler": handler, "event": {}})


async def data_key(shell: HubClient, key: str, *, timeout: float = 20) -> Any:
    async def wait() -> Any:
        while True:
            message = await shell.expect("page.setData", timeout=timeout)
            if key in message.payload["diff"]:
                return message.payload["diff"][key]

    return await asyncio.wait_for(wait(), timeout)


async def answer_consent(shell: HubClient, granted: bool) -> Envelope:
    request = await shell.expect("ui.request", timeout=20, kind="consent")
    shell.send(
        "ui.response", "hub", {"request_id": request.payload["request_id"], "result": {"granted": granted}}
    )
    return request


def run(hub: HubProcess, body: Any) -> Any:
    async def main() -> Any:
        shell = HubClient(hub.endpoint, role="shell")
        await shell.connect()
        try:
            while True:  # the plugin is on the bus and has decoded the simulator's "parked" frames
                state = await shell.expect("state.changed", timeout=20, key="vehicle")
                if state.payload["value"].get("parked") is True:
                    break
            return await body(shell)
        finally:
            await shell.close()

    return asyncio.run(main())


def test_a_mini_app_reads_vin_and_dtcs_through_the_gateway(car_hub: Any) -> None:
    hub, _car, ids = car_hub

    async def body(shell: HubClient) -> None:
        page = await open_app(shell, ids["read"])
        await tap(shell, ids["read"], page, "onRead")
        assert await data_key(shell, "vin") == "1VHDA5E26NA104729"
        await tap(shell, ids["read"], page, "onDtcs")
        dtcs = await data_key(shell, "dtcs")
        assert any(d.startswith("P0301 ") and "Misfire" in d for d in dtcs)

    run(hub, body)


def test_no_permission_in_the_manifest_is_denied_before_the_plugin(car_hub: Any) -> None:
    hub, car, ids = car_hub

    async def body(shell: HubClient) -> None:
        before = car.sim.stats.copy()
        page = await open_app(shell, ids["none"])
        await tap(shell, ids["none"], page, "onRead")
        error = await data_key(shell, "vinErr")
        assert "did not declare permission vehicle.diagnostics.read" in error
        assert car.sim.stats == before  # nothing reached the bus

    run(hub, body)


def test_clear_asks_the_driver_and_a_refusal_is_remembered(car_hub: Any) -> None:
    hub, _car, ids = car_hub

    async def body(shell: HubClient) -> None:
        page = await open_app(shell, ids["clear"])
        await tap(shell, ids["clear"], page, "onClear")
        request = await answer_consent(shell, granted=False)
        assert request.payload["params"]["permission"] == "vehicle.diagnostics.clear"
        assert "did not allow" in await data_key(shell, "clearedErr")
        await tap(shell, ids["clear"], page, "onClear")  # asked once: the answer is stored
        assert "did not allow" in await data_key(shell, "clearedErr")

    run(hub, body)


def test_clear_with_consent_works_parked_and_is_refused_while_moving(car_hub: Any) -> None:
    hub, car, ids = car_hub

    async def body(shell: HubClient) -> None:
        page = await open_app(shell, ids["clear"])
        await tap(shell, ids["clear"], page, "onClear")
        await answer_consent(shell, granted=True)
        assert await data_key(shell, "cleared") is True
        car.sim.park(False)
        car.sim.set_speed(42.0)
        while True:  # the plugin decodes the moving car's frames and publishes them
            state = await shell.expect("state.changed", timeout=10, key="vehicle")
            if state.payload["value"].get("parked") is False:
                break
        await tap(shell, ids["clear"], page, "onClear")
        error = await data_key(shell, "clearedErr")
        assert "only while parked" in error

    run(hub, body)
