"""Vehicle state from the DBC broadcast frames: decoding, parked rule, staleness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import can
import cantools
import pytest

from vehicle_host.plugins.can_diagnostics.vehicle_state import (
    SignalMap,
    VehicleStateDecoder,
    default_dbc_path,
    significant,
)
from vehicle_host.plugins.contract import PluginError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frames(speed: float, gear: str, ignition: str) -> list[can.Message]:
    db: Any = cantools.database.load_file(str(default_dbc_path()))
    out = []
    signals: tuple[tuple[str, dict[str, Any]], ...] = (
        ("VehicleSpeed", {"VehicleSpeed": speed, "EngineSpeed": 800, "SpeedValid": 1, "RollingCounter": 1}),
        ("Gear", {"GearPosition": gear, "GearCounter": 1}),
        ("Ignition", {"IgnitionState": ignition, "IgnitionCounter": 1}),
    )
    for name, values in signals:
        msg = db.get_message_by_name(name)
        out.append(can.Message(arbitration_id=msg.frame_id, is_extended_id=False, data=msg.encode(values)))
    return out


def feed(decoder: VehicleStateDecoder, messages: list[can.Message]) -> None:
    for msg in messages:
        decoder.on_message_received(msg)


def test_no_frames_is_stale_and_not_parked() -> None:
    state = VehicleStateDecoder().snapshot()
    assert state["stale"] and not state["parked"]
    assert state["speed_kmh"] is None and state["updated"] is None


@pytest.mark.parametrize(
    ("speed", "gear", "ignition", "parked"),
    [(0, "P", "ON", True), (0, "N", "OFF", True), (0, "N", "ON", False), (42.5, "D", "ON", False),
     (0.5, "D", "OFF", True), (3, "N", "OFF", False)],
)  # fmt: skip
def test_parked_rule(speed: float, gear: str, ignition: str, parked: bool) -> None:
    decoder = VehicleStateDecoder(clock=Clock())
    feed(decoder, frames(speed, gear, ignition))
    state = decoder.snapshot()
    assert state["parked"] is parked and not state["stale"]
    assert (
        state["speed_kmh"] == pytest.approx(speed) and state["gear"] == gear and state["ignition"] == ignition
    )


def test_stale_after_a_second_without_frames_is_never_parked() -> None:
    clock = Clock()
    decoder = VehicleStateDecoder(clock=clock)
    feed(decoder, frames(0, "P", "ON"))
    assert decoder.snapshot()["parked"]
    clock.now += 1.5
    state = decoder.snapshot()
    assert state["stale"] and not state["parked"] and state["gear"] == "P"
    feed(decoder, frames(0, "P", "ON")[:1])  # only speed comes back: gear is still stale
    assert decoder.snapshot()["stale"]


def test_short_or_foreign_frames_are_ignored() -> None:
    decoder = VehicleStateDecoder(clock=Clock())
    decoder.on_message_received(can.Message(arbitration_id=0x1A1, is_extended_id=False, data=b""))
    decoder.on_message_received(can.Message(arbitration_id=0x123, is_extended_id=False, data=b"\x01"))
    assert decoder.malformed == 1 and decoder.frames == 0
    assert decoder.snapshot()["gear"] is None


def test_significant_ignores_timestamps() -> None:
    a = {"speed_kmh": 10.01, "gear": "D", "ignition": "ON", "parked": False, "stale": False, "updated": 1.0}
    assert significant(a) == significant({**a, "updated": 2.0, "speed_kmh": 10.04})
    assert significant(a) != significant({**a, "gear": "N"})


def test_bad_dbc_path_and_signals_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="cannot read DBC"):
        VehicleStateDecoder(tmp_path / "missing.dbc")
    bad = tmp_path / "bad.dbc"
    bad.write_text("BO_ this is not a dbc")
    with pytest.raises(PluginError, match="invalid"):
        VehicleStateDecoder(bad)
    with pytest.raises(PluginError, match="no message"):
        VehicleStateDecoder(signals=SignalMap.from_config({"gear": "Transmission.Gear"}))
