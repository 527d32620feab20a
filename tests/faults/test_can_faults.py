"""CAN faults under the diagnostics plugin: the adapter's bus closing under it, and silent ECUs.

python-can's ``virtual`` interface stands in for the adapter (this kernel has no vcan): "removing the
adapter" shuts down the plugin's own bus object, with no hotplug event, and makes reopening fail
until it is "plugged in" again. Kernel hotplug events (pyudev) on a real SocketCAN interface are
covered by ``tests/can/test_hotplug.py`` (the source) and ``tests/can/test_plugin_can_diagnostics.py``
(unplug/plug through the fake source).

ECU silence uses the simulator's ``silence`` fault on every ECU, and pausing the simulator: calls
must end with a clear timeout within the configured bound, leave no thread behind, and answers
resume once the ECUs talk again.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import can
import pytest

from vehicle_host.plugins.can_diagnostics.plugin import REBIND_PERIOD_S, CanDiagnosticsPlugin
from vehicle_host.plugins.contract import CallContext, DeviceUnavailable, PluginContext, PluginTimeout
from vehicle_host.simulator import Scenario, Simulator

Published = list[tuple[str, dict[str, Any]]]
DECLS = {m.name: m for m in CanDiagnosticsPlugin.declarations()}
GONE = r"CAN adapter \S+ (is gone|disconnected|is not plugged in)"
#: a call that hangs until its ECU timeout would outlive this; a call that fails fast ends well before
FAST_S = 5.0


@pytest.fixture
def channel() -> str:
    return f"fault-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sim(channel: str) -> Iterator[Simulator]:
    bus = can.Bus(interface="virtual", channel=channel)
    simulator = Simulator(bus, Scenario.default())
    simulator.start()
    yield simulator
    simulator.stop()
    bus.shutdown()


class Adapter:
    """Opens the plugin's bus on the virtual channel while plugged in; ``unplug`` closes it under the
    plugin and makes reopening fail, as a USB adapter pulled out would."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.plugged = True
        self.link_down = False  # opening works, but the bus fails at once (an interface that is down)
        self.buses: list[can.BusABC] = []

    def open(self, receive_ids: set[int]) -> can.BusABC:
        if not self.plugged:
            raise can.CanInitializationError(f"CAN adapter {self.channel} is not plugged in")
        bus = can.Bus(interface="virtual", channel=self.channel)
        self.buses.append(bus)
        if self.link_down:
            bus.shutdown()
        return bus

    def unplug(self) -> None:
        self.plugged = False
        self.buses[-1].shutdown()

    def close(self) -> None:
        for bus in self.buses:
            bus.shutdown()


async def call(plugin: CanDiagnosticsPlugin, name: str, args: dict[str, Any]) -> Any:
    return await plugin.call(DECLS[name], args, CallContext("org.test.app", 1, name))


def run(
    channel: str,
    body: Callable[[CanDiagnosticsPlugin, Published], Awaitable[None]],
    timing: Mapping[str, float],
    **kwargs: Any,
) -> Published:
    published: Published = []

    async def publish(key: str, value: Mapping[str, Any]) -> None:
        published.append((key, dict(value)))

    async def main() -> None:
        config = {"interface": "virtual", "channel": channel, **timing}
        plugin = CanDiagnosticsPlugin(PluginContext(config=config, publish_state=publish), **kwargs)
        await plugin.start()
        try:
            await asyncio.wait_for(body(plugin, published), 60)
        finally:
            await plugin.stop()

    asyncio.run(main())
    return published


async def until(condition: Callable[[], bool], what: str, timeout: float = FAST_S) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None


# -- adapter removal ---------------------------------------------------------------------------------


def test_bus_closed_under_the_plugin_fails_fast_shows_down_and_recovers(channel: str, sim: Simulator) -> None:
    adapter = Adapter(channel)
    slow = {"p2_timeout": 10.0, "p2_star_timeout": 10.0, "request_timeout": 30.0}

    async def body(plugin: CanDiagnosticsPlugin, published: Published) -> None:
        assert (await call(plugin, "vehicle.readVin", {}))["vin"] == sim.scenario.vin
        sim.inject("silence", ecu="engine", count=None)  # the next request would wait 10 s for P2
        in_flight = asyncio.create_task(call(plugin, "vehicle.readVin", {}))
        await asyncio.sleep(0.1)
        adapter.unplug()
        with pytest.raises(DeviceUnavailable, match=GONE):
            await asyncio.wait_for(in_flight, FAST_S)
        for name, args in (("vehicle.readDtcs", {"ecu": "abs"}), ("vehicle.readPids", {"pids": ["rpm"]})):
            with pytest.raises(DeviceUnavailable, match=GONE):
                await asyncio.wait_for(call(plugin, name, args), FAST_S)
        status = await call(plugin, "vehicle.adapterStatus", {})
        assert status["present"] is False and status["error"], status
        assert [v["present"] for k, v in published if k == "can.adapter"][-1] is False

        sim.clear_faults()
        adapter.plugged = True  # back, without restarting the plugin
        await until(lambda: plugin.adapter_status()["present"], "the plugin to bind the adapter again")
        assert (await call(plugin, "vehicle.readVin", {}))["vin"] == sim.scenario.vin
        assert [v["present"] for k, v in published if k == "can.adapter"][-1] is True

    try:
        run(channel, body, slow, bus_factory=adapter.open)
    finally:
        adapter.close()
    assert len(adapter.buses) >= 2


def test_bus_failing_as_it_is_bound_is_bound_again_by_itself(channel: str, sim: Simulator) -> None:
    adapter = Adapter(channel)
    adapter.link_down = True

    async def body(plugin: CanDiagnosticsPlugin, published: Published) -> None:
        # the bus fails while the plugin binds it: the plugin lets it go and retries on its own
        await until(lambda: len(adapter.buses) >= 3, "the plugin to retry the failed bus", timeout=10.0)
        adapter.link_down = False
        await until(lambda: plugin.adapter_status()["present"], "the plugin to bind the working bus")
        assert (await call(plugin, "vehicle.readVin", {}))["vin"] == sim.scenario.vin

    try:
        run(channel, body, QUICK, bus_factory=adapter.open)
    finally:
        adapter.close()


def test_stop_while_reconnecting_binds_nothing_after(channel: str, sim: Simulator) -> None:
    adapter = Adapter(channel)
    plugin_ref: list[CanDiagnosticsPlugin] = []

    async def body(plugin: CanDiagnosticsPlugin, published: Published) -> None:
        plugin_ref.append(plugin)
        assert (await call(plugin, "vehicle.readVin", {}))["vin"] == sim.scenario.vin
        adapter.unplug()
        await until(lambda: not plugin.adapter_status()["present"], "the plugin to see the bus gone")
        adapter.plugged = True  # the next retry would bind it, but the plugin stops first

    async def after_stop() -> None:
        await asyncio.sleep(REBIND_PERIOD_S * 1.5)  # a retry left running would have bound by now

    try:
        run(channel, body, QUICK, bus_factory=adapter.open)
        opened = len(adapter.buses)
        asyncio.run(after_stop())
    finally:
        adapter.close()
    [plugin] = plugin_ref
    assert plugin.adapter_status()["present"] is False
    assert len(adapter.buses) == opened == 1, f"{len(adapter.buses)} buses opened"


# -- ECU silence -------------------------------------------------------------------------------------


QUICK = {"p2_timeout": 0.3, "p2_star_timeout": 0.5, "request_timeout": 1.0}


def calls_of_every_kind(plugin: CanDiagnosticsPlugin) -> list[Awaitable[Any]]:
    """One UDS read, an identification read, an OBD-II read, every ECU's DTCs and a scan, at once;
    each bounded by the timeout the plugin declares for its method."""
    work: list[tuple[str, dict[str, Any]]] = [
        ("vehicle.readVin", {"source": "uds"}),
        ("vehicle.readDids", {"ecu": "transmission", "dids": ["F18C"]}),
        ("vehicle.readPids", {"pids": ["rpm"]}),
        ("vehicle.readDtcs", {}),
        ("vehicle.scanEcus", {}),
    ]
    return [asyncio.wait_for(call(plugin, name, args), DECLS[name].timeout_s) for name, args in work]


def test_silent_ecus_time_out_within_bounds_leak_nothing_and_come_back(channel: str, sim: Simulator) -> None:
    async def body(plugin: CanDiagnosticsPlugin, published: Published) -> None:
        for _ in range(2):  # warm up: every worker and stack thread exists from here on
            await asyncio.gather(*calls_of_every_kind(plugin))
        before = threading.active_count()
        stream_decl = DECLS["vehicle.watchPids"]
        events: AsyncIterator[dict[str, Any]] = plugin.stream(
            stream_decl, {"pids": ["rpm"], "rateHz": 10}, CallContext("org.test.app", 2, stream_decl.name)
        )
        assert "values" in await anext(events)

        sim.inject("silence", ecu=None, count=None)  # every ECU stops answering
        for _ in range(2):
            results = await asyncio.gather(*calls_of_every_kind(plugin), return_exceptions=True)
            vin, dids, pids, dtcs, scan = results
            for failed in (vin, dids, pids):
                assert isinstance(failed, PluginTimeout), repr(failed)
                assert "did not answer" in str(failed) and "in time" in str(failed)
            assert isinstance(dtcs, dict) and dtcs["dtcs"] == [], dtcs
            assert set(dtcs["errors"]) == {"engine", "transmission", "abs"}
            assert all("did not answer" in e for e in dtcs["errors"].values())
            assert isinstance(scan, dict) and not any(e["present"] for e in scan["ecus"]), scan
        silent = await asyncio.wait_for(anext(events), FAST_S)  # the stream reports and goes on
        while "values" in silent:  # (an event read before the silence may still be queued)
            silent = await asyncio.wait_for(anext(events), FAST_S)
        assert "did not answer" in silent["error"]

        sim.clear_faults()
        back = await asyncio.wait_for(anext(events), FAST_S)
        while "values" not in back:
            back = await asyncio.wait_for(anext(events), FAST_S)
        assert back["values"]["rpm"]["unit"] == "rpm"
        await events.aclose()  # type: ignore[attr-defined]
        assert (await call(plugin, "vehicle.readVin", {}))["vin"] == sim.scenario.vin

        sim.stop()  # the ECUs pause entirely (no ISO-TP stack at all), then resume
        with pytest.raises(PluginTimeout, match="did not answer"):
            await asyncio.wait_for(call(plugin, "vehicle.readPids", {"pids": ["speed"]}), FAST_S)
        sim.start()
        assert "speed" in (await call(plugin, "vehicle.readPids", {"pids": ["speed"]}))["values"]
        # finished stream and stack threads end soon (how soon depends on the machine); a leak stays
        deadline = asyncio.get_running_loop().time() + FAST_S
        while threading.active_count() > before and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        after = threading.active_count()
        assert after <= before, f"{after - before} threads left behind: {threading.enumerate()}"

    run(channel, body, QUICK)
