"""setData: paths, merging per turn, limits, callbacks after the diff is sent, flood control."""

from __future__ import annotations

import json

from vehicle_host.logic_worker.harness import FakeHub
from vehicle_host.logic_worker.runtime import JsRealm


def page(
    body: str, data: str = "{ n: 0, list: [{ name: 'a' }, { name: 'b' }, { name: 'c' }], a: { b: 1 } }"
) -> FakeHub:
    hub = FakeHub()
    hub.start({"app.js": "App({});", "pages/index/index.js": f"Page({{ data: {data}, {body} }});"})
    hub.take()
    return hub


def test_path_keys_update_this_data_and_only_the_diff_travels() -> None:
    hub = page(
        "go() { this.setData({ 'list[2].name': 'z', 'a.b': 2, 'a.c[1]': 'x' });"
        " console.log(JSON.stringify(this.data)); },"
    )
    hub.event("go")
    assert hub.diffs() == [{"list[2].name": "z", "a.b": 2, "a.c[1]": "x"}]
    assert json.loads(hub.logs()[0]) == {
        "n": 0,
        "list": [{"name": "a"}, {"name": "b"}, {"name": "z"}],
        "a": {"b": 2, "c": [None, "x"]},
    }


def test_calls_in_one_turn_are_merged_per_page() -> None:
    hub = page(
        "go() { this.setData({ 'a.b': 1 }); this.setData({ a: { b: 5 } }); this.setData({ 'a.c':"
        " 7, n: 1 }); },"
    )
    hub.event("go")
    # 'a' replaced the earlier 'a.b'; the later 'a.c' was written into the value of 'a'
    assert hub.diffs() == [{"a": {"b": 5, "c": 7}, "n": 1}]


def test_ten_thousand_set_data_calls_in_a_loop_become_one_message() -> None:
    hub = page(
        "go() { for (let i = 0; i < 10000; i++) this.setData({ n: i, ['list[' + (i % 3) +"
        " '].name']: 'v' + i }); },"
    )
    hub.event("go")
    assert hub.diffs() == [
        {"n": 9999, "list[0].name": "v9999", "list[1].name": "v9997", "list[2].name": "v9998"}
    ]


def test_over_256_kb_is_refused_with_an_error_naming_the_page_and_data_is_unchanged() -> None:
    hub = page("go() { this.setData({ big: 'x'.repeat(300 * 1024) }); console.log(typeof this.data.big); },")
    hub.event("go")
    assert hub.diffs() == []
    (error,) = hub.logs("error")
    assert "pages/index/index" in error and "256 KB" in error
    assert hub.logs("info") == ["undefined"]


def test_ten_megabytes_of_set_data_is_refused_and_the_app_goes_on() -> None:
    hub = page(
        "go() { this.setData({ big: 'y'.repeat(10 * 1024 * 1024) }); }, ok() { this.setData({ n: 1 }); },"
    )
    hub.event("go")
    assert hub.diffs() == []
    assert any("refused" in m for m in hub.logs("error"))
    hub.event("ok")
    assert hub.diffs() == [{"n": 1}]


def test_big_merged_turns_are_cut_into_messages_under_the_limit() -> None:
    hub = page("go() { for (let i = 0; i < 6; i++) this.setData({ ['k' + i]: 'x'.repeat(200 * 1024) }); },")
    hub.event("go")
    diffs = hub.diffs()
    assert len(diffs) >= 3
    assert sorted(k for d in diffs for k in d) == [f"k{i}" for i in range(6)]
    assert all(len(json.dumps(d)) <= 256 * 1024 for d in diffs)


def test_the_callback_runs_after_the_diff_was_sent() -> None:
    hub = page(
        "go() { this.setData({ n: 1 }, () => { console.log('cb ' + this.data.n); this.setData({ n:"
        " 2 }); }); },"
    )
    hub.event("go")
    order = [(t, p.get("diff", p.get("message"))) for t, p in hub.sent]
    assert order == [("page.setData", {"n": 1}), ("log", "cb 1"), ("page.setData", {"n": 2})]


def test_malformed_set_data_throws_into_the_app_not_the_host() -> None:
    hub = page("go() { try { this.setData('n', 1); } catch (e) { console.log(e.message); } },")
    hub.event("go")
    assert hub.logs() == ["setData expects an object of key paths to values, got String"]


def test_reserved_path_segments_are_refused() -> None:
    hub = page(
        "go() { this.setData({ '__proto__.polluted': 1 }); }, check() { console.log(typeof ({}).polluted); },"
    )
    hub.event("go")
    assert hub.errors() and "reserved key" in hub.errors()[0]["message"]
    hub.take()
    hub.event("check")
    assert hub.logs() == ["undefined"]


def test_flood_of_flushes_is_held_back_and_merged_not_dropped() -> None:
    hub = page("onLoad() { this.i = 0; setInterval(() => { this.i++; this.setData({ n: this.i }); }, 4); },")
    hub.advance(0.0)
    hub.take()
    hub.session._out.limit = 10  # a tight budget makes the rule visible without sending thousands
    hub.advance(1.0)
    first = hub.diffs()
    assert 0 < len(first) <= 11
    hub.advance(3.0)
    last = hub.diffs()[-1]["n"]
    # every tick still landed: the last value sent is the newest one (nothing was lost)
    hub.advance(0.05)
    assert hub.diffs()[-1]["n"] >= last


def test_realm_drain_reports_set_data_per_component_separately() -> None:
    realm = JsRealm()
    realm.configure({"config": {}, "system": {}, "apis": [], "storage": {}, "limits": {}})
    realm.load_module("pages/p/p", "Page({ data: {}, go() { this.setData({ a: 1 }); } });", kind="page")
    realm.launch_app({"path": "pages/p/p", "query": {}})
    realm.open_page("pages/p/p", 7, {})
    realm.drain()
    realm.dispatch_event(7, "go", {})
    assert realm.drain() == [{"t": "setData", "pageId": 7, "diff": {"a": 1}}]
