"""Route events (onBeforeAppRoute ... onAppRouteDone) and performance entries around navigation."""

from __future__ import annotations

import json
from typing import Any

from vehicle_host.logic_worker.harness import FakeHub

APP = """
const names = ['BeforeAppRoute', 'AppRoute', 'AppRouteDone', 'BeforePageLoad', 'AfterPageLoad',
  'BeforePageUnload', 'AfterPageUnload'];
names.forEach((n) => wx['on' + n]((r) => console.log(n + ' ' + JSON.stringify(r))));
App({});
"""


def page(name: str) -> str:
    return (
        f"Page({{ onLoad() {{ console.log('{name}.onLoad'); }}, onShow() {{ console.log('{name}.onShow'); }},"
        f" onUnload() {{ console.log('{name}.onUnload'); }},"
        " go(e) { wx[e.api](Object.assign({ success: () => console.log('success') }, e.args)); },"
        " perf() { console.log('entries ' + JSON.stringify(wx.getPerformance().getEntries())); } });"
    )


def started() -> FakeHub:
    hub = FakeHub()
    hub.start(
        {"app.js": APP, "pages/index/index.js": page("A"), "pages/b/b.js": page("B")},
        pages=["pages/index/index", "pages/b/b"],
        query={"v": "1"},
    )
    return hub


def parsed(lines: list[str]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for line in lines:
        head, _, rest = line.partition(" ")
        out.append((head, json.loads(rest) if rest.startswith("{") else None))
    return out


def test_app_launch_is_a_route_with_load_events_around_the_entry_page() -> None:
    hub = started()
    events = parsed(hub.logs())
    assert [name for name, _ in events] == [
        "BeforeAppRoute",
        "BeforePageLoad",
        "A.onLoad",
        "A.onShow",
        "AfterPageLoad",
        "AppRoute",
    ]
    before = events[0][1]
    assert before["path"] == "pages/index/index"
    assert before["query"] == {"v": "1"}
    assert before["openType"] == "appLaunch"
    assert before["webviewId"] == 1
    route = events[5][1]
    assert route["routeEventId"] == before["routeEventId"] == events[1][1]["routeEventId"]
    assert isinstance(route["timeStamp"], int | float)
    hub.take()
    hub.deliver("page.painted", {"page_id": 1})
    (done,) = parsed(hub.logs())
    assert done[0] == "AppRouteDone"
    assert done[1]["routeEventId"] == before["routeEventId"]


def test_redirect_fires_events_in_wechats_documented_order() -> None:
    hub = started()
    hub.take()
    hub.event("go", {"api": "redirectTo", "args": {"url": "/pages/b/b?k=2"}})
    (request,) = hub.of("nav.request")
    hub.take()
    opened = {"page_id": 2, "route": "pages/b/b", "query": {"k": "2"}}
    hub.deliver("nav.result", {"call_id": request["call_id"], "ok": True, "opened": opened, "closed": [1]})
    events = parsed(hub.logs())
    assert [name for name, _ in events] == [
        "BeforeAppRoute",
        "BeforePageUnload",
        "A.onUnload",
        "AfterPageUnload",
        "BeforePageLoad",
        "B.onLoad",
        "B.onShow",
        "AfterPageLoad",
        "AppRoute",
        "success",
    ]
    ids = {payload["routeEventId"] for _, payload in events if payload is not None}
    assert len(ids) == 1
    assert events[0][1]["openType"] == "redirectTo"
    assert events[1][1]["path"] == "pages/index/index"
    assert events[1][1]["webviewId"] == 1
    assert events[8][1] == {
        "path": "pages/b/b",
        "query": {"k": "2"},
        "openType": "redirectTo",
        "webviewId": 2,
        "timeStamp": events[8][1]["timeStamp"],
        "routeEventId": events[0][1]["routeEventId"],
        "renderer": "webview",
        "notFound": False,
    }


def test_a_back_button_route_is_navigate_back_and_done_at_once() -> None:
    hub = started()
    hub.event("go", {"api": "navigateTo", "args": {"url": "/pages/b/b"}})
    call = hub.of("nav.request")[-1]["call_id"]
    hub.deliver("nav.result", {"call_id": call, "ok": True, "opened": {"page_id": 2, "route": "pages/b/b"}})
    hub.take()
    hub.deliver("nav.result", {"call_id": 0, "ok": True, "closed": [2], "shown": 1})
    names = [name for name, _ in parsed(hub.logs())]
    assert names == [
        "BeforeAppRoute",
        "BeforePageUnload",
        "B.onUnload",
        "AfterPageUnload",
        "A.onShow",
        "AppRoute",
        "AppRouteDone",
    ]
    route = parsed(hub.logs())[5][1]
    assert (route["openType"], route["path"], route["webviewId"], route["query"]) == (
        "navigateBack",
        "pages/index/index",
        1,
        {"v": "1"},
    )


def test_refused_navigation_fires_no_route_events_and_off_removes_listeners() -> None:
    hub = FakeHub()
    hub.start(
        {
            "app.js": "App({});",
            "pages/index/index.js": "const f = (r) => console.log('route ' + r.openType);\n"
            "wx.onAppRoute(f);\n"
            "Page({ go() { wx.navigateTo({ url: '/pages/x/x' }).catch(() => console.log('refused')); },"
            " off() { wx.offAppRoute(f); } });",
        }
    )
    hub.take()
    hub.event("go")
    hub.deliver("nav.result", {"call_id": hub.of("nav.request")[-1]["call_id"], "ok": False, "error": "no"})
    hub.event("off")
    hub.deliver(
        "nav.result", {"call_id": 0, "ok": True, "opened": {"page_id": 2, "route": "pages/index/index"}}
    )
    assert hub.logs() == ["refused"]


def test_performance_has_navigation_entries_timed_by_the_worker_clock() -> None:
    hub = started()
    hub.advance(0.25)
    hub.deliver("page.painted", {"page_id": 1})
    hub.event("go", {"api": "navigateTo", "args": {"url": "/pages/b/b"}})
    call = hub.of("nav.request")[-1]["call_id"]
    hub.advance(0.1)
    hub.deliver("nav.result", {"call_id": call, "ok": True, "opened": {"page_id": 2, "route": "pages/b/b"}})
    hub.advance(0.4)
    hub.deliver("page.painted", {"page_id": 2})
    hub.take()
    hub.event("perf", page_id=2)
    (line,) = hub.logs()
    entries = json.loads(line.removeprefix("entries "))
    launch, render1, route, render2 = entries
    assert (launch["entryType"], launch["name"], launch["path"], launch["navigationType"]) == (
        "navigation",
        "appLaunch",
        "pages/index/index",
        "appLaunch",
    )
    assert 249 < launch["duration"] < 300  # the worker clock, give or take the real time of the calls
    assert (render1["entryType"], render1["name"], render1["pageId"]) == ("render", "firstRender", 1)
    assert (
        route["name"],
        route["path"],
        route["pageId"],
        route["referrerPath"],
        route["referrerPageId"],
    ) == (
        "route",
        "pages/b/b",
        2,
        "pages/index/index",
        1,
    )
    assert 399 < route["duration"] < 450
    assert route["startTime"] > launch["startTime"] + 349
    assert render2["pageId"] == 2
