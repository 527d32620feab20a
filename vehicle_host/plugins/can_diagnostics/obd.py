"""OBD-II (SAE J1979 / ISO 15765-4) requests and answers as bytes in, values out (no I/O).

udsoncan has no OBD-II service, so the service sends these payloads through the same ISO-TP stacks
it uses for UDS. Every parser checks the echoed mode and PID and the payload length and raises
:class:`ObdResponseError` for anything malformed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vehicle_host.plugins.can_diagnostics import dtc
from vehicle_host.plugins.contract import InvalidArguments, PluginError

MODE_CURRENT = 0x01
MODE_FREEZE_FRAME = 0x02
MODE_STORED_DTCS = 0x03
MODE_CLEAR_DTCS = 0x04
MODE_PENDING_DTCS = 0x07
MODE_VEHICLE_INFO = 0x09
MODE_PERMANENT_DTCS = 0x0A
NEGATIVE_RESPONSE = 0x7F
RESPONSE_PENDING = 0x78
#: PIDs 00, 20, 40, ... C0 answer a bitmap of which of the next 32 PIDs the ECU supports.
SUPPORT_PIDS = tuple(range(0x00, 0xE0, 0x20))
VIN_LENGTH = 17


class ObdResponseError(PluginError):
    """An ECU answered an OBD-II request with something that is not a valid answer."""


@dataclass(frozen=True, slots=True)
class Pid:
    pid: int
    name: str
    key: str
    unit: str
    size: int
    decode: Callable[[bytes], float | int]


def _a(data: bytes) -> int:
    return data[0]


def _ab(data: bytes) -> int:
    return (data[0] << 8) | data[1]


PIDS: Mapping[int, Pid] = {
    p.pid: p
    for p in (
        Pid(0x04, "Calculated engine load", "engineLoad", "%", 1, lambda d: round(_a(d) * 100 / 255, 2)),
        Pid(0x05, "Engine coolant temperature", "coolantTemp", "°C", 1, lambda d: _a(d) - 40),
        Pid(0x0B, "Intake manifold absolute pressure", "intakePressure", "kPa", 1, _a),
        Pid(0x0C, "Engine speed", "rpm", "rpm", 2, lambda d: _ab(d) / 4),
        Pid(0x0D, "Vehicle speed", "speed", "km/h", 1, _a),
        Pid(0x0E, "Timing advance", "timingAdvance", "° before TDC", 1, lambda d: _a(d) / 2 - 64),
        Pid(0x0F, "Intake air temperature", "intakeTemp", "°C", 1, lambda d: _a(d) - 40),
        Pid(0x10, "Mass air flow rate", "maf", "g/s", 2, lambda d: _ab(d) / 100),
        Pid(0x11, "Throttle position", "throttle", "%", 1, lambda d: round(_a(d) * 100 / 255, 2)),
        Pid(0x1F, "Run time since engine start", "runTime", "s", 2, _ab),
        Pid(0x21, "Distance traveled with MIL on", "distanceWithMil", "km", 2, _ab),
        Pid(0x2F, "Fuel tank level input", "fuelLevel", "%", 1, lambda d: round(_a(d) * 100 / 255, 2)),
        Pid(0x31, "Distance traveled since codes cleared", "distanceSinceClear", "km", 2, _ab),
        Pid(0x42, "Control module voltage", "moduleVoltage", "V", 2, lambda d: _ab(d) / 1000),
        Pid(0x46, "Ambient air temperature", "ambientTemp", "°C", 1, lambda d: _a(d) - 40),
        Pid(0x5C, "Engine oil temperature", "oilTemp", "°C", 1, lambda d: _a(d) - 40),
    )
}
PID_BY_KEY: Mapping[str, Pid] = {p.key: p for p in PIDS.values()}


def pid_number(value: int | str) -> int:
    """A PID from an int, a hex string (``"0C"``, ``"0x0c"``) or a key name (``"rpm"``)."""
    if isinstance(value, int):
        number = value
    elif value in PID_BY_KEY:
        return PID_BY_KEY[value].pid
    else:
        try:
            number = int(value, 16)
        except ValueError:
            known = ", ".join(sorted(PID_BY_KEY))
            raise InvalidArguments(f"unknown PID {value!r}: use a hex number or one of {known}") from None
    if not 0 <= number <= 0xFF:
        raise InvalidArguments(f"PID {number:#x} is out of range 00..FF")
    return number


def check_negative(payload: bytes, mode: int) -> None:
    """Raise for a negative response ``7F <mode> <nrc>`` (the service layer handles 0x78 itself)."""
    if len(payload) >= 1 and payload[0] == NEGATIVE_RESPONSE:
        nrc = payload[2] if len(payload) >= 3 else -1
        raise PluginError(f"the ECU refused OBD-II mode {mode:02X} (negative response code {nrc:#04x})")


def _expect(payload: bytes, mode: int, min_len: int) -> None:
    check_negative(payload, mode)
    if not payload or payload[0] != mode + 0x40:
        got = f"{payload[0]:#04x}" if payload else "an empty frame"
        raise ObdResponseError(
            f"malformed OBD-II answer to mode {mode:02X}: expected {mode + 0x40:#04x}, got {got}"
        )
    if len(payload) < min_len:
        raise ObdResponseError(
            f"malformed OBD-II answer to mode {mode:02X}: {len(payload)} bytes is too short"
        )


def request_current(pid: int) -> bytes:
    return bytes((MODE_CURRENT, pid))


def request_freeze_frame(pid: int, frame: int = 0) -> bytes:
    return bytes((MODE_FREEZE_FRAME, pid, frame))


def decode_pid_value(pid: int, data: bytes) -> dict[str, Any]:
    """The value of a mode 01/02 PID from its data bytes (after mode and PID echo)."""
    spec = PIDS.get(pid)
    if spec is None:
        return {"pid": pid, "name": f"PID {pid:02X}", "raw": data.hex()}
    if len(data) < spec.size:
        raise ObdResponseError(f"malformed OBD-II answer for PID {pid:02X}: needs {spec.size} data bytes")
    return {
        "pid": pid,
        "key": spec.key,
        "name": spec.name,
        "value": spec.decode(data[: spec.size]),
        "unit": spec.unit,
    }


def parse_current(payload: bytes, pid: int) -> dict[str, Any]:
    """Answer to ``01 <pid>``: ``41 <pid> data...``."""
    _expect(payload, MODE_CURRENT, 3)
    if payload[1] != pid:
        raise ObdResponseError(f"malformed OBD-II answer: asked PID {pid:02X}, got {payload[1]:02X}")
    if pid in SUPPORT_PIDS:
        return {"pid": pid, "supported": supported_from_bitmap(pid, payload[2:])}
    return decode_pid_value(pid, payload[2:])


def supported_from_bitmap(base: int, data: bytes) -> list[int]:
    """PIDs ``base+1 .. base+32`` whose bit is set in the 4-byte bitmap (MSB first)."""
    if len(data) < 4:
        raise ObdResponseError(f"malformed OBD-II answer: PID {base:02X} bitmap needs 4 bytes")
    bits = int.from_bytes(data[:4], "big")
    return [base + i + 1 for i in range(32) if bits & (1 << (31 - i))]


def parse_freeze_frame(payload: bytes, pid: int, frame: int) -> dict[str, Any]:
    """Answer to ``02 <pid> <frame>``: ``42 <pid> <frame> data...``; PID 02 is the DTC that froze it."""
    _expect(payload, MODE_FREEZE_FRAME, 4)
    if payload[1] != pid or payload[2] != frame:
        raise ObdResponseError(
            f"malformed OBD-II answer: asked freeze frame PID {pid:02X} frame {frame}, "
            f"got PID {payload[1]:02X} frame {payload[2]}"
        )
    data = payload[3:]
    if pid == 0x02:
        if len(data) < 2:
            raise ObdResponseError("malformed OBD-II answer: freeze frame DTC needs 2 bytes")
        code = dtc.decode_obd(data[:2])
        return {"pid": pid, "key": "dtc", "name": "DTC that caused the freeze frame", "value": code}
    if pid in SUPPORT_PIDS:
        return {"pid": pid, "supported": supported_from_bitmap(pid, data)}
    return decode_pid_value(pid, data)


def parse_dtc_list(payload: bytes, mode: int) -> list[str]:
    """Answer to mode 03/07/0A on CAN: ``43 <count> (hi lo)*``. All-zero pairs are padding."""
    _expect(payload, mode, 2)
    count = payload[1]
    body = payload[2:]
    if len(body) < 2 * count or len(body) % 2:
        raise ObdResponseError(
            f"malformed OBD-II answer to mode {mode:02X}: {count} DTCs announced, {len(body)} bytes sent"
        )
    codes: list[str] = []
    for i in range(count):
        pair = body[2 * i : 2 * i + 2]
        if pair != b"\x00\x00":
            codes.append(dtc.decode_obd(pair))
    return codes


def parse_clear(payload: bytes) -> None:
    _expect(payload, MODE_CLEAR_DTCS, 1)


def parse_vehicle_info_text(payload: bytes, pid: int) -> str:
    """Answer to ``09 02`` (VIN) or ``09 0A`` (ECU name): ``49 <pid> <items> ascii...``."""
    _expect(payload, MODE_VEHICLE_INFO, 4)
    if payload[1] != pid:
        raise ObdResponseError(f"malformed OBD-II answer: asked mode 09 PID {pid:02X}, got {payload[1]:02X}")
    text = payload[3:].rstrip(b"\x00 ").lstrip(b"\x00")
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        raise ObdResponseError(f"malformed OBD-II answer: mode 09 PID {pid:02X} is not ASCII text") from None
    if not decoded.isprintable():
        raise ObdResponseError(f"malformed OBD-II answer: mode 09 PID {pid:02X} has control characters")
    if pid == 0x02 and len(decoded) != VIN_LENGTH:
        raise ObdResponseError(f"malformed VIN: {len(decoded)} characters instead of {VIN_LENGTH}")
    return decoded
