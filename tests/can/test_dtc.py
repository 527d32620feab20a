"""DTC decoding and the shipped generic description table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vehicle_host.plugins.can_diagnostics import dtc
from vehicle_host.plugins.contract import InvalidArguments


@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"\x03\x01", "P0301"), (b"\x04\x20", "P0420"), (b"\x40\x35", "C0035"), (b"\xc1\x00", "U0100"),
     (b"\x81\x23", "B0123"), (b"\x27\x00", "P2700"), (b"\xff\xff", "U3FFF"), (b"\x00\x00", "P0000")],
)  # fmt: skip
def test_decode_obd_two_byte_codes(raw: bytes, code: str) -> None:
    assert dtc.decode_obd(raw) == code
    assert dtc.parse_code(code) == int.from_bytes(raw, "big")


def test_uds_three_byte_dtc_carries_failure_type_and_status() -> None:
    info = dtc.uds_dtc_info(0x40351C, 0x2B)
    assert info["code"] == "C0035"
    assert info["failureType"] == 0x1C
    assert info["dtc"] == "C0035-1C"
    assert info["description"] == "Left Front Wheel Speed Sensor Circuit"
    bits = info["statusBits"]
    assert bits["testFailed"] and bits["testFailedThisOperationCycle"] and bits["confirmedDTC"]
    assert bits["testFailedSinceLastClear"] and not bits["pendingDTC"]
    assert not bits["warningIndicatorRequested"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("P0301", 0x030100), ("p0301-1c", 0x03011C), ("0x40351C", 0x40351C), (0xC10000, 0xC10000)],
)
def test_parse_uds_dtc_forms(text: str | int, value: int) -> None:
    assert dtc.parse_uds_dtc(text) == value


@pytest.mark.parametrize("bad", ["X0301", "P4301", "P03", "P0301-ZZ", "P0G01", "0xZZ", 0x1000000, -1])
def test_bad_codes_are_invalid_arguments(bad: str | int) -> None:
    with pytest.raises(InvalidArguments):
        dtc.parse_uds_dtc(bad)


@given(st.integers(0, 0xFFFF))
def test_code_round_trips(value: int) -> None:
    assert dtc.parse_code(dtc.code_from_int(value)) == value


def test_table_has_the_simulated_codes_and_hundreds_more() -> None:
    table = dtc.generic_table()
    assert len(table) >= 300
    for code in ("P0301", "P0420", "P0171", "P0700", "C0035", "U0100"):
        assert table[code], code
    assert dtc.describe("P0301") == "Cylinder 1 Misfire Detected"
    assert all(len(code) == 5 and code[0] in "PCBU" for code in table)
    assert {code[0] for code in table} == set("PCBU")


def test_unknown_code_says_manufacturer_specific() -> None:
    assert "manufacturer-specific" in dtc.describe("P1ABC")
    assert dtc.obd_dtc_info("B1234")["description"] == dtc.NO_DESCRIPTION
