"""The gateway's policy: pure decisions from declarations, manifest, grants and vehicle state."""

from __future__ import annotations

from typing import Any

import pytest

from vehicle_host.hub import gateway
from vehicle_host.hub.gateway import AppPolicy, DeclarationError, decide, rule_from_wire, rules_from_declare
from vehicle_host.plugins.contract import Method

READ = Method(
    name="vehicle.readDtcs",
    handler="read",
    permission="vehicle.diagnostics.read",
    args={
        "type": "object",
        "properties": {"ecu": {"type": "string", "maxLength": 8}},
        "additionalProperties": False,
    },
    summary="Read the stored fault codes",
)
CLEAR = Method(
    name="vehicle.clearDtcs",
    handler="clear",
    permission="vehicle.diagnostics.clear",
    consent=True,
    driving="parked_only",
    args={"type": "object", "properties": {"ecu": {"type": "string"}}, "required": ["ecu"]},
    summary="Clear the stored fault codes.",
)
OPEN = Method(name="storage.info", handler="info", args={"type": "object"})
RULES = rules_from_declare("can_diagnostics", [READ.to_wire(), CLEAR.to_wire()]) | rules_from_declare(
    "storage", [OPEN.to_wire()]
)
APP = AppPolicy(
    app_id="com.dealer.diag",
    name="Diagnostics",
    permissions=frozenset({"vehicle.diagnostics.read", "vehicle.diagnostics.clear"}),
)
PARKED = {"parked": True}


def judge(method: str, args: dict[str, Any] | None = None, **kw: Any) -> gateway.Decision:
    options: dict[str, Any] = {"plugin_rules": RULES, "grants": {}, "vehicle": PARKED}
    options.update(kw)
    app = options.pop("app", APP)
    return decide(app, method, args or {}, **options)


def test_unknown_method_is_refused_first() -> None:
    d = judge("vehicle.selfDestruct", app=AppPolicy("x.y", "X"))
    assert (d.verdict, d.code) == ("deny", "unknown_method")
    assert "vehicle.selfDestruct" in d.message


def test_a_permission_missing_from_the_manifest_is_denied_with_what_to_do() -> None:
    d = judge("vehicle.readDtcs", app=AppPolicy("com.other", "Other", frozenset({"vehicle.diagnostics"})))
    assert (d.verdict, d.code) == ("deny", "denied")
    assert "Other did not declare permission vehicle.diagnostics.read in app.json" in d.message


def test_permissions_match_exactly_without_wildcards() -> None:
    broad = AppPolicy("com.other", "Other", frozenset({"vehicle.*", "vehicle", "vehicle.diagnostics"}))
    assert judge("vehicle.readDtcs", app=broad).code == "denied"


def test_allowed_call_carries_its_rule() -> None:
    d = judge("vehicle.readDtcs", {"ecu": "engine"})
    assert d.allowed and d.rule is not None and d.rule.owner == "can_diagnostics"


def test_consent_not_yet_asked_gives_ask_with_params_for_the_shell() -> None:
    d = judge("vehicle.clearDtcs", {"ecu": "engine"})
    assert d.verdict == "ask"
    assert d.permission == "vehicle.diagnostics.clear"
    assert d.consent["app_name"] == "Diagnostics"
    assert d.consent["permission"] == "vehicle.diagnostics.clear"
    assert "Clear the stored fault codes" in d.consent["message"]


def test_consent_refused_is_denied_and_granted_is_allowed() -> None:
    refused = judge("vehicle.clearDtcs", {"ecu": "e"}, grants={"vehicle.diagnostics.clear": False})
    assert (refused.verdict, refused.code) == ("deny", "denied")
    granted = judge("vehicle.clearDtcs", {"ecu": "e"}, grants={"vehicle.diagnostics.clear": True})
    assert granted.allowed


def test_manifest_check_comes_before_consent() -> None:
    app = AppPolicy("com.x", "X", frozenset())
    assert judge("vehicle.clearDtcs", {"ecu": "e"}, app=app).code == "denied"


@pytest.mark.parametrize("vehicle", [None, {}, {"parked": False}, {"parked": "yes"}, {"parked": 1}])
def test_parked_only_needs_an_explicit_parked_true(vehicle: Any) -> None:
    d = judge("vehicle.clearDtcs", {"ecu": "e"}, grants={"vehicle.diagnostics.clear": True}, vehicle=vehicle)
    assert (d.verdict, d.code) == ("deny", "denied")
    assert "only while parked" in d.message


def test_consent_is_asked_before_the_parked_rule() -> None:
    assert judge("vehicle.clearDtcs", {"ecu": "e"}, vehicle=None).verdict == "ask"


def test_invalid_args_name_the_first_error_path() -> None:
    d = judge("vehicle.readDtcs", {"ecu": "x" * 20})
    assert (d.verdict, d.code) == ("deny", "invalid_args")
    assert "$.ecu" in d.message
    assert judge("vehicle.readDtcs", {"other": 1}).code == "invalid_args"


def test_parked_rule_comes_before_args() -> None:
    d = judge("vehicle.clearDtcs", {}, grants={"vehicle.diagnostics.clear": True}, vehicle=None)
    assert "only while parked" in d.message


def test_reserved_argument_names_are_refused() -> None:
    d = judge("storage.info", {"_allow": ["evil.example"]})
    assert d.code == "invalid_args" and "_allow" in d.message


def test_oversized_args_are_refused() -> None:
    d = judge("storage.info", {"blob": "x" * (gateway.MAX_ARGS_BYTES + 10)})
    assert d.code == "invalid_args" and "larger than" in d.message


def test_every_ui_method_is_declared_without_permission_and_maps_to_a_kind() -> None:
    kinds = {
        "toast",
        "hideToast",
        "modal",
        "loading",
        "hideLoading",
        "actionSheet",
        "navigationBar",
        "tabBar",
        "page",
    }
    assert len(gateway.UI_METHODS) == 23
    for name, rule in gateway.UI_METHODS.items():
        assert name.startswith("ui.") and rule.permission is None and rule.ui_kind in kinds
    d = judge(
        "ui.showToast", {"title": "Saved", "icon": "success", "duration": 1500}, app=AppPolicy("a.b", "A")
    )
    assert d.allowed and d.rule is not None and d.rule.ui_kind == "toast"
    assert gateway.ui_request_params(d.rule, {"title": "Saved"}) == {"title": "Saved", "op": "showToast"}


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("ui.showToast", {}),
        ("ui.showToast", {"title": "x", "icon": "bomb"}),
        ("ui.showActionSheet", {"itemList": []}),
        ("ui.showActionSheet", {"itemList": ["a"] * 7}),
        ("ui.setTabBarBadge", {"index": -1, "text": "1"}),
        ("ui.hideToast", {"extra": 1}),
    ],
)
def test_ui_args_are_checked(method: str, args: dict[str, Any]) -> None:
    assert judge(method, args).code == "invalid_args"


def test_plugins_cannot_declare_ui_methods_or_bad_rules() -> None:
    with pytest.raises(DeclarationError, match="ui namespace"):
        rule_from_wire("evil", {"name": "ui.showToast"})
    with pytest.raises(DeclarationError, match="consent"):
        rule_from_wire("p", {"name": "a.b", "consent": True, "permission": None})
    with pytest.raises(DeclarationError, match="driving"):
        rule_from_wire("p", {"name": "a.b", "driving": "sometimes"})
    with pytest.raises(DeclarationError, match="timeout_s"):
        rule_from_wire("p", {"name": "a.b", "timeout_s": float("inf")})
    with pytest.raises(DeclarationError, match="JSON Schema"):
        rule_from_wire("p", {"name": "a.b", "args": {"type": 12}})
    with pytest.raises(DeclarationError, match="twice"):
        rules_from_declare("p", [{"name": "a.b"}, {"name": "a.b"}])
    with pytest.raises(DeclarationError):
        rules_from_declare("p", "not a list")


def test_a_schema_that_breaks_at_validation_time_fails_cleanly() -> None:
    rules = rules_from_declare(
        "p", [{"name": "a.b", "args": {"$ref": "https://example.invalid/schema.json"}}]
    )
    d = decide(APP, "a.b", {}, plugin_rules=rules, grants={}, vehicle=None)
    assert (d.verdict, d.code) == ("deny", "failed")
