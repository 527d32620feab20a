"""CanDiagnosticsPlugin called directly (asyncio) against the simulator on a ``virtual`` bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import jsonschema
import pytest

from vehicle_host.plugins.can_diagnostics.hotplug import FakeHotplugSource
from vehicle_host.plugins.can_diagnostics.plugin import CanDiagnosticsPlugin
from vehicle_host.plugins.contract import (
    CallContext,
    DeviceUnavailable,
    InvalidArguments,
    Method,
    PluginContext,
    PluginError,
    PluginTimeout,
)
from vehicle_host.simulator import Simulator

Published = list[tuple[str, dict[str, Any]]]


def make_plugin(channel: str, published: Published, p2: float = 0.3, **kwargs: Any) -> CanDiagnosticsPlugin:
    async def publish(key: str, value: Mapping[str, Any]) -> None:
        published.append((key, dict(value)))

    config = {"interface": "virtual", "channel": channel, "p2_timeout": p2, "p2_star_timeout": 0.5,
              "request_timeout": 1.5}  # fmt: skip
    return CanDiagnosticsPlugin(PluginContext(config=config, publish_state=publish), **kwargs)


DECLS = {m.name: m for m in CanDiagnosticsPlugin.declarations()}


async def call(plugin: CanDiagnosticsPlugin, name: str, args: dict[str, Any]) -> Any:
    decl = DECLS[name]
    jsonschema.validate(args, decl.args)
    result = await plugin.call(decl, args, CallContext("org.test.app", 1, name))
    jsonschema.validate(result, decl.result)
    return result


def run(
    channel: str,
    body: Callable[[CanDiagnosticsPlugin, Published], Awaitable[None]],
    p2: float = 0.3,
    **kwargs: Any,
) -> Published:
    published: Published = []

    async def main() -> None:
        plugin = make_plugin(channel, published, p2, **kwargs)
        await plugin.start()
        try:
            await body(plugin, published)
        finally:
            await plugin.stop()

    asyncio.run(main())
    return published


def test_declarations_are_right() -> None:
    names = set(DECLS)
    expected = "scanEcus readVin readDids readDtcs readFreezeFrame clearDtcs readPids watchPids getState"
    expected += " adapterStatus"
    assert names == {f"vehicle.{short}" for short in expected.split()}
    for decl in DECLS.values():
        assert isinstance(decl, Method)
        jsonschema.Draft202012Validator.check_schema(decl.args)
        jsonschema.Draft202012Validator.check_schema(decl.result)
        assert decl.permission is not None
        wire = decl.to_wire()
        assert wire["name"] == decl.name and wire["summary"]
    clear = DECLS["vehicle.clearDtcs"]
    assert (clear.permission, clear.consent, clear.driving) == (
        "vehicle.diagnostics.clear",
        True,
        "parked_only",
    )
    watch = DECLS["vehicle.watchPids"]
    assert watch.streams and watch.permission == "vehicle.signals" and watch.rate_hz
    assert DECLS["vehicle.getState"].permission == "vehicle.signals"
    reads = {n for n, d in DECLS.items() if d.permission == "vehicle.diagnostics.read"}
    assert reads == names - {"vehicle.clearDtcs", "vehicle.watchPids", "vehicle.getState"}
    assert all(d.driving == "allowed" for n, d in DECLS.items() if n != "vehicle.clearDtcs")
    assert not any("security" in n.lower() or "routine" in n.lower() for n in names)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"pids": ["rpm"], "rateHz": 50}, watch.args)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"pids": list(range(17))}, DECLS["vehicle.readPids"].args)


def test_config_bitrate_and_snapshot_dids_are_checked() -> None:
    async def publish(key: str, value: Mapping[str, Any]) -> None:
        return None

    def plugin(**config: Any) -> CanDiagnosticsPlugin:
        context = PluginContext(config={"interface": "virtual", **config}, publish_state=publish)
        return CanDiagnosticsPlugin(context, hotplug=FakeHotplugSource())

    good = plugin(bitrate=500_000, snapshot_dids={"F4A0": 2, "ecuSerialNumber": 10})
    assert good.bitrate == 500_000 and good.snapshot_dids == {0xF4A0: 2, 0xF18C: 10}
    assert plugin(bitrate="250000").bitrate == 250_000 and plugin().bitrate is None
    for bad in ("fast", 5, 10**9, True, 1.5):
        with pytest.raises(InvalidArguments, match="config 'bitrate' must be bits per second"):
            plugin(bitrate=bad)
    for dids in ([1, 2], {f"{0xF000 + i:04X}": 1 for i in range(65)}):
        with pytest.raises(InvalidArguments, match="config 'snapshot_dids' must map at most 64"):
            plugin(snapshot_dids=dids)
    for size in (0, -1, 5000, "2", None):
        with pytest.raises(InvalidArguments, match="the size of 'F4A0' must be 1 to"):
            plugin(snapshot_dids={"F4A0": size})
    with pytest.raises(InvalidArguments, match="unknown DID"):
        plugin(snapshot_dids={"nope": 2})


def test_every_unary_method(channel: str, sim: Simulator) -> None:
    async def body(plugin: CanDiagnosticsPlugin, published: Published) -> None:
        scan = await call(plugin, "vehicle.scanEcus", {})
        assert {e["name"] for e in scan["ecus"] if e["present"]} == {"engine", "transmission", "abs"}
        vin = await call(plugin, "vehicle.readVin", {"ecu": "engine"})
        assert vin == {"vin": sim.scenario.vin, "ecu": "engine", "source": "uds"}
        obd_vin = await call(plugin, "vehicle.readVin", {"source": "obd"})
        assert obd_vin["vin"] == sim.scenario.vin and obd_vin["source"] == "obd"
        dids = await call(plugin, "vehicle.readDids", {"ecu": "abs", "dids": ["F18C", "F197"]})
        assert dids["dids"]["F18C"]["value"] == sim.scenario.ecu("abs").serial
        dtcs = await call(plugin, "vehicle.readDtcs", {"withSnapshots": True})
        assert {(d["ecu"], d["code"]) for d in dtcs["dtcs"]} == {
            ("engine", "P0301"), ("engine", "P0420"), ("engine", "P0171"), ("transmission", "P0700"),
            ("abs", "C0035"), ("abs", "U0100"),
        }  # fmt: skip
        assert dtcs["errors"] == {}
        p0700 = next(d for d in dtcs["dtcs"] if d["code"] == "P0700")
        assert p0700["description"] == "Transmission Control System Malfunction" and p0700["snapshots"]
        masked = await call(plugin, "vehicle.readDtcs", {"ecu": "engine", "statusMask": 0x04})
        assert [d["code"] for d in masked["dtcs"]] == ["P0171"]
        snap = await call(plugin, "vehicle.readFreezeFrame", {"ecu": "engine", "dtc": "P0420"})
        assert snap["source"] == "uds" and snap["records"][0]["values"]
        frame = await call(plugin, "vehicle.readFreezeFrame", {})
        assert (
            frame["source"] == "obd" and frame["dtc"] == "P0301" and frame["values"]["speed"]["value"] == 62
        )
        sim.set_speed(55)
        pids = await call(plugin, "vehicle.readPids", {"pids": ["speed", "rpm", "0F"]})
        assert pids["values"]["speed"]["value"] == 55 and set(pids["values"]) == {
            "speed",
            "rpm",
            "intakeTemp",
        }
        cleared = await call(plugin, "vehicle.clearDtcs", {"ecu": "engine"})
        assert cleared == {"cleared": ["engine"], "errors": {}}
        assert (await call(plugin, "vehicle.readDtcs", {"ecu": "engine"}))["dtcs"] == []
        status = await call(plugin, "vehicle.adapterStatus", {})
        assert status["present"] and status["channel"] == channel and len(status["ecus"]) == 3

    published = run(channel, body)
    assert (
        "can.adapter",
        {"present": True, "interface": "virtual", "channel": channel, "error": None},
    ) in published


def test_vehicle_state_is_published_and_readable(channel: str, sim: Simulator) -> None:
    async def body(plugin: CanDiagnosticsPlugin, published: Published) -> None:
        sim.park(True)
        for _ in range(40):
            await asyncio.sleep(0.05)
            state = await call(plugin, "vehicle.getState", {})
            if state["parked"]:
                break
        assert state["parked"] and state["gear"] == "P" and not state["stale"]
        sim.set_speed(70)
        for _ in range(40):
            await asyncio.sleep(0.05)
            if not (await call(plugin, "vehicle.getState", {}))["parked"]:
                break
        await asyncio.sleep(0.3)

    published = run(channel, body)
    states = [value for key, value in published if key == "vehicle"]
    assert any(s["parked"] for s in states) and not states[-1]["parked"]
    assert any(s["speed_kmh"] == pytest.approx(70) for s in states)


def test_watch_pids_streams_within_its_rate(channel: str, sim: Simulator) -> None:
    async def body(plugin: CanDiagnosticsPlugin, published: Published) -> None:
        decl = DECLS["vehicle.watchPids"]
        args = {"pids": ["rpm", "speed"], "rateHz": 5}
        jsonschema.validate(args, decl.args)
        stream = plugin.stream(decl, args, CallContext("org.test.app", 2, decl.name))
        events = []
        started = time.monotonic()
        async for event in stream:
            jsonschema.validate(event, decl.result)
            events.append(event)
            if time.monotonic() - started >= 1.0:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        elapsed = time.monotonic() - started
        assert 2 <= len(events) <= 5 * elapsed + 1
        assert all("rpm" in e["values"] for e in events)

    run(channel, body)


def test_adapter_removal_mid_request_fails_fast_and_rebinds(channel: str, sim: Simulator) -> None:
    hotplug = FakeHotplugSource(present=[channel])

    async def body(plugin: CanDiagnosticsPlugin, published: Published) -> None:
        assert (await call(plugin, "vehicle.readVin", {}))["vin"] == sim.scenario.vin
        sim.inject("silence", ecu="engine", count=None)  # the next request hangs until P2
        task = asyncio.create_task(call(plugin, "vehicle.readVin", {}))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        hotplug.unplug(channel)
        with pytest.raises(DeviceUnavailable, match=f"CAN adapter {channel} disconnected"):
            await task
        assert time.monotonic() - started < 1.5  # well before P2 (3 s) would have expired
        with pytest.raises(DeviceUnavailable, match="disconnected"):
            await call(plugin, "vehicle.readDtcs", {"ecu": "engine"})
        assert (await call(plugin, "vehicle.adapterStatus", {}))["present"] is False
        sim.clear_faults()
        hotplug.plug(channel)
        for _ in range(50):
            if plugin.adapter_status()["present"]:
                break
            await asyncio.sleep(0.02)
        assert (await call(plugin, "vehicle.readVin", {}))["vin"] == sim.scenario.vin

    published = run(channel, body, p2=3.0, hotplug=hotplug)
    adapter = [value["present"] for key, value in published if key == "can.adapter"]
    assert adapter[:3] == [True, False, True]  # then False again when the plugin stops


def test_absent_adapter_at_start_waits_for_hotplug(channel: str, sim: Simulator) -> None:
    hotplug = FakeHotplugSource()

    async def body(plugin: CanDiagnosticsPlugin, published: Published) -> None:
        with pytest.raises(DeviceUnavailable, match="not connected"):
            await call(plugin, "vehicle.readVin", {})
        hotplug.plug(channel)
        for _ in range(50):
            if plugin.adapter_status()["present"]:
                break
            await asyncio.sleep(0.02)
        assert (await call(plugin, "vehicle.readVin", {}))["vin"] == sim.scenario.vin

    run(channel, body, hotplug=hotplug)


def test_ecu_faults_become_errors_and_plugin_stays_usable(channel: str, sim: Simulator) -> None:
    async def body(plugin: CanDiagnosticsPlugin, published: Published) -> None:
        sim.inject("silence", ecu="engine", count=1)
        with pytest.raises(PluginTimeout, match="did not answer"):
            await call(plugin, "vehicle.readVin", {})
        sim.inject("pending", ecu="engine", count=25, requests=1)  # 0x78 storm beyond the request timeout
        with pytest.raises(PluginTimeout):
            await call(plugin, "vehicle.readVin", {})
        sim.clear_faults()
        await asyncio.sleep(1.2)
        sim.inject("malformed", ecu="engine", count=1)
        with pytest.raises((PluginTimeout, PluginError)):
            await call(plugin, "vehicle.readPids", {"pids": ["rpm"]})
        sim.inject("silence", ecu="abs", count=None)
        dtcs = await call(plugin, "vehicle.readDtcs", {})
        assert "abs" in dtcs["errors"] and {d["ecu"] for d in dtcs["dtcs"]} == {"engine", "transmission"}
        sim.clear_faults()
        assert (await call(plugin, "vehicle.readVin", {}))["vin"] == sim.scenario.vin
        assert (await call(plugin, "vehicle.readPids", {"pids": ["rpm"]}))["values"]["rpm"]["unit"] == "rpm"

    run(channel, body)
