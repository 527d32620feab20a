"""OBD-II over raw ISO-TP, the DBC broadcasts and the drive cycle of the simulator."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from vehicle_host.simulator import Scenario, Simulator
from vehicle_host.simulator.obd import bitmap
from vehicle_host.simulator.vehicle import VehicleModel, load_dbc

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.can.conftest import DiagTester


def _pids(bits: bytes, base: int) -> set[int]:
    value = int.from_bytes(bits, "big")
    return {base + i for i in range(1, 33) if value & (1 << (32 - i))}


def test_mode01_supported_pid_bitmaps(simulator: Simulator, tester: DiagTester) -> None:
    supported: set[int] = set()
    for base in (0x00, 0x20, 0x40):
        response = tester.request(bytes([0x01, base]))
        assert response is not None and response[:2] == bytes([0x41, base])
        supported |= _pids(response[2:6], base)
    expected = {0x01, 0x04, 0x05, 0x0C, 0x0D, 0x0F, 0x10, 0x11, 0x2F, 0x46}
    assert supported - {0x20, 0x40} == expected
    assert bitmap(0x40, frozenset(expected)) == bytes([0x04, 0, 0, 0])  # only 0x46 above 0x40


def test_mode01_live_values_follow_the_vehicle(simulator: Simulator, tester: DiagTester) -> None:
    simulator.set_speed(57)
    response = tester.request(b"\x01\x0d\x0c\x05\x46")
    assert response is not None and response[0] == 0x41
    values = {}
    i = 1
    sizes = {0x0D: 1, 0x0C: 2, 0x05: 1, 0x46: 1}
    while i < len(response):
        pid = response[i]
        values[pid] = int.from_bytes(response[i + 1 : i + 1 + sizes[pid]], "big")
        i += 1 + sizes[pid]
    assert values[0x0D] == 57
    assert values[0x0C] / 4 > 750  # above idle in gear
    assert values[0x46] - 40 == simulator.scenario.ambient_c
    assert tester.request(b"\x01\x1c", timeout=0.3) is None  # unsupported PID: no answer at all


def test_mode03_07_0a_and_clear(simulator: Simulator, tester: DiagTester) -> None:
    assert tester.request(b"\x03") == bytes([0x43, 2, 0x03, 0x01, 0x04, 0x20])
    assert tester.request(b"\x07") == bytes([0x47, 1, 0x01, 0x71])
    assert tester.request(b"\x0a") == bytes([0x4A, 1, 0x04, 0x20])
    monitor = tester.request(b"\x01\x01")
    assert monitor is not None and monitor[2] == 0x80 | 2  # MIL on, two confirmed DTCs
    assert tester.request(b"\x04") == b"\x44"
    assert tester.request(b"\x03") == bytes([0x43, 0])
    assert tester.request(b"\x0a") == bytes([0x4A, 1, 0x04, 0x20])
    monitor = tester.request(b"\x01\x01")
    assert monitor is not None and monitor[2] == 0


def test_mode02_freeze_frame(simulator: Simulator, tester: DiagTester) -> None:
    response = tester.request(b"\x02\x02\x00\x0d\x00")
    assert response == bytes([0x42, 0x02, 0x00, 0x03, 0x01, 0x0D, 0x00, 62])


def test_mode09_vin_ecu_name_and_support(simulator: Simulator, tester: DiagTester) -> None:
    assert tester.request(b"\x09\x02") == b"\x49\x02\x01" + simulator.scenario.vin.encode()
    name = tester.request(b"\x09\x0a")
    assert name is not None and name[3:].rstrip(b"\x00") == b"ECM-EngineControl" and len(name) == 23
    support = tester.request(b"\x09\x00")
    assert support is not None and _pids(support[2:6], 0) == {0x02, 0x0A}


def test_functional_request_reaches_obd_ecus_only(simulator: Simulator, tester: DiagTester) -> None:
    stacks = {rx: tester.stack(0x7DF, rx) for rx in (0x7E8, 0x7E9, 0x7EA)}
    stacks[0x7E8].send(b"\x01\x0d")  # one single frame on 0x7DF; every stack listens on its own id
    answers = {rx: stack.recv(block=True, timeout=1.0) for rx, stack in stacks.items()}
    assert answers[0x7E8] is not None and answers[0x7E8][:2] == b"\x41\x0d"
    assert answers[0x7E9] is not None and answers[0x7E9][:2] == b"\x41\x0d"
    assert answers[0x7EA] is None  # the ABS ECU does not speak OBD and stays quiet
    # an OBD request addressed physically to a non-OBD ECU gets serviceNotSupported
    assert tester.request(b"\x01\x00", 0x7E2, 0x7EA) == b"\x7f\x01\x11"


def test_broadcasts_decode_with_the_dbc(
    start_simulator: Callable[..., Simulator], tester: DiagTester
) -> None:
    simulator = start_simulator()
    simulator.set_speed(42.5)
    db = load_dbc()
    tester.notifier.stop()
    seen: dict[str, list[dict[str, object]]] = {}
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        msg = tester.bus.recv(0.1)
        if msg is not None and msg.arbitration_id in (0x1A0, 0x1A1, 0x1A2):
            name = db.get_message_by_frame_id(msg.arbitration_id).name
            seen.setdefault(name, []).append(db.decode_message(msg.arbitration_id, msg.data))
    assert set(seen) == {"VehicleSpeed", "Gear", "Ignition"}
    assert len(seen["VehicleSpeed"]) > 2 * len(seen["Gear"])  # 20 ms vs 100 ms
    assert seen["VehicleSpeed"][-1]["VehicleSpeed"] == 42.5
    assert str(seen["Gear"][-1]["GearPosition"]) == "D"
    assert str(seen["Ignition"][-1]["IgnitionState"]) == "ON"
    counters = [int(v["RollingCounter"]) for v in seen["VehicleSpeed"]]  # type: ignore[call-overload]
    assert counters == list(range(counters[0], counters[0] + len(counters)))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_drive_cycle_rises_and_falls_and_parking_holds() -> None:
    clock = FakeClock()
    model = VehicleModel(replace(Scenario.default(), cycle_s=40.0), clock=clock)
    trace = []
    for step in range(0, 430):
        clock.now = step * 0.1
        trace.append(model.state())
    assert [s.ignition for s in trace[:16:5]] == ["OFF", "ACC", "START", "ON"]
    speeds = [s.speed_kmh for s in trace]
    peak = speeds.index(max(speeds))
    assert max(speeds) > 80 and speeds[peak + 120] < max(speeds) and speeds[-1] == 0
    rising = speeds[60 : peak - 100]
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(rising))
    assert trace[-1].gear == "P" and trace[peak].gear == "D"
    assert trace[300].coolant_c > trace[20].coolant_c  # the engine warms up
    model.park()
    clock.now = 17.0
    parked = model.state()
    assert (parked.speed_kmh, parked.gear, parked.ignition) == (0.0, "P", "ON") and parked.rpm > 0
