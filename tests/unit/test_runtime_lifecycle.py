"""App/Page lifecycles, navigation mirror, visibility and reserved page events (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from vehicle_host.logic_worker.harness import FakeHub

TRACE_APP = """
App({
  globalData: { unit: 'km' },
  onLaunch(o) { console.log('App.onLaunch ' + o.path); },
  onShow() { console.log('App.onShow'); },
  onHide() { console.log('App.onHide'); },
  onError(msg) { console.log('App.onError ' + msg.split('\\n')[0]); },
});
"""


def trace_page(name: str, extra: str = "") -> str:
    return f"""
Page({{
  data: {{ n: 0 }},
  onLoad(q) {{ console.log('{name}.onLoad ' + JSON.stringify(q)); }},
  onShow() {{ console.log('{name}.onShow'); }},
  onReady() {{ console.log('{name}.onReady'); }},
  onHide() {{ console.log('{name}.onHide'); }},
  onUnload() {{ console.log('{name}.onUnload'); }},
  onPullDownRefresh() {{ console.log('{name}.onPullDownRefresh'); fc.stopPullDownRefresh(); }},
  onReachBottom() {{ console.log('{name}.onReachBottom'); }},
  {extra}
}});
"""


PAGES = ["pages/index/index", "pages/b/b", "pages/c/c"]


def started(extra: str = "") -> FakeHub:
    hub = FakeHub()
    hub.start(
        {
            "app.js": TRACE_APP,
            "pages/index/index.js": trace_page("A", extra),
            "pages/b/b.js": trace_page("B"),
            "pages/c/c.js": trace_page("C"),
        },
        pages=PAGES,
        query={"from": "launcher"},
    )
    return hub


def test_launch_order_matches_wechat_and_on_ready_waits_for_the_paint() -> None:
    hub = started()
    assert hub.logs() == [
        "App.onLaunch pages/index/index",
        "App.onShow",
        'A.onLoad {"from":"launcher"}',
        "A.onShow",
    ]
    assert hub.of("page.render")[0] == {"page_id": 1, "data": {"n": 0}}
    hub.take()
    hub.deliver("page.painted", {"page_id": 1})
    hub.deliver("page.painted", {"page_id": 1})
    assert hub.logs() == ["A.onReady"]


def test_render_is_sent_before_on_load_runs() -> None:
    hub = started()
    order = [(t, p.get("message", "")) for t, p in hub.sent]
    assert order.index(("page.render", "")) < order.index(("log", 'A.onLoad {"from":"launcher"}'))


def go(hub: FakeHub, action: str, arg: str) -> None:
    hub.event("go", {"action": action, "arg": arg})


NAV_PAGE = """
  go(e) {
    const a = e.action;
    const args = a === 'navigateBack' ? { delta: Number(e.arg) } : { url: e.arg };
    args.success = (r) => console.log('success ' + r.errMsg);
    args.fail = (r) => console.log('fail ' + r.errMsg);
    args.complete = () => console.log('complete');
    fc[a](args);
  },
"""


def test_navigate_to_hides_the_old_page_then_creates_the_new_one_then_calls_back() -> None:
    hub = started(NAV_PAGE)
    hub.take()
    go(hub, "navigateTo", "/pages/b/b?x=1")
    (request,) = hub.of("nav.request")
    assert request == {"call_id": request["call_id"], "action": "navigateTo", "url": "/pages/b/b?x=1"}
    assert hub.logs() == []
    hub.take()
    hub.deliver(
        "nav.result",
        {
            "call_id": request["call_id"],
            "ok": True,
            "opened": {"page_id": 2, "route": "pages/b/b", "query": {"x": "1"}},
            "closed": [],
        },
    )
    assert hub.logs() == ["A.onHide", 'B.onLoad {"x":"1"}', "B.onShow", "success navigateTo:ok", "complete"]
    assert hub.of("page.render") == [{"page_id": 2, "data": {"n": 0}}]


def test_navigate_back_unloads_and_shows_the_uncovered_page() -> None:
    hub = started(NAV_PAGE)
    go(hub, "navigateTo", "/pages/b/b")
    call = hub.of("nav.request")[-1]["call_id"]
    hub.deliver("nav.result", {"call_id": call, "ok": True, "opened": {"page_id": 2, "route": "pages/b/b"}})
    hub.take()
    # the hub acting on the shell's back button: a nav.result nobody asked for
    hub.deliver("nav.result", {"call_id": 0, "ok": True, "closed": [2], "shown": 1})
    assert hub.logs() == ["B.onUnload", "A.onShow"]


def test_redirect_to_unloads_the_old_page_and_relaunch_unloads_all() -> None:
    hub = started(NAV_PAGE)
    go(hub, "redirectTo", "/pages/b/b")
    call = hub.of("nav.request")[-1]["call_id"]
    hub.take()
    hub.deliver(
        "nav.result",
        {
            "call_id": call,
            "ok": True,
            "opened": {"page_id": 2, "route": "pages/b/b", "query": {}},
            "closed": [1],
        },
    )
    assert hub.logs() == ["A.onUnload", "B.onLoad {}", "B.onShow", "success redirectTo:ok", "complete"]
    hub.take()
    hub.deliver("nav.result", {"call_id": 0, "ok": True, "opened": {"page_id": 3, "route": "pages/c/c"}})
    hub.deliver(
        "nav.result",
        {"call_id": 0, "ok": True, "opened": {"page_id": 4, "route": "pages/index/index"}, "closed": [2, 3]},
    )
    assert hub.logs()[-4:] == ["C.onUnload", "B.onUnload", "A.onLoad {}", "A.onShow"]


def test_a_refused_navigation_fails_with_the_hubs_reason() -> None:
    hub = started(NAV_PAGE)
    go(hub, "navigateTo", "/pages/nope/nope")
    call = hub.of("nav.request")[-1]["call_id"]
    hub.take()
    hub.deliver("nav.result", {"call_id": call, "ok": False, "error": 'page "pages/nope/nope" is not found'})
    assert hub.logs() == ['fail navigateTo:fail page "pages/nope/nope" is not found', "complete"]


def test_navigation_times_out_when_the_hub_never_answers() -> None:
    hub = started(NAV_PAGE)
    go(hub, "navigateBack", "1")
    assert hub.of("nav.request")[-1]["delta"] == 1
    hub.take()
    hub.advance(16)
    assert hub.logs() == ["fail navigateBack:fail timeout: the hub did not answer in time", "complete"]


def test_navigation_with_a_bad_url_fails_without_asking_the_hub() -> None:
    hub = started("go() { fc.navigateTo({ url: 42, fail: (r) => console.log(r.errMsg) }); },")
    hub.take()
    hub.event("go")
    assert hub.of("nav.request") == []
    assert hub.logs() == [
        "navigateTo:fail parameter error: parameter.url should be String instead of Number;"
    ]


def test_app_visibility_hides_and_shows_the_app_and_the_top_page() -> None:
    hub = started()
    hub.take()
    hub.deliver("app.visibility", {"app_id": "org.test.app", "visible": False})
    hub.deliver("app.visibility", {"app_id": "org.test.app", "visible": True})
    assert hub.logs() == ["App.onHide", "A.onHide", "App.onShow", "A.onShow"]


def test_pull_down_refresh_and_reach_bottom_are_reserved_events() -> None:
    hub = started()
    hub.take()
    hub.event("$pullDownRefresh")
    hub.event("$reachBottom")
    assert hub.logs() == ["A.onPullDownRefresh", "A.onReachBottom"]
    assert [c["method"] for c in hub.calls()] == ["ui.stopPullDownRefresh"]


def test_handler_errors_reach_app_on_error_and_the_host() -> None:
    hub = started("boom() { const x = null; return x.y; },")
    hub.take()
    hub.event("boom")
    (error,) = hub.errors()
    assert error["file"] == "pages/index/index.js"
    assert "null" in error["message"]
    assert hub.logs() == ["App.onError TypeError: cannot read property 'y' of null"]


def test_get_app_and_get_current_pages() -> None:
    hub = started(
        "probe() { console.log(getApp().globalData.unit, getCurrentPages().map((p) => p.route).join(',')); },"
    )
    hub.take()
    hub.event("probe")
    assert hub.logs() == ["km pages/index/index"]


def test_a_missing_handler_warns_like_wechat() -> None:
    hub = started()
    hub.take()
    hub.event("nothing", {"type": "tap"})
    assert hub.logs("warn") == [
        'Page "pages/index/index" does not have a method "nothing" to handle event "tap".'
    ]
    assert hub.errors() == []


def test_app_js_errors_are_located_and_the_page_still_opens() -> None:
    hub = FakeHub()
    hub.start(
        {"app.js": "App({});\nundefinedFunction();\n", "pages/index/index.js": "Page({ data: { a: 1 } });"}
    )
    (error,) = hub.errors()
    assert (error["file"], error["line"]) == ("app.js", 2)
    assert hub.of("page.render") == [{"page_id": 1, "data": {"a": 1}}]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {"url": "/pages/b/b?x=1", "openType": "navigate"},
            {"action": "navigateTo", "url": "/pages/b/b?x=1"},
        ),
        ({"url": "../c/c"}, {"action": "navigateTo", "url": "../c/c"}),
        ({"url": "/pages/b/b", "openType": "redirect"}, {"action": "redirectTo", "url": "/pages/b/b"}),
        ({"url": "/pages/c/c", "openType": "switchTab"}, {"action": "switchTab", "url": "/pages/c/c"}),
        ({"url": "/pages/c/c", "openType": "reLaunch"}, {"action": "reLaunch", "url": "/pages/c/c"}),
        ({"openType": "navigateBack", "delta": 2}, {"action": "navigateBack", "delta": 2}),
        ({"openType": "navigateBack"}, {"action": "navigateBack", "delta": 1}),
    ],
)
def test_navigator_taps_become_the_matching_navigation(
    event: dict[str, Any], expected: dict[str, Any]
) -> None:
    hub = started()
    hub.take()
    hub.event("$navigate", event)
    (request,) = hub.of("nav.request")
    assert request == {"call_id": request["call_id"], **expected}
    hub.deliver("nav.result", {"call_id": request["call_id"], "ok": False, "error": "refused"})
    assert hub.logs("error") == [f"<navigator> could not navigate: {expected['action']}:fail refused"]


@pytest.mark.parametrize("open_type", ["exit", "bogus", 7])
def test_navigator_with_an_unknown_open_type_logs_an_error_and_sends_nothing(open_type: object) -> None:
    hub = started()
    hub.take()
    hub.event("$navigate", {"url": "/pages/b/b", "openType": open_type})
    assert hub.of("nav.request") == []
    (message,) = hub.logs("error")
    assert "is not supported here" in message
    assert hub.errors() == []


def test_tab_bar_taps_call_on_tab_item_tap_then_switch_tab() -> None:
    hub = FakeHub()
    hub.start(
        {
            "app.js": TRACE_APP,
            "pages/index/index.js": trace_page(
                "A", "onTabItemTap(t) { console.log('tab ' + JSON.stringify(t)); },"
            ),
            "pages/b/b.js": trace_page("B"),
        },
        config={
            "pages": ["pages/index/index", "pages/b/b"],
            "tabBar": {
                "list": [
                    {"pagePath": "pages/index/index", "text": "Home"},
                    {"pagePath": "/pages/b/b", "text": "Codes"},
                ]
            },
        },
    )
    hub.take()
    hub.event("$switchTab", {"url": "/pages/b/b"})
    assert hub.logs() == ['tab {"pagePath":"pages/b/b","index":1,"text":"Codes"}']
    (request,) = hub.of("nav.request")
    assert request == {"call_id": request["call_id"], "action": "switchTab", "url": "/pages/b/b"}
    hub.take()
    hub.deliver(
        "nav.result",
        {
            "call_id": request["call_id"],
            "ok": True,
            "opened": {"page_id": 2, "route": "pages/b/b"},
            "closed": [1],
        },
    )
    assert hub.logs() == ["A.onUnload", "B.onLoad {}", "B.onShow"]


def test_tab_bar_taps_switch_even_without_on_tab_item_tap() -> None:
    hub = started()
    hub.take()
    hub.event("$switchTab", {"url": "/pages/c/c"})
    assert [r["action"] for r in hub.of("nav.request")] == ["switchTab"]
    assert hub.errors() == []
