"""OBD-II (SAE J1979 / ISO 15765-4) modes 01-0A of a simulated ECU (pure, no I/O)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vehicle_host.simulator.nrc import INCORRECT_LENGTH, SERVICE_NOT_SUPPORTED, NegativeResponse
from vehicle_host.simulator.scenario import Snapshot
from vehicle_host.simulator.vehicle import VehicleState

if TYPE_CHECKING:
    from vehicle_host.simulator.ecu import Ecu

ENGINE_PIDS = frozenset({0x01, 0x04, 0x05, 0x0C, 0x0D, 0x0F, 0x10, 0x11, 0x2F, 0x46})
OTHER_PIDS = frozenset({0x01, 0x0C, 0x0D})
FREEZE_PIDS = frozenset({0x02, 0x04, 0x05, 0x0C, 0x0D})
MAX_PIDS_PER_REQUEST = 6


def supported_pids(ecu: Ecu) -> frozenset[int]:
    """The engine ECU (physical address 0x7E0 by OBD convention) reports the full set."""
    return ENGINE_PIDS if ecu.spec.request_id == 0x7E0 else OTHER_PIDS


def supported_infotypes(ecu: Ecu) -> frozenset[int]:
    return frozenset({0x02, 0x0A}) if ecu.spec.request_id == 0x7E0 else frozenset({0x0A})


def bitmap(base: int, supported: frozenset[int]) -> bytes:
    """A 'PIDs supported [base+1 .. base+0x20]' bitmap (the last bit says the next range exists)."""
    value = 0
    for i in range(1, 33):
        if base + i in supported or (i == 32 and any(p > base + 32 for p in supported)):
            value |= 1 << (32 - i)
    return value.to_bytes(4, "big")


def _pct(value: float) -> int:
    return max(0, min(255, round(value * 255 / 100)))


def _temp(value: float) -> int:
    return max(0, min(255, round(value) + 40))


def pid_value(ecu: Ecu, pid: int, s: VehicleState) -> bytes | None:
    """Data bytes of a mode 01 PID now, or None when the ECU does not support it."""
    supported = supported_pids(ecu)
    if pid in (0x00, 0x20, 0x40):
        return bitmap(pid, supported) if any(p > pid for p in supported) or pid == 0 else None
    if pid not in supported:
        return None
    if pid == 0x01:
        confirmed = sum(1 for r in ecu.records if r.status & 0x08)
        return bytes([(0x80 if ecu.mil_on() else 0) | min(confirmed, 0x7F), 0x07, 0x65, 0x00])
    if pid == 0x04:
        return bytes([_pct(s.load_pct)])
    if pid == 0x05:
        return bytes([_temp(s.coolant_c)])
    if pid == 0x0C:
        return min(0xFFFF, round(s.rpm * 4)).to_bytes(2, "big")
    if pid == 0x0D:
        return bytes([max(0, min(255, round(s.speed_kmh)))])
    if pid == 0x0F:
        return bytes([_temp(s.intake_c)])
    if pid == 0x10:
        return min(0xFFFF, round(s.maf_gs * 100)).to_bytes(2, "big")
    if pid == 0x11:
        return bytes([_pct(s.throttle_pct)])
    if pid == 0x2F:
        return bytes([_pct(s.fuel_pct)])
    if pid == 0x46:
        return bytes([_temp(s.ambient_c)])
    return None  # pragma: no cover - every supported PID is handled above


def handle(ecu: Ecu, req: bytes) -> bytes | None:
    """Answer one OBD request; None means the ECU stays silent (no supported PID asked for)."""
    mode = req[0]
    if mode == 0x01:
        pids = req[1:]
        if not 1 <= len(pids) <= MAX_PIDS_PER_REQUEST:
            raise NegativeResponse(INCORRECT_LENGTH)
        state = ecu.live()
        out = bytearray([0x41])
        for pid in pids:
            value = pid_value(ecu, pid, state)
            if value is not None:
                out += bytes([pid]) + value
        return bytes(out) if len(out) > 1 else None
    if mode == 0x02:
        return _freeze_frame(ecu, req)
    if mode in (0x03, 0x07, 0x0A):
        if len(req) != 1:
            raise NegativeResponse(INCORRECT_LENGTH)
        if mode == 0x03:
            codes = [r.obd_code for r in ecu.records if r.status & 0x08]
        elif mode == 0x07:
            codes = [r.obd_code for r in ecu.records if r.status & 0x04]
        else:
            codes = [r.obd_code for r in ecu.records if r.permanent]
        codes = list(dict.fromkeys(codes))[:127]
        return bytes([mode + 0x40, len(codes)]) + b"".join(c.to_bytes(2, "big") for c in codes)
    if mode == 0x04:
        if len(req) != 1:
            raise NegativeResponse(INCORRECT_LENGTH)
        ecu.clear()
        return b"\x44"
    if mode == 0x09:
        return _vehicle_info(ecu, req)
    raise NegativeResponse(SERVICE_NOT_SUPPORTED)


def _freeze_frame(ecu: Ecu, req: bytes) -> bytes | None:
    pairs = req[1:]
    if not pairs or len(pairs) % 2 or len(pairs) // 2 > 3:
        raise NegativeResponse(INCORRECT_LENGTH)
    record = ecu.freeze_frame()
    out = bytearray([0x42])
    for i in range(0, len(pairs), 2):
        pid, frame = pairs[i], pairs[i + 1]
        if frame != 0:
            continue
        if pid == 0x00:
            out += bytes([pid, frame]) + bitmap(0, FREEZE_PIDS)
        elif pid == 0x02:
            code = record.obd_code if record is not None else 0
            out += bytes([pid, frame]) + code.to_bytes(2, "big")
        elif pid in FREEZE_PIDS and record is not None and record.snapshot is not None:
            values = snapshot_bytes(record.snapshot)
            out += bytes([pid, frame]) + values[0xF400 | pid]
    return bytes(out) if len(out) > 1 else None


def _vehicle_info(ecu: Ecu, req: bytes) -> bytes | None:
    if len(req) != 2:
        raise NegativeResponse(INCORRECT_LENGTH)
    infotype = req[1]
    supported = supported_infotypes(ecu)
    if infotype == 0x00:
        return b"\x49\x00" + bitmap(0, supported)
    if infotype not in supported:
        return None
    if infotype == 0x02:
        return b"\x49\x02\x01" + ecu.scenario.vin.encode("ascii")
    name = (ecu.spec.obd_name or ecu.spec.name.upper())[:20]
    return b"\x49\x0a\x01" + name.encode("ascii", "replace").ljust(20, b"\x00")


def snapshot_bytes(snapshot: Snapshot) -> dict[int, bytes]:
    """A freeze frame as UDS snapshot DIDs (0xF4xx = OBD PID xx, encoded as in mode 01)."""
    return {
        0xF40C: min(0xFFFF, round(snapshot.rpm * 4)).to_bytes(2, "big"),
        0xF40D: bytes([snapshot.speed_kmh]),
        0xF405: bytes([_temp(snapshot.coolant_c)]),
        0xF404: bytes([_pct(snapshot.load_pct)]),
    }
