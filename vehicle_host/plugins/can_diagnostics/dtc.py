"""Diagnostic trouble codes: decode OBD-II (2-byte) and UDS (3-byte) DTCs to "P0301"-style codes.

The first two bytes of both forms follow SAE J2012: bits 15-14 pick the system letter (P powertrain,
C chassis, B body, U network), bits 13-12 the first digit, then three hex digits. A UDS DTC adds a
third byte, the failure type (FTB, SAE J2012-DA). Descriptions come from a shipped table of generic
codes (``data/dtc_generic.tsv``); manufacturer-specific codes have none.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import Any

from vehicle_host.plugins.contract import InvalidArguments

LETTERS = "PCBU"
NO_DESCRIPTION = "no description in the generic table (manufacturer-specific?)"

#: ISO 14229-1 DTCStatusMask bits, lowest bit first.
STATUS_BITS = (
    "testFailed",
    "testFailedThisOperationCycle",
    "pendingDTC",
    "confirmedDTC",
    "testNotCompletedSinceLastClear",
    "testFailedSinceLastClear",
    "testNotCompletedThisOperationCycle",
    "warningIndicatorRequested",
)

#: Upper bound on rows read from the description table (it is shipped, but still a file).
_MAX_TABLE_ROWS = 20_000


def code_from_int(value: int) -> str:
    """The 16-bit J2012 value (``0x0301``) as its five-character code (``"P0301"``)."""
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"a two-byte DTC must be 0..0xFFFF, got {value:#x}")
    return f"{LETTERS[value >> 14]}{(value >> 12) & 0x3}{value & 0xFFF:03X}"


def decode_obd(data: bytes) -> str:
    """Decode a 2-byte OBD-II DTC (mode 03/07/0A)."""
    if len(data) != 2:
        raise ValueError(f"an OBD-II DTC is 2 bytes, got {len(data)}")
    return code_from_int(int.from_bytes(data, "big"))


def parse_code(code: str) -> int:
    """``"P0301"`` → ``0x0301``; raises :class:`InvalidArguments` for anything else."""
    text = code.strip().upper()
    if len(text) != 5 or text[0] not in LETTERS or text[1] not in "0123":
        raise InvalidArguments(f"{code!r} is not a DTC: expected a letter P/C/B/U then 4 digits, like P0301")
    try:
        rest = int(text[2:], 16)
    except ValueError:
        raise InvalidArguments(f"{code!r} is not a DTC: the last 3 characters must be hex digits") from None
    return (LETTERS.index(text[0]) << 14) | (int(text[1]) << 12) | rest


def parse_uds_dtc(value: str | int) -> int:
    """A 24-bit UDS DTC from ``"P0301"`` (FTB 00), ``"P0301-1C"``, ``"0x030100"`` or an int."""
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFFFF:
            raise InvalidArguments(f"DTC {value:#x} is out of range: a UDS DTC is 3 bytes (0..0xFFFFFF)")
        return value
    text = value.strip().upper()
    if text.startswith("0X"):
        try:
            return parse_uds_dtc(int(text, 16))
        except ValueError:
            raise InvalidArguments(f"{value!r} is not a hex DTC number") from None
    code, _, ftb = text.partition("-")
    failure = 0
    if ftb:
        try:
            failure = int(ftb, 16)
        except ValueError:
            raise InvalidArguments(f"{value!r}: the failure type after '-' must be 2 hex digits") from None
        if not 0 <= failure <= 0xFF:
            raise InvalidArguments(f"{value!r}: the failure type must be 00..FF")
    return (parse_code(code) << 8) | failure


def status_bits(status: int) -> dict[str, bool]:
    """The ISO 14229 status byte as named flags."""
    return {name: bool(status & (1 << bit)) for bit, name in enumerate(STATUS_BITS)}


@functools.cache
def generic_table() -> Mapping[str, str]:
    """The shipped code → description table (read once)."""
    table: dict[str, str] = {}
    text = resources.files(__package__).joinpath("data/dtc_generic.tsv").read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines()):
        if number >= _MAX_TABLE_ROWS:
            break
        if not line.strip() or line.startswith("#"):
            continue
        code, _, description = line.partition("\t")
        table[code.strip().upper()] = description.strip()
    return table


def describe(code: str) -> str:
    return generic_table().get(code.upper(), NO_DESCRIPTION)


def obd_dtc_info(code: str) -> dict[str, Any]:
    """A decoded OBD-II DTC as the plugin reports it."""
    return {"code": code, "description": describe(code)}


def uds_dtc_info(dtc_id: int, status: int | None) -> dict[str, Any]:
    """A decoded 3-byte UDS DTC with status flags (``status`` None when the service gives none)."""
    code = code_from_int(dtc_id >> 8)
    failure = dtc_id & 0xFF
    out: dict[str, Any] = {
        "code": code,
        "failureType": failure,
        "dtc": f"{code}-{failure:02X}",
        "id": dtc_id,
        "description": describe(code),
    }
    if status is not None:
        out["status"] = status
        out["statusBits"] = status_bits(status)
    return out
