"""fc APIs served by the hub: app.*, settings.*, clipboard.*, display.*, network.*."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vehicle_host.logic_worker.harness import FakeHub

PAGE = """
Page({
  call(e) {
    const p = fc[e.api](e.args === null ? undefined : e.args);
    p.then((r) => console.log('ok ' + JSON.stringify(r)), (r) => console.log('fail ' + r.errMsg));
  },
  %s
});
"""


def app(body: str = "", **start: Any) -> FakeHub:
    hub = FakeHub()
    hub.start({"app.js": "App({});", "pages/index/index.js": PAGE % body}, **start)
    hub.take()
    return hub


def call(hub: FakeHub, api: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    hub.event("call", {"api": api, "args": args})
    (sent,) = hub.calls()
    return sent


CASES: list[tuple[str, dict[str, Any] | None, str, dict[str, Any], Any, dict[str, Any]]] = [
    ("exitMiniProgram", None, "app.exit", {}, {}, {}),
    ("restartMiniProgram", {"path": "/pages/b/b"}, "app.restart", {"path": "/pages/b/b"}, {}, {}),
    ("restartMiniProgram", None, "app.restart", {}, {}, {}),
    (
        "navigateToMiniProgram",
        {
            "appId": "org.example.parts",
            "path": "pages/x/x?a=1",
            "extraData": {"vin": "V1"},
            "envVersion": "release",
        },
        "app.open",
        {
            "appId": "org.example.parts",
            "path": "pages/x/x?a=1",
            "extraData": {"vin": "V1"},
            "envVersion": "release",
        },
        {},
        {},
    ),
    (
        "navigateBackMiniProgram",
        {"extraData": {"done": True}},
        "app.back",
        {"extraData": {"done": True}},
        {},
        {},
    ),
    (
        "authorize",
        {"scope": "scope.userLocation"},
        "settings.authorize",
        {"scope": "scope.userLocation"},
        {},
        {},
    ),
    (
        "getSetting",
        None,
        "settings.get",
        {},
        {"authSetting": {"scope.userLocation": True}},
        {"authSetting": {"scope.userLocation": True}},
    ),
    ("setClipboardData", {"data": "VIN WVW123"}, "clipboard.set", {"data": "VIN WVW123"}, {}, {}),
    ("getClipboardData", None, "clipboard.get", {}, {"data": "copied"}, {"data": "copied"}),
    ("getClipboardData", None, "clipboard.get", {}, {}, {"data": ""}),
    ("setKeepScreenOn", {"keepScreenOn": True}, "display.setKeepScreenOn", {"keepScreenOn": True}, {}, {}),
    ("getScreenBrightness", None, "display.getScreenBrightness", {}, {"value": 0.4}, {"value": 0.4}),
    ("setScreenBrightness", {"value": 0.8}, "display.setScreenBrightness", {"value": 0.8}, {}, {}),
    (
        "getNetworkType",
        None,
        "network.type",
        {},
        {"networkType": "4g", "signalStrength": -80, "junk": 1},
        {"networkType": "4g", "signalStrength": -80},
    ),
    (
        "getNetworkType",
        None,
        "network.type",
        {},
        {"networkType": "carrier-pigeon"},
        {"networkType": "unknown"},
    ),
]


@pytest.mark.parametrize(("api", "args", "method", "wire_args", "answer", "result"), CASES)
def test_each_api_sends_its_method_and_shapes_the_answer(
    api: str, args: dict[str, Any] | None, method: str, wire_args: dict[str, Any], answer: Any, result: Any
) -> None:
    hub = app()
    sent = call(hub, api, args)
    assert (sent["method"], sent["args"]) == (method, wire_args)
    hub.answer(sent["call_id"], answer)
    (line,) = hub.logs()
    assert json.loads(line.removeprefix("ok ")) == {**result, "errMsg": f"{api}:ok"}


@pytest.mark.parametrize("api", ["exitMiniProgram", "authorize", "getSetting", "setClipboardData"])
def test_a_hub_that_does_not_know_the_method_makes_the_api_fail(api: str) -> None:
    hub = app()
    args = (
        {"scope": "scope.record"}
        if api == "authorize"
        else {"data": "x"}
        if api == "setClipboardData"
        else None
    )
    sent = call(hub, api, args)
    hub.answer(
        sent["call_id"], error={"code": "unknown_method", "message": f"{sent['method']} is not offered"}
    )
    assert hub.logs() == [f"fail {api}:fail unknown_method: {sent['method']} is not offered"]


@pytest.mark.parametrize(
    ("api", "args", "message"),
    [
        ("navigateToMiniProgram", {}, "parameter.appId should be String instead of Undefined;"),
        ("navigateToMiniProgram", {"appId": "x", "envVersion": "beta"}, "envVersion must be develop, trial"),
        ("authorize", {"scope": 3}, "parameter.scope should be String instead of Number;"),
        ("setScreenBrightness", {"value": 1.5}, "value must be between 0 and 1"),
        ("setKeepScreenOn", {"keepScreenOn": "yes"}, "parameter.keepScreenOn should be Boolean"),
        ("setClipboardData", {"data": 5}, "parameter.data should be String instead of Number;"),
    ],
)
def test_bad_arguments_fail_without_sending(api: str, args: dict[str, Any], message: str) -> None:
    hub = app()
    hub.event("call", {"api": api, "args": args})
    assert hub.calls() == []
    (line,) = hub.logs()
    assert line.startswith(f"fail {api}:fail ")
    assert message in line


def test_a_nonsense_brightness_answer_fails_instead_of_lying() -> None:
    hub = app()
    sent = call(hub, "getScreenBrightness")
    hub.answer(sent["call_id"], {"value": "bright"})
    assert hub.logs() == ["fail getScreenBrightness:fail the head unit reported no brightness"]


def test_account_info_comes_from_worker_start() -> None:
    hub = app(
        "info() { console.log(JSON.stringify(wx.getAccountInfoSync())); },",
        system={"appVersion": "2.1.0"},
    )
    hub.event("info")
    assert json.loads(hub.logs()[0]) == {
        "miniProgram": {"appId": "org.test.app", "envVersion": "release", "version": "2.1.0"},
        "plugin": {},
    }


def test_network_status_listeners_share_one_stream_that_stops_with_the_last_listener() -> None:
    hub = app(
        "on() { this.a = (r) => console.log('a ' + JSON.stringify(r)); this.b = (r) => console.log('b ' +"
        " r.networkType); wx.onNetworkStatusChange(this.a); wx.onNetworkStatusChange(this.b); },"
        " offA() { wx.offNetworkStatusChange(this.a); }, offB() { wx.offNetworkStatusChange(this.b); },"
    )
    hub.event("on")
    (watch,) = hub.calls("network.watch")
    hub.answer(watch["call_id"], {})
    hub.deliver(
        "api.event", {"call_id": watch["call_id"], "data": {"isConnected": False, "networkType": "none"}}
    )
    hub.event("offA")
    hub.deliver(
        "api.event", {"call_id": watch["call_id"], "data": {"isConnected": True, "networkType": "wifi"}}
    )
    assert hub.logs() == ['a {"isConnected":false,"networkType":"none"}', "b none", "b wifi"]
    assert hub.of("api.cancel") == []
    hub.event("offB")
    assert hub.of("api.cancel") == [{"call_id": watch["call_id"]}]
    hub.event("on")
    assert len(hub.calls("network.watch")) == 2  # listening again starts a new stream


def test_network_watch_refused_by_the_hub_is_a_warning() -> None:
    hub = app("on() { wx.onNetworkStatusChange(() => console.log('never')); },")
    hub.event("on")
    (watch,) = hub.calls("network.watch")
    hub.answer(watch["call_id"], error={"code": "unknown_method", "message": "no network plugin"})
    assert hub.logs("warn") == [
        "onNetworkStatusChange: the head unit cannot report network changes"
        " (unknown_method: no network plugin)"
    ]
    hub.event("on")
    assert len(hub.calls("network.watch")) == 2
