"""Scenario files: JSON and TOML load, and every mistake gets a message naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.simulator import Scenario, ScenarioError, dtc_to_int, dtc_to_str, vin_check_digit


def _data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "vin": "1VHDA5E26NA104729",
        "parked": True,
        "ecus": [
            {
                "name": "engine",
                "request_id": "0x7E0",
                "response_id": 0x7E8,
                "serial": "S1",
                "dtcs": [{"code": "P0301", "mil": True, "snapshot": {"rpm": 900, "speed_kmh": 0}}],
            }
        ],
    }
    data.update(changes)
    return data


def _write(tmp_path: Path, data: Any, name: str = "s.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_default_vin_is_valid() -> None:
    vin = Scenario.default().vin
    assert vin[8] == vin_check_digit(vin)
    assert vin_check_digit("1HGCM82633A004352") == "3"  # a well-known published example


def test_dtc_codes_round_trip() -> None:
    assert dtc_to_int("P0301") == 0x030100
    assert dtc_to_int("C0035", 0x1C) == 0x40351C
    assert dtc_to_int("U0100") == 0xC10000
    assert dtc_to_str(0xC100) == "U0100" and dtc_to_str(0x0420) == "P0420"


def test_load_json(tmp_path: Path) -> None:
    scenario = Scenario.load(_write(tmp_path, _data()))
    engine = scenario.ecu("engine")
    assert scenario.parked and engine.request_id == 0x7E0 and engine.response_id == 0x7E8
    assert engine.dtcs[0].status == 0xAB and engine.dtcs[0].snapshot is not None
    assert engine.dtcs[0].snapshot.rpm == 900


def test_load_toml(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'vin = "1VHDA5E26NA104729"\ncycle_s = 20\n\n[[ecus]]\nname = "engine"\nrequest_id = "0x7E0"\n'
        'response_id = "0x7E8"\n\n[[ecus.dtcs]]\ncode = "P0171"\nconfirmed = false\npending = true\n'
    )
    scenario = Scenario.load(path)
    assert scenario.cycle_s == 20 and scenario.ecus[0].dtcs[0].status == 0x27


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vin": "1VHDA5E27NA104729"}, "check digit"),
        ({"vin": "1VHDA5E26NA10472O"}, "without I, O, Q"),
        ({"colour": "red"}, "Additional properties"),
        ({"ecus": []}, "ecus"),
        (
            {
                "ecus": [
                    {"name": "engine", "request_id": 0x7E0, "response_id": 0x7E8, "dtcs": [{"code": "X0301"}]}
                ]
            },
            "ecus/0/dtcs/0/code",
        ),
        (
            {
                "ecus": [
                    {"name": "a", "request_id": 0x7E0, "response_id": 0x7E8},
                    {"name": "b", "request_id": 0x7E8, "response_id": 0x7E9},
                ]
            },
            "reuses CAN id 0x7e8",
        ),
        ({"ecus": [{"name": "a", "request_id": "0x900", "response_id": 0x7E8}]}, "not an 11-bit CAN id"),
        ({"ecus": [{"name": "a", "request_id": 0x7DF, "response_id": 0x7E8}]}, "functional address"),
        (
            {"ecus": [{"name": "a", "request_id": 0x7E0, "response_id": 0x7E8, "serial": "x" * 40}]},
            "ecus/0/serial",
        ),
    ],
)
def test_invalid_scenarios_say_what_is_wrong(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as info:
        Scenario.load(_write(tmp_path, _data(**changes)))
    assert "s.json" in str(info.value)


def test_unreadable_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.load(tmp_path / "missing.json")
    with pytest.raises(ScenarioError, match=r"\.json or \.toml"):
        Scenario.load(_write(tmp_path, _data(), "s.yaml"))
    with pytest.raises(ScenarioError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        Scenario.load(tmp_path / "bad.json")
    big = tmp_path / "big.json"
    big.write_text(" " * (300 * 1024))
    with pytest.raises(ScenarioError, match="limit"):
        Scenario.load(big)


@pytest.mark.parametrize(
    ("name", "text"), [("deep.json", "[" * 100_000), ("deep.toml", "a = " + "[" * 100_000)]
)
def test_a_deeply_nested_scenario_file_is_a_clear_error(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ScenarioError, match="is not valid"):
        Scenario.load(tmp_path / name)
