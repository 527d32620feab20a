"""OBD-II request/answer codec: formulas, bitmaps, DTC lists, malformed answers."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vehicle_host.plugins.can_diagnostics import obd
from vehicle_host.plugins.contract import InvalidArguments, PluginError


@pytest.mark.parametrize(
    ("pid", "data", "value"),
    [
        (0x04, b"\xff", 100.0),
        (0x05, b"\x7b", 83),
        (0x0C, b"\x1a\xf8", 1726.0),
        (0x0D, b"\x3c", 60),
        (0x0F, b"\x28", 0),
        (0x10, b"\x01\x90", 4.0),
        (0x11, b"\x80", 50.2),
        (0x2F, b"\x40", 25.1),
        (0x46, b"\x3d", 21),
    ],
)
def test_pid_formulas(pid: int, data: bytes, value: float) -> None:
    decoded = obd.parse_current(bytes([0x41, pid]) + data, pid)
    assert decoded["value"] == value
    assert decoded["pid"] == pid and decoded["unit"]


def test_supported_pid_bitmap() -> None:
    decoded = obd.parse_current(b"\x41\x00\xbe\x1f\xa8\x13", 0x00)
    assert decoded["supported"] == [1, 3, 4, 5, 6, 7, 12, 13, 14, 15, 16, 17, 19, 21, 28, 31, 32]


def test_dtc_lists_with_count_byte_and_padding() -> None:
    assert obd.parse_dtc_list(b"\x43\x02\x03\x01\x04\x20", 0x03) == ["P0301", "P0420"]
    assert obd.parse_dtc_list(b"\x47\x01\x01\x71", 0x07) == ["P0171"]
    assert obd.parse_dtc_list(b"\x4a\x00", 0x0A) == []
    assert obd.parse_dtc_list(b"\x43\x02\x03\x01\x00\x00", 0x03) == ["P0301"]


def test_freeze_frame_and_vehicle_info() -> None:
    assert obd.parse_freeze_frame(b"\x42\x02\x00\x03\x01", 0x02, 0)["value"] == "P0301"
    assert obd.parse_freeze_frame(b"\x42\x0d\x00\x3e", 0x0D, 0)["value"] == 62
    vin = obd.parse_vehicle_info_text(b"\x49\x02\x01" + b"1VHDA5E26NA104729", 0x02)
    assert vin == "1VHDA5E26NA104729"
    name = obd.parse_vehicle_info_text(b"\x49\x0a\x01ECM-EngineControl\x00\x00\x00", 0x0A)
    assert name == "ECM-EngineControl"


@pytest.mark.parametrize(
    ("payload", "call"),
    [
        (b"", lambda p: obd.parse_current(p, 0x0C)),
        (b"\x41\x0d\x00", lambda p: obd.parse_current(p, 0x0C)),  # wrong PID echo
        (b"\x41\x0c\x1a", lambda p: obd.parse_current(p, 0x0C)),  # one byte short
        (b"\x62\x0c\x1a\xf8", lambda p: obd.parse_current(p, 0x0C)),  # wrong service
        (b"\x43\x03\x03\x01", lambda p: obd.parse_dtc_list(p, 0x03)),  # count larger than data
        (b"\x49\x02\x01SHORTVIN", lambda p: obd.parse_vehicle_info_text(p, 0x02)),
        (b"\x49\x02\x01" + bytes(range(0x80, 0x91)), lambda p: obd.parse_vehicle_info_text(p, 0x02)),
        (b"\x42\x0d\x01\x3e", lambda p: obd.parse_freeze_frame(p, 0x0D, 0)),  # wrong frame
    ],
)
def test_malformed_answers_raise_obd_response_error(payload: bytes, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(obd.ObdResponseError, match="malformed"):
        call(payload)


def test_negative_response_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="0x12"):
        obd.parse_current(b"\x7f\x01\x12", 0x0C)


def test_pid_names() -> None:
    assert obd.pid_number("rpm") == 0x0C
    assert obd.pid_number("0d") == 0x0D
    assert obd.pid_number(0x46) == 0x46
    with pytest.raises(InvalidArguments, match="unknown PID"):
        obd.pid_number("warp")
    with pytest.raises(InvalidArguments):
        obd.pid_number(0x100)


@given(st.binary(max_size=64), st.integers(0, 255))
def test_hostile_answers_never_crash(payload: bytes, pid: int) -> None:
    for call in (
        lambda: obd.parse_current(payload, pid),
        lambda: obd.parse_freeze_frame(payload, pid, 0),
        lambda: obd.parse_dtc_list(payload, 0x03),
        lambda: obd.parse_vehicle_info_text(payload, 0x02),
        lambda: obd.parse_clear(payload),
    ):
        with contextlib.suppress(PluginError):
            call()
