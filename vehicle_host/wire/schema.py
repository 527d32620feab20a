"""Per-type payload schemas: which fields a message type carries, their kinds and their limits.

Schemas are data (a table), checked by one small function; adding a message type adds a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vehicle_host.errors import WireError

SHORT = 256
TEXT = 16 * 1024
BIG = 768 * 1024


@dataclass(frozen=True, slots=True)
class Field:
    """One payload field: ``kind`` is str, int, bool, num, map, list or any; ``limit`` bounds its size."""

    kind: str
    required: bool = True
    limit: int = SHORT
    choices: frozenset[str] | None = None


def _f(kind: str, limit: int = SHORT, *, required: bool = True, choices: tuple[str, ...] = ()) -> Field:
    return Field(kind, required, limit, frozenset(choices) if choices else None)


ROLES = ("shell", "worker", "client")
LOG_LEVELS = ("debug", "info", "warn", "error")

MESSAGE_TYPES: Mapping[str, Mapping[str, Field]] = {
    # peers introduce themselves; the hub answers with its own level
    "hello": {"role": _f("str", choices=ROLES), "api_level": _f("int"), "app_id": _f("str", required=False)},
    "hello.ok": {"api_level": _f("int"), "hub_version": _f("str")},
    # launcher and app lifecycle (shell <-> hub)
    "app.list": {},
    "app.list.result": {"apps": _f("list", 1000)},
    "app.launch": {"app_id": _f("str")},
    "app.close": {"app_id": _f("str")},
    "app.closed": {"app_id": _f("str"), "reason": _f("str", TEXT)},
    "app.error": {
        "app_id": _f("str"),
        "kind": _f("str", choices=("crashed", "incompatible", "invalid", "script", "unavailable")),
        "message": _f("str", TEXT),
        "file": _f("str", required=False),
        "line": _f("int", required=False),
    },
    # hub -> worker: what to run
    "worker.start": {
        "bundle_dir": _f("str", 4096),
        "route": _f("str"),
        "page_id": _f("int"),
        "query": _f("map", 64),
    },
    # hub -> shell: a page to show (compiled template and style)
    "page.open": {
        "app_id": _f("str"),
        "page_id": _f("int"),
        "route": _f("str"),
        "title": _f("str"),
        "tree": _f("map", BIG),
        "css": _f("str", BIG),
    },
    # worker -> shell (through the hub)
    "page.render": {"page_id": _f("int"), "data": _f("map", BIG)},
    "page.setData": {"page_id": _f("int"), "diff": _f("map", BIG)},
    # shell -> worker (through the hub)
    "page.event": {"page_id": _f("int"), "handler": _f("str"), "event": _f("map", TEXT)},
    # worker -> hub
    "log": {"level": _f("str", choices=LOG_LEVELS), "message": _f("str", TEXT)},
    "script.error": {
        "message": _f("str", TEXT),
        "file": _f("str"),
        "line": _f("int"),
        "column": _f("int"),
        "stack": _f("str", TEXT),
    },
    # anyone -> hub
    "hub.stats": {},
    "hub.stats.result": {"stats": _f("map", 4096)},
    "error": {"code": _f("str"), "message": _f("str", TEXT)},
}

_KINDS: Mapping[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "num": (int, float),
    "map": (dict,),
    "list": (list,),
}


def validate_payload(type_: str, payload: Mapping[str, Any]) -> None:
    """Check ``payload`` against the schema of ``type_``; raise WireError naming the first problem."""
    schema = MESSAGE_TYPES.get(type_)
    if schema is None:
        raise WireError(f"unknown message type {type_!r}")
    for name in payload:
        if name not in schema:
            raise WireError(f"{type_}: unexpected field {name!r}")
    for name, spec in schema.items():
        if name not in payload:
            if spec.required:
                raise WireError(f"{type_}: missing field {name!r}")
            continue
        _check_field(type_, name, spec, payload[name])


def _check_field(type_: str, name: str, spec: Field, value: Any) -> None:
    if spec.kind == "any":
        return
    kinds = _KINDS[spec.kind]
    # bool is an int in Python; an int field must not accept True
    if not isinstance(value, kinds) or (spec.kind in ("int", "num") and isinstance(value, bool)):
        raise WireError(f"{type_}: field {name!r} must be {spec.kind}, got {type(value).__name__}")
    checked: Any = value  # isinstance against a tuple of types narrows to object
    if spec.kind == "int" and not -(2**63) <= checked < 2**63:
        raise WireError(f"{type_}: field {name!r} is out of the 64-bit range")
    if spec.kind in ("str", "list", "map") and len(checked) > spec.limit:
        raise WireError(f"{type_}: field {name!r} is longer than {spec.limit}")
    if spec.choices is not None and value not in spec.choices:
        raise WireError(f"{type_}: field {name!r} must be one of {sorted(spec.choices)}")
