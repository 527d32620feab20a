"""Simulator scenarios: which ECUs exist, what they report, how the car drives.

A scenario is data (JSON or TOML) checked with a JSON Schema plus a few semantic checks (VIN check
digit, DTC codes, unique CAN ids). :meth:`Scenario.default` is the car every test starts from.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from vehicle_host.errors import VehicleHostError

MAX_SCENARIO_BYTES = 256 * 1024
FUNCTIONAL_ID = 0x7DF

#: Lengths of the identification DIDs every simulated ECU serves (ASCII, right-padded with spaces).
DID_LENGTHS = {0xF190: 17, 0xF18C: 16, 0xF187: 16, 0xF189: 8, 0xF197: 16, 0xF186: 1}
#: Snapshot record DIDs (UDS 0xF4xx = OBD PID xx) and their sizes.
SNAPSHOT_DIDS = {0xF40C: 2, 0xF40D: 1, 0xF405: 1, 0xF404: 1}
#: Size of each DTC extended data record (0x01 occurrence counter, 0x02 aging counter).
EXTENDED_DATA_SIZE = 1

_VIN_VALUES = {
    **{str(i): i for i in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_DTC_RE = re.compile(r"^[PCBU][0-3][0-9A-F]{3}$")


class ScenarioError(VehicleHostError):
    """A scenario file is invalid; the message names the file, the field and the fix."""


def vin_check_digit(vin: str) -> str:
    """The North-American check digit (position 9) a 17-character VIN should carry."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    return "X" if total % 11 == 10 else str(total % 11)


def dtc_to_int(code: str, failure_type: int = 0) -> int:
    """``"P0301"`` → the 3-byte UDS DTC 0x030100 (2-byte SAE code + failure type byte)."""
    if not _DTC_RE.match(code):
        raise ScenarioError(f"bad DTC code {code!r}: expected e.g. P0301, C0035, B1234 or U0100")
    letter = "PCBU".index(code[0])
    return ((letter << 14) | int(code[1:], 16)) << 8 | failure_type


def dtc_to_str(value: int) -> str:
    """The SAE text of a 2-byte OBD DTC (``0x0301`` → ``"P0301"``)."""
    return f"{'PCBU'[(value >> 14) & 3]}{(value >> 12) & 3}{value & 0xFFF:03X}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Live values frozen when a DTC was set (UDS snapshot record 0x01, OBD mode 02 frame 0)."""

    rpm: float = 2150.0
    speed_kmh: int = 62
    coolant_c: int = 88
    load_pct: float = 47.0


@dataclass(frozen=True, slots=True)
class DtcSpec:
    code: str
    failure_type: int = 0
    confirmed: bool = True
    pending: bool = False
    permanent: bool = False
    mil: bool = False
    test_failed: bool = True
    occurrences: int = 1
    snapshot: Snapshot | None = None

    @property
    def value(self) -> int:
        return dtc_to_int(self.code, self.failure_type)

    @property
    def status(self) -> int:
        """ISO 14229-1 DTC status byte."""
        status = 0x03 if self.test_failed else 0
        status |= 0x04 if self.pending else 0
        status |= 0x08 if self.confirmed else 0
        status |= 0x20 if (self.confirmed or self.pending or self.test_failed) else 0
        status |= 0x80 if self.mil else 0
        return status


@dataclass(frozen=True, slots=True)
class EcuSpec:
    name: str
    request_id: int
    response_id: int
    obd: bool = True
    obd_name: str = ""
    serial: str = ""
    part_number: str = ""
    software_version: str = ""
    system_name: str = ""
    dtcs: tuple[DtcSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything the simulator serves. Build one with :meth:`default` or :meth:`load`."""

    vin: str
    ecus: tuple[EcuSpec, ...]
    parked: bool = False
    broadcast: bool = True
    ambient_c: int = 21
    fuel_pct: float = 68.0
    cycle_s: float = 40.0
    p2_ms: int = 50
    p2_star_ms: int = 5000

    def ecu(self, name_or_id: str | int) -> EcuSpec:
        for ecu in self.ecus:
            if name_or_id in (ecu.name, ecu.request_id):
                return ecu
        raise ScenarioError(f"no ECU {name_or_id!r} in the scenario (have: {[e.name for e in self.ecus]})")

    @classmethod
    def default(cls) -> Scenario:
        freeze = Snapshot(rpm=2150.0, speed_kmh=62, coolant_c=88, load_pct=47.0)
        return cls(
            vin="1VHDA5E26NA104729",
            ecus=(
                EcuSpec(
                    name="engine",
                    request_id=0x7E0,
                    response_id=0x7E8,
                    obd=True,
                    obd_name="ECM-EngineControl",
                    serial="ECM2203117654",
                    part_number="12687349AB",
                    software_version="E4.12.07",
                    system_name="ENGINE 2.0L I4",
                    dtcs=(
                        DtcSpec("P0301", mil=True, occurrences=3, snapshot=freeze),
                        DtcSpec("P0420", mil=True, permanent=True, snapshot=Snapshot(2480.0, 88, 91, 38.0)),
                        DtcSpec("P0171", confirmed=False, pending=True),
                    ),
                ),
                EcuSpec(
                    name="transmission",
                    request_id=0x7E1,
                    response_id=0x7E9,
                    obd=True,
                    obd_name="TCM-TransmissionCtl",
                    serial="TCM2203991208",
                    part_number="24275867AC",
                    software_version="T2.03.11",
                    system_name="6-SPEED AUTO",
                    dtcs=(DtcSpec("P0700", mil=True, snapshot=Snapshot(1720.0, 41, 84, 33.0)),),
                ),
                EcuSpec(
                    name="abs",
                    request_id=0x7E2,
                    response_id=0x7EA,
                    obd=False,
                    obd_name="ABS-BrakeControl",
                    serial="ABS2111004417",
                    part_number="13598871AD",
                    software_version="A1.08.02",
                    system_name="ABS/ESC",
                    dtcs=(
                        DtcSpec("C0035", failure_type=0x1C),
                        DtcSpec("U0100", test_failed=False, occurrences=2),
                    ),
                ),
            ),
        )

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read a ``.json`` or ``.toml`` scenario; raises :class:`ScenarioError` saying what to fix."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario {path}: {exc.strerror or exc}") from exc
        if len(raw) > MAX_SCENARIO_BYTES:
            raise ScenarioError(f"scenario {path} is {len(raw)} bytes; the limit is {MAX_SCENARIO_BYTES}")
        try:
            if path.suffix == ".toml":
                data: Any = tomllib.loads(raw.decode("utf-8"))
            elif path.suffix == ".json":
                data = json.loads(raw)
            else:
                raise ScenarioError(f"scenario {path} must end in .json or .toml")
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSON/TOML errors are ValueErrors
            raise ScenarioError(f"scenario {path} is not valid {path.suffix[1:].upper()}: {exc}") from exc
        return from_dict(data, source=str(path))


_ID = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 0x7FF}, {"type": "string", "maxLength": 8}]}
_SNAPSHOT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "rpm": {"type": "number", "minimum": 0, "maximum": 16383},
        "speed_kmh": {"type": "integer", "minimum": 0, "maximum": 255},
        "coolant_c": {"type": "integer", "minimum": -40, "maximum": 215},
        "load_pct": {"type": "number", "minimum": 0, "maximum": 100},
    },
}
_DTC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["code"],
    "properties": {
        "code": {"type": "string", "pattern": _DTC_RE.pattern},
        "failure_type": {"type": "integer", "minimum": 0, "maximum": 255},
        "confirmed": {"type": "boolean"},
        "pending": {"type": "boolean"},
        "permanent": {"type": "boolean"},
        "mil": {"type": "boolean"},
        "test_failed": {"type": "boolean"},
        "occurrences": {"type": "integer", "minimum": 0, "maximum": 255},
        "snapshot": _SNAPSHOT,
    },
}
_ECU = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "request_id", "response_id"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$"},
        "request_id": _ID,
        "response_id": _ID,
        "obd": {"type": "boolean"},
        "obd_name": {"type": "string", "maxLength": 20},
        "serial": {"type": "string", "maxLength": DID_LENGTHS[0xF18C]},
        "part_number": {"type": "string", "maxLength": DID_LENGTHS[0xF187]},
        "software_version": {"type": "string", "maxLength": DID_LENGTHS[0xF189]},
        "system_name": {"type": "string", "maxLength": DID_LENGTHS[0xF197]},
        "dtcs": {"type": "array", "maxItems": 64, "items": _DTC},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["vin", "ecus"],
    "properties": {
        "vin": {"type": "string"},
        "parked": {"type": "boolean"},
        "broadcast": {"type": "boolean"},
        "ambient_c": {"type": "integer", "minimum": -40, "maximum": 60},
        "fuel_pct": {"type": "number", "minimum": 0, "maximum": 100},
        "cycle_s": {"type": "number", "minimum": 10, "maximum": 3600},
        "p2_ms": {"type": "integer", "minimum": 10, "maximum": 1000},
        "p2_star_ms": {"type": "integer", "minimum": 100, "maximum": 10000},
        "ecus": {"type": "array", "minItems": 1, "maxItems": 8, "items": _ECU},
    },
}


def from_dict(data: Any, source: str = "scenario") -> Scenario:
    """Validate plain data (as read from JSON/TOML) and build a :class:`Scenario`."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ScenarioError(f"{source}: {where}: {first.message}{more}")
    vin = str(data["vin"]).upper()
    if not _VIN_RE.match(vin):
        raise ScenarioError(f"{source}: vin: {vin!r} must be 17 characters of 0-9 and A-Z without I, O, Q")
    if vin[8] != vin_check_digit(vin):
        raise ScenarioError(
            f"{source}: vin: check digit (9th character) of {vin} should be {vin_check_digit(vin)!r}"
        )
    ecus = tuple(_ecu(e, f"{source}: ecus/{i}") for i, e in enumerate(data["ecus"]))
    ids: dict[int, str] = {}
    for ecu in ecus:
        for can_id in (ecu.request_id, ecu.response_id):
            if can_id in ids or can_id == FUNCTIONAL_ID:
                other = ids.get(can_id, "functional address 0x7DF")
                raise ScenarioError(f"{source}: ECU {ecu.name!r} reuses CAN id {can_id:#x} of {other}")
            ids[can_id] = ecu.name
    if len({e.name for e in ecus}) != len(ecus):
        raise ScenarioError(f"{source}: ECU names must be unique")
    options = {k: data[k] for k in SCHEMA["properties"] if k in data and k not in ("vin", "ecus")}
    return Scenario(vin=vin, ecus=ecus, **options)


def _can_id(value: int | str, where: str) -> int:
    if isinstance(value, int):
        return value
    try:
        number = int(value, 0)
    except ValueError:
        number = -1
    if not 0 <= number <= 0x7FF:
        raise ScenarioError(f"{where}: {value!r} is not an 11-bit CAN id (e.g. 0x7E0)")
    return number


def _ecu(data: dict[str, Any], where: str) -> EcuSpec:
    dtcs = []
    for item in data.get("dtcs", []):
        snapshot = Snapshot(**item["snapshot"]) if "snapshot" in item else None
        dtcs.append(DtcSpec(**{**item, "snapshot": snapshot}))
    fields = {k: v for k, v in data.items() if k not in ("dtcs", "request_id", "response_id")}
    return EcuSpec(
        **fields,
        request_id=_can_id(data["request_id"], f"{where}/request_id"),
        response_id=_can_id(data["response_id"], f"{where}/response_id"),
        dtcs=tuple(dtcs),
    )
