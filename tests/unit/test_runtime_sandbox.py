"""What mini-app JS cannot do, and what happens when it runs away."""

from __future__ import annotations

import pytest

from vehicle_host.logic_worker.harness import FakeHub
from vehicle_host.logic_worker.runtime import JsRealm, ScriptError


@pytest.fixture(scope="module")
def realm() -> JsRealm:
    r = JsRealm(time_limit_s=0.3)
    r.configure({"config": {}, "system": {}, "apis": [], "storage": {}, "limits": {}})
    return r


@pytest.mark.parametrize(
    "name",
    [
        "require",
        "process",
        "module",
        "exports",
        "eval",
        "std",
        "os",
        "fetch",
        "XMLHttpRequest",
        "WebSocket",
        "__vhk",
    ],
)
def test_no_host_doors_in_the_realm(realm: JsRealm, name: str) -> None:
    assert realm.eval_for_test(f"typeof {name}") == "undefined"


@pytest.mark.parametrize(
    "code",
    [
        "Function('return 1')()",
        "(function(){}).constructor('return 1')()",
        "(async function(){}).constructor('return 1')",
        "(function*(){}).constructor('yield 1')",
        "globalThis.eval",
    ],
)
def test_no_code_from_strings(realm: JsRealm, code: str) -> None:
    try:
        result = realm.eval_for_test(code)
    except ScriptError as exc:
        assert "not allowed" in exc.message
    else:
        assert result is None  # globalThis.eval is gone


def test_the_door_and_the_fc_globals_cannot_be_replaced(realm: JsRealm) -> None:
    realm.eval_for_test(
        "try { __vh.drain = null; globalThis.__vh = 1; wx = 2; fc.request = 3; } catch (e) {}"
    )
    assert realm.eval_for_test(
        "typeof __vh.drain + typeof wx + typeof fc.request + (fc === wx && wx === ft)"
    ) == ("functionobjectfunctiontrue")


def hub_with(page: str, *, limits: dict[str, int] | None = None) -> FakeHub:
    hub = FakeHub()
    hub.start({"app.js": "App({});", "pages/index/index.js": page}, limits=limits or {"time_ms": 200})
    return hub


def test_while_true_in_on_load_is_stopped_and_the_realm_keeps_working() -> None:
    hub = hub_with(
        "Page({\n  data: { n: 0 },\n  onLoad() { while (true) {} },\n  ok() { this.setData({ n: 1 }); },\n});"
    )
    (error,) = hub.errors()
    assert "longer than 200 ms" in error["message"]
    assert (error["file"], error["line"]) == ("pages/index/index.js", 3)
    assert hub.of("page.render")  # the page exists, so the driver sees it
    hub.event("ok")
    assert hub.diffs() == [{"n": 1}]
    assert not hub.session.broken


def test_while_true_in_a_tap_handler_is_stopped_and_reported_to_on_error() -> None:
    hub = FakeHub()
    hub.start(
        {
            "app.js": "App({ onError(m) { console.log('onError: ' + m.split('\\n')[0]); } });",
            "pages/index/index.js": "Page({ spin() { for (;;) {} }, ok() { console.log('alive'); } });",
        },
        limits={"time_ms": 200},
    )
    hub.event("spin")
    hub.event("ok")
    assert "longer than" in hub.errors()[0]["message"]
    assert hub.logs() == ["onError: script ran longer than 200 ms and was stopped", "alive"]


def test_allocation_bomb_hits_the_memory_limit_and_the_realm_recovers() -> None:
    hub = hub_with(
        "Page({ bomb() { const a = []; for (;;) a.push(new Array(100000).fill(1)); }, ok() {"
        " console.log('alive'); } });",
        limits={"time_ms": 5000, "memory_mb": 32},
    )
    hub.event("bomb")
    assert "out of memory" in hub.errors()[0]["message"]
    hub.event("ok")
    assert hub.logs() == ["alive"]
    assert not hub.session.broken


def test_runaway_promise_chain_is_stopped() -> None:
    hub = hub_with("Page({ onLoad() { const again = () => Promise.resolve().then(again); again(); } });")
    assert "re-queuing" in hub.errors()[0]["message"]


def test_deep_recursion_is_an_error_not_a_crash() -> None:
    hub = hub_with(
        "Page({ onLoad() { const f = (n) => f(n + 1) + 1; f(0); }, ok() { console.log('alive'); } });"
    )
    assert hub.errors()
    hub.event("ok")
    assert hub.logs()[-1] == "alive"


def test_a_realm_that_cannot_run_code_any_more_ends_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = hub_with("Page({ spin() { for (;;) {} }, ok() { console.log('alive'); } });")
    realm = hub.session.realm
    assert realm is not None and realm.healthy()
    monkeypatch.setattr(realm, "healthy", lambda: False)
    hub.event("spin")
    assert hub.session.broken  # the worker loop exits non-zero and the hub shows an error page
    hub.take()
    hub.event("ok")
    assert hub.sent == []


def test_memory_held_by_the_app_does_not_break_the_realm() -> None:
    hub = hub_with(
        "Page({ hog() { globalThis.h = []; try { for (;;) h.push(new Array(1000).fill(1)); } catch (e) {} },"
        " ok() { console.log('alive'); } });",
        limits={"time_ms": 5000, "memory_mb": 16},
    )
    hub.event("hog")
    hub.event("ok")
    assert hub.logs() == ["alive"]
    assert not hub.session.broken


def test_hostile_messages_cost_the_message_not_the_worker() -> None:
    hub = hub_with("Page({ ok() { console.log('alive'); } });")
    hub.event("$nope")
    hub.event("ok", page_id=99)
    hub.deliver("api.result", {"call_id": 424242, "ok": True, "result": 1})
    hub.deliver("api.event", {"call_id": 424242, "data": 1})
    hub.deliver(
        "nav.result", {"call_id": 5, "ok": True, "closed": [77, "x"], "opened": {"page_id": 1, "route": "x"}}
    )
    hub.take()
    hub.event("ok")
    assert hub.logs() == ["alive"]
