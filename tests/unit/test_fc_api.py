"""The fc namespace: callback and Promise styles, host calls, ui, request, plugins, unknown APIs."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from vehicle_host.logic_worker.harness import FakeHub
from vehicle_host.logic_worker.runtime import JsRealm

PAGE = """
Page({
  data: {},
  run(e) { const f = this[e.name]; f.call(this); },
  %s
});
"""


def app(body: str, **start: Any) -> FakeHub:
    hub = FakeHub()
    hub.start({"app.js": "App({});", "pages/index/index.js": PAGE % body}, **start)
    hub.take()
    return hub


def test_callback_style_success_and_complete_with_err_msg() -> None:
    hub = app(
        "go() { wx.showToast({ title: 'Saved', icon: 'success', success: (r) => console.log('ok '"
        " + r.errMsg),"
        " complete: (r) => console.log('done ' + r.errMsg) }); },"
    )
    hub.event("go")
    (call,) = hub.calls()
    assert call["method"] == "ui.showToast"
    assert call["args"] == {"title": "Saved", "icon": "success"}
    hub.answer(call["call_id"], {})
    assert hub.logs() == ["ok showToast:ok", "done showToast:ok"]


def test_promise_style_when_no_callbacks_are_given() -> None:
    hub = app(
        "async go() { const r = await ft.showModal({ title: 'Clear DTCs?', content: 'Sure?' });"
        " console.log(JSON.stringify(r)); },"
    )
    hub.event("go")
    (call,) = hub.calls("ui.showModal")
    assert call["args"]["showCancel"] is True
    hub.answer(call["call_id"], {"confirm": True})
    assert json.loads(hub.logs()[0]) == {"confirm": True, "cancel": False, "errMsg": "showModal:ok"}


def test_a_denied_call_fails_and_rejects_with_the_reason() -> None:
    hub = app(
        "go() { fc.showLoading({ title: 'x' }).catch((r) => console.log(r.errMsg + ' / ' + r.code)); },"
    )
    hub.event("go")
    (call,) = hub.calls()
    hub.answer(call["call_id"], error={"code": "denied", "message": "not while driving"})
    assert hub.logs() == ["showLoading:fail denied: not while driving / denied"]


def test_every_call_times_out_and_is_cancelled_at_the_hub() -> None:
    hub = app(
        "go() { fc.hideToast({ fail: (r) => console.log(r.errMsg) }); },", limits={"call_timeout_ms": 2000}
    )
    hub.event("go")
    (call,) = hub.calls()
    hub.advance(1.9)
    assert hub.logs() == []
    hub.advance(0.2)
    assert hub.logs() == ["hideToast:fail timeout: ui.hideToast: no answer in time"]
    assert hub.of("api.cancel") == [{"call_id": call["call_id"]}]
    hub.take()
    hub.answer(call["call_id"], {})  # too late: ignored
    assert hub.logs() == []


def test_action_sheet_choice_and_cancel() -> None:
    hub = app(
        "go() { fc.showActionSheet({ itemList: ['A', 'B'], success: (r) => console.log('tap ' + r.tapIndex),"
        " fail: (r) => console.log(r.errMsg) }); },"
    )
    hub.event("go")
    hub.answer(hub.calls()[-1]["call_id"], {"tapIndex": 1})
    hub.event("go")
    hub.answer(hub.calls()[-1]["call_id"], {"cancel": True})
    assert hub.logs() == ["tap 1", "showActionSheet:fail cancel"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            "fc.showToast('hello')",
            "showToast:fail parameter error: parameter should be Object instead of String;",
        ),
        (
            "fc.showToast({ title: 5 })",
            "showToast:fail parameter error: parameter.title should be String instead of Number;",
        ),
        (
            "fc.showToast({})",
            "showToast:fail parameter error: parameter.title should be String instead of Undefined;",
        ),
        ("fc.request({ url: 'ftp://x' })", 'request:fail invalid url "ftp://x"'),
        (
            "fc.request({ url: 'http://127.0.0.1/', method: 'BREW' })",
            "request:fail parameter error: method must be one of",
        ),
        (
            "fc.getRandomValues({ length: 5000 })",
            "getRandomValues:fail parameter error: length must be 1 to 1024;",
        ),
        (
            "fc.showActionSheet({ itemList: [] })",
            "showActionSheet:fail parameter error: itemList needs 1 to 6 items;",
        ),
    ],
)
def test_malformed_arguments_fail_with_a_clear_err_msg_and_send_nothing(call: str, message: str) -> None:
    hub = app(
        f"go() {{ const p = {call}; p.then((r) => console.log('resolved'), (r) => console.log(r.errMsg)); }},"
    )
    hub.event("go")
    assert hub.errors() == []
    assert hub.calls() == []
    assert hub.logs()[0].startswith(message)


def test_unknown_apis_fail_without_sending_and_can_i_use_says_false() -> None:
    hub = app(
        "go() { console.log(typeof fc.chooseImage, fc.canIUse('chooseImage'),"
        " fc.canIUse('showModal.success.confirm'),"
        " fc.canIUse('request'), 'chooseImage' in fc);"
        " fc.chooseImage({ count: 1, fail: (r) => console.log(r.errMsg) });"
        " wx.scanCode().catch((r) => console.log(r.errMsg)); },"
    )
    hub.event("go")
    assert hub.logs() == [
        "function false true true false",
        "chooseImage:fail not supported on this head unit",
        "scanCode:fail not supported on this head unit",
    ]
    assert hub.calls() == []


def test_request_sends_network_request_parses_json_and_returns_a_task() -> None:
    hub = app(
        "go() { this.task = fc.request({ url: 'http://127.0.0.1:8080/a?b=1', method: 'post', data: { q: 1 },"
        " header: { 'X-A': '1' }, success: (r) => console.log(r.statusCode + ' ' + r.data.ok + ' '"
        " + r.errMsg) }); },"
        " abort() { const t = fc.request({ url: 'http://127.0.0.1/', fail: (r) =>"
        " console.log(r.errMsg) }); t.abort(); },"
        " async awaited() { const r = await fc.request({ url: 'http://127.0.0.1/', dataType:"
        " 'text' }); console.log(r.data); },"
    )
    hub.event("go")
    (call,) = hub.calls()
    assert call["method"] == "network.request"
    assert call["args"] == {
        "url": "http://127.0.0.1:8080/a?b=1",
        "method": "POST",
        "data": {"q": 1},
        "header": {"X-A": "1"},
        "timeout": 15000,
        "dataType": "json",
        "responseType": "text",
    }
    hub.answer(call["call_id"], {"statusCode": 200, "header": {}, "data": '{"ok": true}'})
    assert hub.logs() == ["200 true request:ok"]
    hub.take()
    hub.event("abort")
    aborted = hub.calls()[0]["call_id"]
    assert hub.of("api.cancel") == [{"call_id": aborted}]
    assert hub.logs() == ["request:fail abort"]
    hub.take()
    hub.event("awaited")
    hub.answer(hub.calls()[0]["call_id"], {"statusCode": 200, "data": '{"raw": 1}'})
    assert hub.logs() == ['{"raw": 1}']


def test_bytes_travel_as_bytes_both_ways() -> None:
    hub = app(
        "go() { fc.request({ url: 'http://127.0.0.1/', method: 'PUT', data: new Uint8Array([1, 2,"
        " 255]).buffer,"
        " responseType: 'arraybuffer', success: (r) => console.log(new Uint8Array(r.data).join(',')) }); },"
    )
    hub.event("go")
    (call,) = hub.calls()
    assert call["args"]["data"] == b"\x01\x02\xff"
    hub.answer(call["call_id"], {"statusCode": 200, "data": b"\x00\x09"})
    assert hub.logs() == ["0,9"]


def test_plugin_methods_and_streams() -> None:
    hub = app(
        "go() { fc.vehicle.readDtcs({ ecu: 'engine' }).then((r) => console.log(JSON.stringify(r))); },"
        " watch() { this.h = fc.vehicle.watchSpeed({ hz: 5, onData: (d) => console.log('speed ' +"
        " d.kmh) }); },"
        " stop() { this.h.stop(); },",
        apis=[
            "vehicle.readDtcs",
            {"name": "vehicle.watchSpeed", "streams": True},
            "bad name",
            42,
            "request.x",
        ],
    )
    hub.event("go")
    (call,) = hub.calls()
    assert (call["method"], call["args"]) == ("vehicle.readDtcs", {"ecu": "engine"})
    hub.answer(call["call_id"], {"dtcs": ["P0301"]})
    assert json.loads(hub.logs()[0]) == {"dtcs": ["P0301"], "errMsg": "vehicle.readDtcs:ok"}
    hub.take()
    hub.event("watch")
    (stream,) = hub.calls()
    assert stream["args"] == {"hz": 5}
    hub.answer(stream["call_id"], {})
    hub.advance(60)  # a started stream has no deadline
    hub.deliver("api.event", {"call_id": stream["call_id"], "data": {"kmh": 42}})
    hub.deliver("api.event", {"call_id": stream["call_id"], "data": {"kmh": 43}})
    hub.event("stop")
    hub.deliver("api.event", {"call_id": stream["call_id"], "data": {"kmh": 44}})
    assert hub.logs() == ["speed 42", "speed 43"]
    assert hub.of("api.cancel") == [{"call_id": stream["call_id"]}]


def test_ui_apis_go_to_the_hub_under_their_names() -> None:
    names = [
        "hideToast",
        "hideLoading",
        "showNavigationBarLoading",
        "hideNavigationBarLoading",
        "startPullDownRefresh",
        "stopPullDownRefresh",
        "showTabBar",
        "hideTabBar",
    ]
    body = "go() { " + " ".join(f"fc.{n}();" for n in names) + " fc.setNavigationBarTitle({ title: 'T' });"
    body += " fc.setTabBarBadge({ index: 0, text: '3' }); fc.pageScrollTo({ scrollTop: 10 }); },"
    hub = app(body)
    hub.event("go")
    assert [c["method"] for c in hub.calls()] == [f"ui.{n}" for n in names] + [
        "ui.setNavigationBarTitle",
        "ui.setTabBarBadge",
        "ui.pageScrollTo",
    ]


def test_system_info_launch_options_and_base64() -> None:
    hub = app(
        "go() { const s = fc.getSystemInfoSync(); const w = fc.getWindowInfo();"
        " console.log(s.brand, s.screenWidth, w.windowHeight, fc.getLaunchOptionsSync().path,"
        " fc.getEnterOptionsSync().query.a,"
        " fc.arrayBufferToBase64(new Uint8Array([104, 105]).buffer), new"
        " Uint8Array(fc.base64ToArrayBuffer('aGk=')).join(','),"
        " fc.env.USER_DATA_PATH.length > 0, fc.getAppAuthorizeSetting().locationAuthorized);"
        " fc.getSystemInfo().then((r) => console.log(r.errMsg)); },",
        system={"brand": "Demo", "screenWidth": 1280, "windowHeight": 720},
        query={"a": "1"},
    )
    hub.event("go")
    assert hub.logs() == [
        "Demo 1280 720 pages/index/index 1 aGk= 104,105 true not determined",
        "getSystemInfo:ok",
    ]


def test_random_values_come_from_the_worker() -> None:
    hub = app(
        "go() { fc.getRandomValues({ length: 16, success: (r) =>"
        " console.log(r.randomValues.byteLength) }); },"
    )
    hub.event("go")
    assert hub.logs() == ["16"]
    assert hub.calls() == []


def test_update_manager_reports_no_update_when_the_hub_does_not_know_the_method() -> None:
    hub = app(
        "go() { const m = fc.getUpdateManager(); m.onCheckForUpdate((r) => console.log('has ' +"
        " r.hasUpdate)); },"
    )
    hub.event("go")
    (call,) = hub.calls("update.check")
    hub.answer(call["call_id"], error={"code": "unknown_method", "message": "no such method"})
    assert hub.logs() == ["has false"]


def test_app_listeners_and_log_manager() -> None:
    hub = app(
        "onLoad() { const f = () => console.log('shown'); fc.onAppShow(f); fc.onAppHide(() =>"
        " console.log('hidden'));"
        " fc.onError((m) => console.log('fc.onError ' + m.split('\\n')[0])); this.f = f; },"
        " off() { fc.offAppShow(this.f); }, boom() { throw new Error('oops'); },"
        " logm() { fc.getLogManager({ level: 1 }).warn('careful'); },"
    )
    hub.deliver("app.visibility", {"app_id": "x", "visible": False})
    hub.deliver("app.visibility", {"app_id": "x", "visible": True})
    hub.event("off")
    hub.deliver("app.visibility", {"app_id": "x", "visible": True})
    hub.event("boom")
    hub.event("logm")
    assert hub.logs() == ["hidden", "shown", "fc.onError Error: oops", "careful"]
    assert hub.logs("warn") == ["careful"]


def test_too_many_calls_in_flight_fail_at_once() -> None:
    hub = app(
        "go() { for (let i = 0; i < 600; i++) fc.hideToast().catch((r) => { if (i === 599)"
        " console.log(r.errMsg); }); },"
    )
    hub.event("go")
    assert len(hub.calls()) == 512
    assert "too many calls in flight" in hub.logs()[0]


def test_api_names_json_lists_exactly_what_the_realm_implements() -> None:
    listed = json.loads(
        resources.files("vehicle_host.logic_worker").joinpath("js/api-names.json").read_text()
    )
    realm = JsRealm()
    names = realm.api_names()
    assert listed == names
    assert {"request", "showModal", "navigateTo", "setStorageSync", "getSystemInfoSync", "canIUse"} <= set(
        names
    )
    for name in names:
        assert realm.eval_for_test(f"fc.canIUse({json.dumps(name)})") is True


def test_a_plugin_methods_declared_timeout_replaces_the_default() -> None:
    hub = app(
        "go() { fc.vehicle.slowScan({}).catch((r) => console.log(r.errMsg)); },",
        apis=[{"name": "vehicle.slowScan", "streams": False, "timeout_s": 30}],
    )
    hub.event("go")
    hub.advance(20)
    assert hub.logs() == []
    hub.advance(12)
    assert hub.logs() == ["vehicle.slowScan:fail timeout: vehicle.slowScan: no answer in time"]
