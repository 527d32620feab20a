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


ROLES = ("shell", "worker", "client", "plugin")
LOG_LEVELS = ("debug", "info", "warn", "error")

MESSAGE_TYPES: Mapping[str, Mapping[str, Field]] = {
    # peers introduce themselves; the hub answers with its own level
    "hello": {
        "role": _f("str", choices=ROLES),
        "api_level": _f("int"),
        "app_id": _f("str", required=False),
        # plugins: their entry-point name and the secret the hub gave the process it started
        "plugin": _f("str", required=False),
        "token": _f("str", required=False),
    },
    "hello.ok": {"api_level": _f("int"), "hub_version": _f("str")},
    # launcher and app lifecycle (shell <-> hub)
    "app.list": {},
    "app.list.result": {"apps": _f("list", 1000)},
    "app.launch": {"app_id": _f("str")},
    "app.close": {"app_id": _f("str")},
    "app.closed": {"app_id": _f("str"), "reason": _f("str", TEXT)},
    "app.error": {
        "app_id": _f("str"),
        "kind": _f(
            "str", choices=("crashed", "incompatible", "invalid", "script", "unavailable", "killed", "denied")
        ),
        "message": _f("str", TEXT),
        "file": _f("str", required=False),
        "line": _f("int", required=False),
    },
    # hub -> worker: what to run
    "worker.start": {
        "app_id": _f("str"),
        # the bundle's JS sources (path -> text): the sandboxed worker has no file access at all
        "sources": _f("map", 4096),
        "config": _f("map", 64),  # app.json: pages, window, tabBar, usingComponents per page
        "route": _f("str"),
        "page_id": _f("int"),
        "query": _f("map", 64),
        "system": _f("map", 64),  # what getSystemInfo reports
        "apis": _f("list", 4096),  # plugin methods this host offers, e.g. "vehicle.readDtcs"
        "storage": _f("map", 4096),  # the app's stored key/values, for the sync storage APIs
        "limits": _f("map", 64),  # time_ms per callback, memory_mb
    },
    # worker -> hub: navigation (the hub keeps the authoritative page stack)
    "nav.request": {
        "call_id": _f("int"),
        "action": _f("str", choices=("navigateTo", "redirectTo", "navigateBack", "switchTab", "reLaunch")),
        "url": _f("str", 1024, required=False),
        "delta": _f("int", required=False),
    },
    # hub -> worker: what navigation did; opened = {page_id, route, query}, closed = page ids
    "nav.result": {
        "call_id": _f("int"),
        "ok": _f("bool"),
        "error": _f("str", TEXT, required=False),
        "opened": _f("map", 64, required=False),
        "closed": _f("list", 64, required=False),
        "shown": _f("int", required=False),  # the page uncovered by navigateBack
    },
    # shell -> hub -> worker: the driver pressed the shell's back button / left or re-entered the app
    "app.back": {"app_id": _f("str")},
    "app.visibility": {"app_id": _f("str"), "visible": _f("bool")},
    # hub -> shell: pages closed by navigation
    "page.close": {"app_id": _f("str"), "page_ids": _f("list", 64), "shown": _f("int", required=False)},
    # shell -> hub -> worker: the page's first paint happened (onReady)
    "page.painted": {"page_id": _f("int")},
    # worker -> hub: an fc.* call that leaves the worker (plugins, ui, network, storage writes)
    "api.call": {"call_id": _f("int"), "method": _f("str"), "args": _f("map", BIG)},
    "api.result": {
        "call_id": _f("int"),
        "ok": _f("bool"),
        "result": _f("any", required=False),
        "error": _f("map", 8, required=False),  # {code, message}
    },
    "api.event": {"call_id": _f("int"), "data": _f("any"), "end": _f("bool", required=False)},
    "api.cancel": {"call_id": _f("int")},
    # hub -> shell: draw something for an app (toast, modal, loading, action sheet, consent)
    "ui.request": {
        "request_id": _f("int"),
        "app_id": _f("str"),
        "kind": _f(
            "str",
            choices=(
                "toast",
                "hideToast",
                "modal",
                "loading",
                "hideLoading",
                "actionSheet",
                "consent",
                "navigationBar",
                "tabBar",
                "page",  # pull-down refresh, pageScrollTo, background colour/text style
                "app",  # exit, restart, open another app, go back to the app that opened this one
            ),
        ),
        "params": _f("map", 64),
    },
    "ui.response": {"request_id": _f("int"), "result": _f("map", 64)},
    # plugin <-> hub
    "plugin.declare": {"name": _f("str"), "version": _f("str"), "methods": _f("list", 1000)},
    "plugin.call": {"call_id": _f("int"), "app_id": _f("str"), "method": _f("str"), "args": _f("map", BIG)},
    "plugin.result": {
        "call_id": _f("int"),
        "ok": _f("bool"),
        "result": _f("any", required=False),
        "error": _f("map", 8, required=False),
    },
    "plugin.event": {"call_id": _f("int"), "data": _f("any"), "end": _f("bool", required=False)},
    "plugin.cancel": {"call_id": _f("int")},
    # plugin -> hub -> shell: published state (vehicle speed/gear/ignition, CAN adapter presence)
    "state.publish": {"key": _f("str"), "value": _f("map", 256)},
    "state.changed": {"key": _f("str"), "value": _f("map", 256)},
    # worker -> hub: still alive (the hub also reads CPU time and RSS from /proc)
    "heartbeat": {},
    # hub -> shell: a page to show (compiled template and style)
    "page.open": {
        "app_id": _f("str"),
        "page_id": _f("int"),
        "route": _f("str"),
        "title": _f("str"),
        "tree": _f("map", BIG),
        "css": _f("str", BIG),
        # push (navigateTo), replace (redirectTo), reset (reLaunch/switchTab/launch)
        "mode": _f("str", choices=("push", "replace", "reset"), required=False),
        "templates": _f("map", 1024, required=False),  # <template name> -> tree
        "components": _f("map", 256, required=False),  # component path -> {tree, css}
        "window": _f("map", 64, required=False),  # app.json window merged with the page's json
        "tab_bar": _f("map", 64, required=False),
    },
    # worker -> shell (through the hub)
    "page.render": {"page_id": _f("int"), "data": _f("map", BIG)},
    "page.setData": {"page_id": _f("int"), "diff": _f("map", BIG), "component": _f("str", required=False)},
    # shell -> worker (through the hub)
    # handler names starting with "$" are the renderer's component lifecycle ($attach, $detach, $props)
    "page.event": {
        "page_id": _f("int"),
        "handler": _f("str"),
        "event": _f("map", TEXT),
        "component": _f("str", required=False),
    },
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
    # shell -> hub: an app's info page (permissions and the driver's answers, storage use)
    "app.info": {"app_id": _f("str")},
    "app.info.result": {"info": _f("map", 64)},
    # shell -> hub: the driver changes an answer; granted None forgets it (asked again next time)
    "grant.set": {"app_id": _f("str"), "permission": _f("str"), "granted": _f("any")},
    "grant.set.result": {"ok": _f("bool"), "error": _f("str", TEXT, required=False)},
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
