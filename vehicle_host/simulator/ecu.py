"""One simulated ECU: its fault memory, session and the UDS services it answers (pure, no I/O).

:meth:`Ecu.handle` takes one ISO-TP payload and returns the response payload (or None for no
response). OBD-II modes are delegated to :mod:`vehicle_host.simulator.obd`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from vehicle_host.simulator import obd
from vehicle_host.simulator.nrc import (
    CONDITIONS_NOT_CORRECT,
    INCORRECT_LENGTH,
    REQUEST_OUT_OF_RANGE,
    SERVICE_NOT_SUPPORTED,
    SERVICE_NOT_SUPPORTED_IN_SESSION,
    SUBFUNCTION_NOT_SUPPORTED,
    SUPPRESSED_WHEN_FUNCTIONAL,
    NegativeResponse,
)
from vehicle_host.simulator.scenario import (
    DID_LENGTHS,
    EXTENDED_DATA_SIZE,
    SNAPSHOT_DIDS,
    EcuSpec,
    Scenario,
    Snapshot,
)
from vehicle_host.simulator.vehicle import VehicleModel, VehicleState

DEFAULT_SESSION, PROGRAMMING_SESSION, EXTENDED_SESSION = 1, 2, 3
S3_SERVER_S = 5.0
STATUS_AVAILABILITY_MASK = 0xFF
MAX_DIDS_PER_REQUEST = 16
_SESSION_LOCKED_SERVICES = {0x27, 0x2E, 0x2F, 0x31}  # exist on a real ECU but not in the default session


@dataclass(slots=True)
class DtcRecord:
    value: int  # 3-byte UDS DTC
    status: int
    permanent: bool
    occurrences: int
    snapshot: Snapshot | None
    aging: int = 0

    @property
    def obd_code(self) -> int:
        return self.value >> 8


class Ecu:
    """Fault memory, session state and request handling of one ECU; thread-safe."""

    def __init__(self, spec: EcuSpec, scenario: Scenario, model: VehicleModel) -> None:
        self.spec = spec
        self.scenario = scenario
        self.model = model
        self.session = DEFAULT_SESSION
        self._last_request = 0.0
        self._lock = threading.Lock()
        self.records = [
            DtcRecord(d.value, d.status, d.permanent, d.occurrences, d.snapshot) for d in spec.dtcs
        ]
        self._dids = {
            0xF190: scenario.vin,
            0xF18C: spec.serial,
            0xF187: spec.part_number,
            0xF189: spec.software_version,
            0xF197: spec.system_name,
        }

    # -- helpers shared with OBD ------------------------------------------------------------------
    def live(self) -> VehicleState:
        return self.model.state()

    def mil_on(self) -> bool:
        return any(r.status & 0x80 for r in self.records)

    def clear(self) -> None:
        """Clear stored and pending DTCs and freeze frames; permanent DTCs stay (OBD rules)."""
        self.records = [DtcRecord(r.value, 0x00, True, 0, None) for r in self.records if r.permanent]

    def freeze_frame(self) -> DtcRecord | None:
        for record in self.records:
            if record.snapshot is not None and record.status & 0x08:
                return record
        return None

    # -- entry point ------------------------------------------------------------------------------
    def handle(self, request: bytes, functional: bool, now: float) -> bytes | None:
        """The response to one request payload, or None when the ECU stays silent."""
        if not request:
            return None
        sid = request[0]
        with self._lock:
            if self.session != DEFAULT_SESSION and now - self._last_request > S3_SERVER_S:
                self.session = DEFAULT_SESSION
            self._last_request = now
            try:
                if sid <= 0x0F:
                    if not self.spec.obd:
                        raise NegativeResponse(SERVICE_NOT_SUPPORTED)
                    return obd.handle(self, request)
                return self._uds(sid, request)
            except NegativeResponse as nrc:
                if functional and nrc.code in SUPPRESSED_WHEN_FUNCTIONAL:
                    return None
                if sid <= 0x0F and functional:
                    return None
                return bytes([0x7F, sid, nrc.code])

    def _uds(self, sid: int, req: bytes) -> bytes | None:
        if sid == 0x10:
            return self._session_control(req)
        if sid == 0x11:
            return self._ecu_reset(req)
        if sid == 0x3E:
            sub, suppress = _subfunction(req, 2)
            if sub != 0x00:
                raise NegativeResponse(SUBFUNCTION_NOT_SUPPORTED)
            return None if suppress else bytes([0x7E, 0x00])
        if sid == 0x22:
            return self._read_data(req)
        if sid == 0x19:
            return self._read_dtc(req)
        if sid == 0x14:
            return self._clear_dtc(req)
        if sid in _SESSION_LOCKED_SERVICES:
            if self.session == DEFAULT_SESSION:
                raise NegativeResponse(SERVICE_NOT_SUPPORTED_IN_SESSION)
            raise NegativeResponse(SUBFUNCTION_NOT_SUPPORTED if sid == 0x27 else REQUEST_OUT_OF_RANGE)
        raise NegativeResponse(SERVICE_NOT_SUPPORTED)

    def _session_control(self, req: bytes) -> bytes | None:
        sub, suppress = _subfunction(req, 2)
        if sub == PROGRAMMING_SESSION:
            raise NegativeResponse(CONDITIONS_NOT_CORRECT)
        if sub not in (DEFAULT_SESSION, EXTENDED_SESSION):
            raise NegativeResponse(SUBFUNCTION_NOT_SUPPORTED)
        self.session = sub
        if suppress:
            return None
        p2 = self.scenario.p2_ms
        p2_star = self.scenario.p2_star_ms // 10
        return bytes([0x50, sub, p2 >> 8, p2 & 0xFF, p2_star >> 8, p2_star & 0xFF])

    def _ecu_reset(self, req: bytes) -> bytes | None:
        sub, suppress = _subfunction(req, 2)
        if sub not in (0x01, 0x03):
            raise NegativeResponse(SUBFUNCTION_NOT_SUPPORTED)
        if sub == 0x01 and self.live().speed_kmh > 0:
            raise NegativeResponse(CONDITIONS_NOT_CORRECT)
        self.session = DEFAULT_SESSION
        return None if suppress else bytes([0x51, sub])

    def _read_data(self, req: bytes) -> bytes:
        if len(req) < 3 or len(req) % 2 == 0 or (len(req) - 1) // 2 > MAX_DIDS_PER_REQUEST:
            raise NegativeResponse(INCORRECT_LENGTH)
        out = bytearray([0x62])
        for i in range(1, len(req), 2):
            did = int.from_bytes(req[i : i + 2], "big")
            value = self._did(did)
            if value is not None:
                out += req[i : i + 2] + value
        if len(out) == 1:
            raise NegativeResponse(REQUEST_OUT_OF_RANGE)
        return bytes(out)

    def _did(self, did: int) -> bytes | None:
        if did in self._dids:
            return self._dids[did].ljust(DID_LENGTHS[did]).encode("ascii")
        if did == 0xF186:
            return bytes([self.session])
        if 0xF400 <= did <= 0xF4FF:
            return obd.pid_value(self, did & 0xFF, self.live())
        return None

    # -- 0x19 ReadDTCInformation ---------------------------------------------------------------------
    def _read_dtc(self, req: bytes) -> bytes | None:
        if len(req) < 2:
            raise NegativeResponse(INCORRECT_LENGTH)
        sub, suppress = req[1] & 0x7F, bool(req[1] & 0x80)
        if sub in (0x01, 0x02):
            if len(req) != 3:
                raise NegativeResponse(INCORRECT_LENGTH)
            mask = req[2] & STATUS_AVAILABILITY_MASK
            matching = [r for r in self.records if r.status & mask]
            if sub == 0x01:
                count = len(matching)
                response = bytes([0x59, 0x01, STATUS_AVAILABILITY_MASK, 0x01, count >> 8, count & 0xFF])
            else:
                body = b"".join(r.value.to_bytes(3, "big") + bytes([r.status]) for r in matching)
                response = bytes([0x59, 0x02, STATUS_AVAILABILITY_MASK]) + body
        elif sub in (0x04, 0x06):
            if len(req) != 6:
                raise NegativeResponse(INCORRECT_LENGTH)
            record = self._record(int.from_bytes(req[2:5], "big"))
            number = req[5]
            head = bytes([0x59, sub]) + record.value.to_bytes(3, "big") + bytes([record.status])
            response = head + (_snapshot(record, number) if sub == 0x04 else _extended(record, number))
        else:
            raise NegativeResponse(SUBFUNCTION_NOT_SUPPORTED)
        return None if suppress else response

    def _record(self, value: int) -> DtcRecord:
        for record in self.records:
            if record.value == value and (record.status or not record.permanent):
                return record
        raise NegativeResponse(REQUEST_OUT_OF_RANGE)

    def _clear_dtc(self, req: bytes) -> bytes:
        if len(req) != 4:
            raise NegativeResponse(INCORRECT_LENGTH)
        group = int.from_bytes(req[1:4], "big")
        if group == 0xFFFFFF:
            self.clear()
        else:
            keep = [r for r in self.records if r.value != group]
            if len(keep) == len(self.records):
                raise NegativeResponse(REQUEST_OUT_OF_RANGE)
            self.records = keep
        return bytes([0x54])


def _subfunction(req: bytes, length: int) -> tuple[int, bool]:
    if len(req) != length:
        raise NegativeResponse(INCORRECT_LENGTH)
    return req[1] & 0x7F, bool(req[1] & 0x80)


def _snapshot(record: DtcRecord, number: int) -> bytes:
    if number not in (0x01, 0xFF):
        raise NegativeResponse(REQUEST_OUT_OF_RANGE)
    if record.snapshot is None:
        return b""
    values = obd.snapshot_bytes(record.snapshot)
    out = bytearray([0x01, len(SNAPSHOT_DIDS)])
    for did in SNAPSHOT_DIDS:
        out += did.to_bytes(2, "big") + values[did]
    return bytes(out)


def _extended(record: DtcRecord, number: int) -> bytes:
    values = {0x01: record.occurrences, 0x02: record.aging}
    if number == 0xFF:
        return b"".join(bytes([n]) + v.to_bytes(EXTENDED_DATA_SIZE, "big") for n, v in values.items())
    if number not in values:
        raise NegativeResponse(REQUEST_OUT_OF_RANGE)
    return bytes([number]) + values[number].to_bytes(EXTENDED_DATA_SIZE, "big")
