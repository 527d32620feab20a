"""Hostile use of the vehicle bus: clearing codes while moving, flooding diagnostics through the API,
and a rogue node putting malformed frames on the bus.

The can_diagnostics plugin runs as a real plugin host process (tests/integration/plugin_process.py)
on a ``vhbus`` virtual CAN shared with the ECU simulator, so the calls go through the real host's
limits and the real ISO-TP/UDS stack.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import can

from tests.integration.plugin_process import FakeHub
from vehicle_host.hub.gateway import AppPolicy, decide, rules_from_declare
from vehicle_host.plugins.can_diagnostics.plugin import CanDiagnosticsPlugin
from vehicle_host.plugins.host import MAX_IN_FLIGHT_PER_APP
from vehicle_host.simulator import Scenario, Simulator

FLOODER, DRIVER_APP = "com.partner.flood", "com.partner.dash"
CAN_RULES = rules_from_declare("can_diagnostics", [m.to_wire() for m in CanDiagnosticsPlugin.declarations()])
ENGINE_DTCS = {"P0301", "P0420", "P0171"}


class Car:
    """The simulator and a rogue node on one vhbus, and the plugin host process under a FakeHub."""

    def __init__(self, hub: FakeHub, sim: Simulator, rogue: can.BusABC) -> None:
        self.hub = hub
        self.sim = sim
        self.rogue = rogue
        self._ids = iter(range(1000, 10**6))

    async def call(self, method: str, args: dict[str, Any] | None = None, app_id: str | None = None) -> Any:
        return await self.hub.call(next(self._ids), method, args or {}, app_id=app_id, timeout=30)

    async def engine_dtcs(self) -> set[str]:
        answer = await self.call("vehicle.readDtcs", {"ecu": "engine"})
        assert answer["ok"], answer
        return {d["code"] for d in answer["result"]["dtcs"]}

    async def moving(self, moving: bool) -> dict[str, Any]:
        """The plugin's published vehicle state once it agrees the car is (not) moving."""
        return await self.hub.state(
            "vehicle",
            lambda v: not v["stale"] and v["parked"] is not moving and (v["speed_kmh"] > 0) is moving,
        )


@asynccontextmanager
async def car(short_dir: Path) -> AsyncIterator[Car]:
    endpoint = f"ipc://{short_dir / 'can0.sock'}"
    bus = can.Bus(interface="vhbus", channel=endpoint)
    sim = Simulator(bus, Scenario.default())
    sim.park(True)
    sim.start()
    rogue = can.Bus(interface="vhbus", channel=endpoint)
    config = {"interface": "vhbus", "channel": endpoint, "request_timeout": 2.0, "p2_timeout": 0.5}
    try:
        with FakeHub(
            f"ipc://{short_dir / 'hub.sock'}", "can_diagnostics", app_id=DRIVER_APP, timeout=30
        ) as hub:
            async with hub.host(short_dir / "state", config):
                await hub.accept()
                yield Car(hub, sim, rogue)
    finally:
        rogue.shutdown()
        sim.stop()
        bus.shutdown()


def run(short_dir: Path, body: Callable[[Car], Awaitable[None]]) -> None:
    async def main() -> None:
        async with car(short_dir) as c:
            await c.moving(False)
            await body(c)

    asyncio.run(main())


def test_clearing_dtcs_while_moving_is_refused_and_the_codes_stay(short_dir: Path) -> None:
    async def body(c: Car) -> None:
        assert await c.engine_dtcs() == ENGINE_DTCS
        c.sim.set_speed(48)
        state = await c.moving(True)
        # the gateway refuses it (granted, declared, but moving) ...
        app = AppPolicy(FLOODER, "Partner", permissions=frozenset({"vehicle.diagnostics.clear"}))
        gate = decide(
            app, "vehicle.clearDtcs", {"ecu": "engine"}, plugin_rules=CAN_RULES,
            grants={"vehicle.diagnostics.clear": True}, vehicle=state,
        )  # fmt: skip
        assert gate.code == "denied" and "works only while parked" in gate.message
        # ... and so does the plugin itself when a call reaches it anyway
        for args in ({"ecu": "engine"}, {}):
            answer = await c.call("vehicle.clearDtcs", args)
            assert answer["ok"] is False and answer["error"]["code"] == "denied"
            assert (
                "vehicle.clearDtcs refused: the vehicle is not parked (speed 48" in answer["error"]["message"]
            )
        assert await c.engine_dtcs() == ENGINE_DTCS  # nothing reached the ECU
        c.sim.set_speed(None)
        c.sim.park(True)
        await c.moving(False)
        cleared = await c.call("vehicle.clearDtcs", {"ecu": "engine"})
        assert cleared["ok"] and cleared["result"]["cleared"] == ["engine"]  # the refusal was the state
        assert await c.engine_dtcs() == set()

    run(short_dir, body)


async def _result(hub: FakeHub, call_id: int) -> dict[str, Any]:
    message = await hub.wait(lambda m: m.type == "plugin.result" and m.payload["call_id"] == call_id)
    return dict(message.payload)


def test_an_app_flooding_diagnostics_is_bounded_and_others_are_still_served(short_dir: Path) -> None:
    async def body(c: Car) -> None:
        vin = (await c.call("vehicle.readVin", {"ecu": "engine"}))["result"]["vin"]
        ids = list(range(500, 580))
        for call_id in ids:  # a tight loop: no call waits for the one before
            payload = {
                "call_id": call_id,
                "app_id": FLOODER,
                "method": "vehicle.readVin",
                "args": {"ecu": "engine"},
            }
            await c.hub.send("plugin.call", payload)
        other = await c.call("vehicle.readVin", {"ecu": "engine"}, app_id=DRIVER_APP)
        answers = [await _result(c.hub, i) for i in ids]
        assert other["ok"] and other["result"]["vin"] == vin  # the other app is served during the flood
        busy = [a for a in answers if not a["ok"]]
        served = [a for a in answers if a["ok"]]
        assert busy and all(a["error"]["code"] == "busy" for a in busy)
        assert all(
            f"already has {MAX_IN_FLIGHT_PER_APP} calls running" in a["error"]["message"] for a in busy
        )
        assert served and all(a["result"]["vin"] == vin for a in served)
        assert len(answers) == 80  # every call got an answer: none lost, none hanging
        again = await c.call("vehicle.readVin", {"ecu": "engine"}, app_id=FLOODER)
        assert again["ok"] and again["result"]["vin"] == vin  # the bound is released

    run(short_dir, body)


def _malformed_frames() -> list[can.Message]:
    """What a rogue node might send on the tester's and the ECU's diagnostic ids."""
    frames: list[can.Message] = []
    for arbitration_id in (0x7E8, 0x7E0, 0x7DF):
        frames += [
            can.Message(arbitration_id=arbitration_id, data=b"", is_extended_id=False),  # DLC 0
            can.Message(
                arbitration_id=arbitration_id, data=b"\x07", is_extended_id=False
            ),  # SF length past DLC
            can.Message(arbitration_id=arbitration_id, data=b"\x0f" * 8, is_extended_id=False),  # SF len 15
            can.Message(
                arbitration_id=arbitration_id, data=b"\xf3" + bytes(7), is_extended_id=False
            ),  # PCI type F
            can.Message(
                arbitration_id=arbitration_id, data=b"\x1f\xff" + bytes(6), is_extended_id=False
            ),  # FF 4095
            can.Message(  # FF with the 32-bit escape: 4 GiB announced
                arbitration_id=arbitration_id, data=b"\x10\x00\xff\xff\xff\xff\x62\xf1", is_extended_id=False
            ),
            can.Message(
                arbitration_id=arbitration_id, data=b"\x25" + b"\xaa" * 7, is_extended_id=False
            ),  # CF alone
            can.Message(
                arbitration_id=arbitration_id, data=b"\x30\x00\x00", is_extended_id=False
            ),  # stray FC
            can.Message(
                arbitration_id=arbitration_id, data=b"\x33" + bytes(7), is_extended_id=False
            ),  # bad FC
            can.Message(
                arbitration_id=arbitration_id, data=b"\x03\x7f\x22\x78", is_extended_id=False
            ),  # pending
        ]
    frames += [  # wrong-ID answers: a positive VIN answer on ids no tester listens to
        can.Message(arbitration_id=i, data=b"\x10\x14\x62\xf1\x90EVI", is_extended_id=False)
        for i in (0x7E9, 0x7EF)
    ]
    frames.append(can.Message(arbitration_id=0x18DAF110, data=b"\x02\x50\x01", is_extended_id=True))
    return frames


def _random_frames(count: int, seed: int) -> list[can.Message]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        extended = rng.random() < 0.3
        arbitration_id = (
            rng.randrange(1 << 29) if extended else rng.choice([0x7E8, 0x7E9, 0x7DF, rng.randrange(0x800)])
        )
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(9)))
        out.append(can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=extended))
    return out


def test_malformed_frames_from_a_rogue_node_leave_diagnostics_answering_correctly(short_dir: Path) -> None:
    async def body(c: Car) -> None:
        vin = (await c.call("vehicle.readVin", {"ecu": "engine"}))["result"]["vin"]
        for frame in _malformed_frames():
            c.rogue.send(frame)
        await asyncio.sleep(0.3)
        assert (await c.call("vehicle.readVin", {"ecu": "engine"}))["result"]["vin"] == vin
        assert await c.engine_dtcs() == ENGINE_DTCS

    run(short_dir, body)


def test_a_random_frame_flood_during_requests_gives_right_answers_or_clear_errors(short_dir: Path) -> None:
    async def body(c: Car) -> None:
        vin = (await c.call("vehicle.readVin", {"ecu": "engine"}))["result"]["vin"]

        def flood() -> None:
            for frame in _random_frames(3000, seed=9) + _malformed_frames() * 20:
                c.rogue.send(frame)

        sender = asyncio.ensure_future(asyncio.to_thread(flood))
        during = [await c.call("vehicle.readVin", {"ecu": "engine"}) for _ in range(5)]
        await sender
        for answer in during:  # right, or a clear error: never a wrong VIN, never a dead plugin
            if answer["ok"]:
                assert answer["result"]["vin"] == vin
            else:
                assert (
                    answer["error"]["code"] in ("device", "timeout", "failed") and answer["error"]["message"]
                )
        await asyncio.sleep(0.3)
        assert (await c.call("vehicle.readVin", {"ecu": "engine"}))["result"]["vin"] == vin
        assert await c.engine_dtcs() == ENGINE_DTCS
        status = await c.call("vehicle.adapterStatus")
        assert status["ok"] and status["result"]["present"] is True

    run(short_dir, body)
