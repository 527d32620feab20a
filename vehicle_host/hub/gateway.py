"""The API gateway's permission policy: pure data and functions, no I/O.

Every ``api.call`` that leaves a worker is judged here before anything runs. The inputs are data:
the method rules (the hub's own ``ui.*`` methods below, plus what each connected plugin declared in
``plugin.declare``), the app's manifest permissions, the user's stored grants and the published
vehicle state. The output is a :class:`Decision`: allow, deny (with an error code and a sentence
saying what to do) or ask the driver for consent.

Order of the checks (the first that fails decides):

1. the method is known                      -> ``unknown_method``
2. the manifest declares its permission     -> ``denied``
3. consent: the driver refused              -> ``denied``; not yet asked -> ``ask``
4. ``driving: parked_only`` and not parked  -> ``denied`` (an unknown state counts as not parked)
5. the arguments match the JSON Schema      -> ``invalid_args`` (first error path)

Permissions match exactly: no wildcards, no broader permission implying a narrower one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema
from jsonschema.exceptions import best_match

from vehicle_host.errors import VehicleHostError

#: Limits on what a declaration and a call may carry.
MAX_METHODS_PER_PLUGIN = 256
MAX_NAME_CHARS = 128
MAX_SUMMARY_CHARS = 300
MAX_TIMEOUT_S = 600.0
MAX_RATE_HZ = 1000.0
MAX_ARGS_BYTES = 1024 * 1024
MAX_SCHEMA_BYTES = 64 * 1024
#: Argument names with this prefix are the host's (e.g. ``_allow``); an app may not send them.
RESERVED_ARG_PREFIX = "_"
UI_OWNER = "ui"

Verdict = Literal["allow", "deny", "ask"]


class DeclarationError(VehicleHostError):
    """A plugin declared a method the gateway cannot use (the plugin's fault)."""


@dataclass(frozen=True, slots=True)
class MethodRule:
    """What the gateway knows about one method: who serves it and what a call needs."""

    name: str
    owner: str  # "ui" (the hub asks the shell) or the plugin's entry-point name
    permission: str | None = None
    consent: bool = False
    driving: str = "allowed"
    streams: bool = False
    args: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    timeout_s: float = 10.0
    rate_hz: float | None = None
    summary: str = ""
    ui_kind: str = ""  # ui.* only: the ui.request kind the shell draws
    validator: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.validator is None:
            object.__setattr__(self, "validator", _compile(self.name, self.args))


@dataclass(frozen=True, slots=True)
class AppPolicy:
    """What the gateway needs to know about the calling app (from its checked manifest)."""

    app_id: str
    name: str
    permissions: frozenset[str] = frozenset()
    network: tuple[str, ...] = ()  # the manifest's allow-list; the hub passes it to plugins as _allow


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    code: str = ""  # deny: denied, unknown_method, invalid_args, failed
    message: str = ""  # deny: a sentence for the user saying what to do
    rule: MethodRule | None = None
    permission: str | None = None  # ask: the permission to ask consent for
    consent: Mapping[str, Any] = field(default_factory=dict)  # ask: ui.request params

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"

    def error(self) -> dict[str, str]:
        """The ``error`` map of the ``api.result`` that refuses the call."""
        return {"code": self.code, "message": self.message}


def _compile(name: str, schema: Mapping[str, Any]) -> Any:
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        return cls(schema)
    except jsonschema.SchemaError as exc:
        message = f"{name}: the argument schema is not valid JSON Schema: {exc.message}"
        raise DeclarationError(message[:500]) from None
    except Exception as exc:  # a hostile schema may break the meta-validation itself
        raise DeclarationError(f"{name}: the argument schema cannot be used ({type(exc).__name__})") from None


# -- the hub's own ui.* methods -----------------------------------------------------------------

_STR = {"type": "string", "maxLength": 200}
_COLOR = {"type": "string", "maxLength": 32}
_INDEX = {"type": "integer", "minimum": 0, "maximum": 4}
_EMPTY: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


def _obj(required: tuple[str, ...] = (), **props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


#: name -> (ui.request kind, argument schema). Arguments follow the WeChat API of the same name
#: (without the success/fail/complete callbacks, which stay in the worker).
UI_SCHEMAS: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "ui.showToast": (
        "toast",
        _obj(
            ("title",),
            title=_STR,
            icon={"enum": ["success", "error", "loading", "none"]},
            image={"type": "string", "maxLength": 1024},
            duration={"type": "number", "minimum": 0, "maximum": 60000},
            mask={"type": "boolean"},
        ),
    ),
    "ui.hideToast": ("hideToast", _EMPTY),
    "ui.showModal": (
        "modal",
        _obj(
            title=_STR,
            content={"type": "string", "maxLength": 2000},
            showCancel={"type": "boolean"},
            cancelText={"type": "string", "maxLength": 16},
            cancelColor=_COLOR,
            confirmText={"type": "string", "maxLength": 16},
            confirmColor=_COLOR,
            editable={"type": "boolean"},
            placeholderText=_STR,
        ),
    ),
    "ui.showLoading": ("loading", _obj(("title",), title=_STR, mask={"type": "boolean"})),
    "ui.hideLoading": ("hideLoading", _EMPTY),
    "ui.showActionSheet": (
        "actionSheet",
        _obj(
            ("itemList",),
            itemList={"type": "array", "items": _STR, "minItems": 1, "maxItems": 6},
            itemColor=_COLOR,
            alertText=_STR,
        ),
    ),
    "ui.setNavigationBarTitle": ("navigationBar", _obj(("title",), title=_STR)),
    "ui.setNavigationBarColor": (
        "navigationBar",
        _obj(
            ("frontColor", "backgroundColor"),
            frontColor={"enum": ["#ffffff", "#000000"]},
            backgroundColor=_COLOR,
            animation=_obj(
                duration={"type": "number", "minimum": 0, "maximum": 10000},
                timingFunc={"enum": ["linear", "easeIn", "easeOut", "easeInOut"]},
            ),
        ),
    ),
    "ui.showNavigationBarLoading": ("navigationBar", _EMPTY),
    "ui.hideNavigationBarLoading": ("navigationBar", _EMPTY),
    "ui.setTabBarBadge": (
        "tabBar",
        _obj(("index", "text"), index=_INDEX, text={"type": "string", "maxLength": 8}),
    ),
    "ui.removeTabBarBadge": ("tabBar", _obj(("index",), index=_INDEX)),
    "ui.showTabBarRedDot": ("tabBar", _obj(("index",), index=_INDEX)),
    "ui.hideTabBarRedDot": ("tabBar", _obj(("index",), index=_INDEX)),
    "ui.setTabBarItem": (
        "tabBar",
        _obj(
            ("index",),
            index=_INDEX,
            text={"type": "string", "maxLength": 32},
            iconPath={"type": "string", "maxLength": 256},
            selectedIconPath={"type": "string", "maxLength": 256},
        ),
    ),
    "ui.setTabBarStyle": (
        "tabBar",
        _obj(
            color=_COLOR,
            selectedColor=_COLOR,
            backgroundColor=_COLOR,
            borderStyle={"enum": ["black", "white"]},
        ),
    ),
    "ui.showTabBar": ("tabBar", _obj(animation={"type": "boolean"})),
    "ui.hideTabBar": ("tabBar", _obj(animation={"type": "boolean"})),
    "ui.startPullDownRefresh": ("page", _EMPTY),
    "ui.stopPullDownRefresh": ("page", _EMPTY),
    "ui.pageScrollTo": (
        "page",
        _obj(
            scrollTop={"type": "number", "minimum": 0, "maximum": 1_000_000},
            duration={"type": "number", "minimum": 0, "maximum": 10000},
            selector={"type": "string", "maxLength": 256},
        ),
    ),
    "ui.setBackgroundColor": (
        "page",
        _obj(backgroundColor=_COLOR, backgroundColorTop=_COLOR, backgroundColorBottom=_COLOR),
    ),
    "ui.setBackgroundTextStyle": ("page", _obj(("textStyle",), textStyle={"enum": ["dark", "light"]})),
}

UI_METHODS: Mapping[str, MethodRule] = {
    name: MethodRule(name=name, owner=UI_OWNER, args=schema, ui_kind=kind)
    for name, (kind, schema) in UI_SCHEMAS.items()
}


def ui_request_params(rule: MethodRule, args: Mapping[str, Any]) -> dict[str, Any]:
    """``ui.request.params`` for an allowed ``ui.*`` call: the args plus ``op`` (the short name)."""
    return {**args, "op": rule.name.removeprefix("ui.")}


# -- declarations from plugins ------------------------------------------------------------------


def rule_from_wire(owner: str, item: Any) -> MethodRule:
    """Check one entry of ``plugin.declare.methods`` (``Method.to_wire()``); DeclarationError if bad."""
    if not isinstance(item, Mapping):
        raise DeclarationError(f"{owner}: each declared method must be a map")
    name = item.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS or "." not in name:
        raise DeclarationError(f"{owner}: method name {name!r} must look like 'namespace.name'")
    if name.startswith(UI_OWNER + "."):
        raise DeclarationError(f"{owner}: {name}: the ui namespace belongs to the host")
    permission = item.get("permission")
    bad_permission = not isinstance(permission, str) or not 0 < len(permission) <= MAX_NAME_CHARS
    if permission is not None and bad_permission:
        raise DeclarationError(f"{name}: permission must be a short string or null")
    consent, streams = item.get("consent", False), item.get("streams", False)
    if not isinstance(consent, bool) or not isinstance(streams, bool):
        raise DeclarationError(f"{name}: consent and streams must be true or false")
    if consent and permission is None:
        raise DeclarationError(f"{name}: a method that needs consent must name a permission")
    driving = item.get("driving", "allowed")
    if driving not in ("allowed", "parked_only"):
        raise DeclarationError(f"{name}: driving must be 'allowed' or 'parked_only'")
    timeout_s = _number(name, "timeout_s", item.get("timeout_s", 10.0), MAX_TIMEOUT_S)
    rate = item.get("rate_hz")
    rate_hz = None if rate is None else _number(name, "rate_hz", rate, MAX_RATE_HZ)
    args = item.get("args", {"type": "object"})
    if not isinstance(args, Mapping) or approx_size(args, MAX_SCHEMA_BYTES) > MAX_SCHEMA_BYTES:
        raise DeclarationError(f"{name}: args must be a JSON Schema object under {MAX_SCHEMA_BYTES} bytes")
    summary = item.get("summary", "")
    return MethodRule(
        name=name,
        owner=owner,
        permission=permission,
        consent=consent,
        driving=driving,
        streams=streams,
        args=args,
        timeout_s=timeout_s,
        rate_hz=rate_hz,
        summary=summary[:MAX_SUMMARY_CHARS] if isinstance(summary, str) else "",
    )


def rules_from_declare(owner: str, methods: Any) -> dict[str, MethodRule]:
    """All rules of one ``plugin.declare``; DeclarationError names the first bad method."""
    if not isinstance(methods, list) or len(methods) > MAX_METHODS_PER_PLUGIN:
        raise DeclarationError(f"{owner}: methods must be a list of at most {MAX_METHODS_PER_PLUGIN}")
    rules: dict[str, MethodRule] = {}
    for item in methods:
        rule = rule_from_wire(owner, item)
        if rule.name in rules:
            raise DeclarationError(f"{owner}: method {rule.name} is declared twice")
        rules[rule.name] = rule
    return rules


def _number(name: str, key: str, value: Any, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DeclarationError(f"{name}: {key} must be a number")
    if not 0 < value <= high:
        raise DeclarationError(f"{name}: {key} must be in (0, {high:g}]")
    return float(value)


# -- the decision -------------------------------------------------------------------------------


def decide(
    app: AppPolicy,
    method: str,
    args: Mapping[str, Any],
    *,
    plugin_rules: Mapping[str, MethodRule],
    grants: Mapping[str, bool],
    vehicle: Mapping[str, Any] | None,
) -> Decision:
    """Judge one call. ``grants`` is the app's stored answers (permission -> granted), ``vehicle``
    the latest ``state.publish`` value of key ``"vehicle"`` (``None`` when nothing was published)."""
    rule = UI_METHODS.get(method) or plugin_rules.get(method)
    if rule is None:
        return Decision(
            "deny",
            "unknown_method",
            f"{_short(method)} is not available on this vehicle. "
            "Check the method name, or ask the publisher for a version that fits this head unit.",
        )
    perm = rule.permission
    if perm is not None:
        if perm not in app.permissions:
            return Decision(
                "deny",
                "denied",
                f"{app.name} did not declare permission {perm} in app.json. "
                "The publisher must add it to vehicle.permissions.",
                rule,
                perm,
            )
        if rule.consent:
            granted = grants.get(perm)
            if granted is False:
                return Decision(
                    "deny",
                    "denied",
                    f"The driver did not allow {app.name} to use {perm}. "
                    "It can be allowed again in the app's permission settings.",
                    rule,
                    perm,
                )
            if granted is None:
                return Decision("ask", rule=rule, permission=perm, consent=consent_params(app, rule))
    if rule.driving == "parked_only" and not is_parked(vehicle):
        return Decision(
            "deny",
            "denied",
            f"{rule.name} works only while parked. Stop the vehicle and engage park, then try again.",
            rule,
            perm,
        )
    problem = check_args(rule, args)
    if problem is not None:
        return Decision("deny", problem[0], problem[1], rule, perm)
    return Decision("allow", rule=rule, permission=perm)


def is_parked(vehicle: Mapping[str, Any] | None) -> bool:
    """Only an explicit ``parked: true`` counts; missing or unknown state is not parked."""
    return isinstance(vehicle, Mapping) and vehicle.get("parked") is True


def consent_params(app: AppPolicy, rule: MethodRule) -> dict[str, Any]:
    """``ui.request{kind: "consent"}.params``: what the shell shows the driver."""
    what = rule.summary.rstrip(".") or rule.name
    return {
        "app_id": app.app_id,
        "app_name": app.name,
        "permission": rule.permission,
        "method": rule.name,
        "message": f"{app.name} wants permission {rule.permission}: {what}. Allow it?",
    }


def check_args(rule: MethodRule, args: Mapping[str, Any]) -> tuple[str, str] | None:
    """None if ``args`` are acceptable; else ``(code, message)`` naming the first bad path."""
    bad = "invalid_args"
    if approx_size(args, MAX_ARGS_BYTES) > MAX_ARGS_BYTES:
        return bad, f"{rule.name}: the arguments are larger than {MAX_ARGS_BYTES // 1024} KB."
    for key in args:
        if isinstance(key, str) and key.startswith(RESERVED_ARG_PREFIX):
            return bad, f"{rule.name}: argument {key!r} is reserved for the host; remove it."
    try:
        error = best_match(rule.validator.iter_errors(dict(args)))
    except Exception as exc:  # a plugin's schema that breaks at validation time (e.g. an unresolvable $ref)
        return "failed", f"{rule.name}: the plugin's argument schema is broken ({type(exc).__name__})."
    if error is None:
        return None
    return bad, f"{rule.name}: invalid argument at {error.json_path}: {error.message[:300]}"


def approx_size(value: Any, stop_at: int) -> int:
    """A cheap upper-bound-ish size in bytes of plain data; stops counting past ``stop_at``."""
    total = 0
    stack = [value]
    while stack and total <= stop_at:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 2
        elif isinstance(item, Mapping):
            total += 2
            for key, child in item.items():
                total += len(key) + 3 if isinstance(key, str) else 8
                stack.append(child)
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 8
    return total


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."
