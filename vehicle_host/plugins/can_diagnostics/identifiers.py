"""UDS data identifiers (ISO 14229-1 Annex C) and the udsoncan codecs that decode them.

Standard identification DIDs are read one per request with a codec that takes the whole payload,
so their lengths need not be known in advance. DTC snapshot records are parsed by udsoncan, which
must know each record DID's length: DIDs ``F400``-``F4FF`` carry OBD-II PID ``xx`` (ISO 15031-5
mapping) and take the PID's size; more can be configured with the ``snapshot_dids`` option.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from udsoncan import AsciiCodec, DidCodec

from vehicle_host.plugins.can_diagnostics import obd
from vehicle_host.plugins.contract import InvalidArguments

VIN_DID = 0xF190
ACTIVE_SESSION_DID = 0xF186

STANDARD_DIDS: Mapping[int, str] = {
    0xF180: "bootSoftwareIdentification",
    0xF181: "applicationSoftwareIdentification",
    0xF182: "applicationDataIdentification",
    0xF183: "bootSoftwareFingerprint",
    0xF184: "applicationSoftwareFingerprint",
    0xF186: "activeDiagnosticSession",
    0xF187: "vehicleManufacturerSparePartNumber",
    0xF188: "vehicleManufacturerEcuSoftwareNumber",
    0xF189: "vehicleManufacturerEcuSoftwareVersionNumber",
    0xF18A: "systemSupplierIdentifier",
    0xF18B: "ecuManufacturingDate",
    0xF18C: "ecuSerialNumber",
    0xF190: "vin",
    0xF191: "vehicleManufacturerEcuHardwareNumber",
    0xF192: "systemSupplierEcuHardwareNumber",
    0xF193: "systemSupplierEcuHardwareVersionNumber",
    0xF194: "systemSupplierEcuSoftwareNumber",
    0xF195: "systemSupplierEcuSoftwareVersionNumber",
    0xF197: "systemNameOrEngineType",
    0xF198: "repairShopCodeOrTesterSerialNumber",
    0xF199: "programmingDate",
    0xF19D: "ecuInstallationDate",
}
#: DIDs whose content is binary (shown as hex) rather than text.
BINARY_DIDS = frozenset({0xF183, 0xF184, 0xF186, 0xF18B, 0xF199, 0xF19D})
MAX_DIDS_PER_CALL = 32
MAX_DID_BYTES = 4095


class RemainingTextCodec(DidCodec):
    """Takes the rest of the payload as printable text (trailing NUL/space/0xFF padding removed)."""

    def decode(self, payload: bytes) -> str:
        text = bytes(payload).rstrip(b"\x00\xff ").decode("latin-1")
        return "".join(ch if ch.isprintable() else "?" for ch in text)

    def __len__(self) -> int:
        raise DidCodec.ReadAllRemainingData


class RemainingHexCodec(DidCodec):
    """Takes the rest of the payload as hex."""

    def decode(self, payload: bytes) -> str:
        return bytes(payload).hex()

    def __len__(self) -> int:
        raise DidCodec.ReadAllRemainingData


class FixedHexCodec(DidCodec):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def decode(self, payload: bytes) -> str:
        return bytes(payload).hex()

    def __len__(self) -> int:
        return self.size


class PidCodec(DidCodec):
    """A snapshot record DID ``F4xx`` holding OBD-II PID ``xx``."""

    def __init__(self, pid: int, size: int) -> None:
        super().__init__()
        self.pid = pid
        self.size = size

    def decode(self, payload: bytes) -> dict[str, Any]:
        return obd.decode_pid_value(self.pid, bytes(payload))

    def __len__(self) -> int:
        return self.size


class StrictVinCodec(AsciiCodec):
    def __init__(self) -> None:
        super().__init__(17)


def did_number(value: int | str) -> int:
    """A DID from an int, ``"F190"``, ``"0xF190"`` or a standard name like ``"ecuSerialNumber"``."""
    if isinstance(value, str):
        for did, name in STANDARD_DIDS.items():
            if name.lower() == value.lower():
                return did
        try:
            value = int(value, 16)
        except ValueError:
            raise InvalidArguments(
                f"unknown DID {value!r}: give 4 hex digits like F18C or a standard name"
            ) from None
    if not 0 <= value <= 0xFFFF:
        raise InvalidArguments(f"DID {value:#x} is out of range 0000..FFFF")
    return value


def reading_codecs() -> dict[int | str, Any]:
    """Codecs for reading one DID per request: text for identification DIDs, hex for everything else."""
    codecs: dict[int | str, Any] = {did: RemainingTextCodec() for did in STANDARD_DIDS}
    for did in BINARY_DIDS:
        codecs[did] = RemainingHexCodec()
    codecs[VIN_DID] = RemainingTextCodec()
    codecs["default"] = RemainingHexCodec()
    return codecs


def snapshot_codecs(extra: Mapping[int, int] | None = None) -> dict[int | str, Any]:
    """Codecs for DTC snapshot records (fixed sizes, so udsoncan can split records)."""
    codecs: dict[int | str, Any] = {0xF400 | p.pid: PidCodec(p.pid, p.size) for p in obd.PIDS.values()}
    codecs[0xF402] = FixedHexCodec(2)  # the DTC that stored the freeze frame
    for did, size in (extra or {}).items():
        codecs[did] = FixedHexCodec(size)
    return codecs
