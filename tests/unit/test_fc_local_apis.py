"""fc APIs the worker answers itself: performance, idle callbacks, device info, debug, preload, animation."""

from __future__ import annotations

import json
from typing import Any

from vehicle_host.logic_worker.harness import FakeHub

PAGE = "Page({ data: {}, %s });"


def app(body: str, **start: Any) -> FakeHub:
    hub = FakeHub()
    hub.start({"app.js": "App({});", "pages/index/index.js": PAGE % body}, **start)
    hub.take()
    return hub


def test_performance_now_follows_the_worker_clock_and_observers_see_new_entries() -> None:
    hub = app(
        "t() { console.log(Math.round(wx.getPerformance().now())); },"
        " watch() { const o = wx.getPerformance().createObserver((list) => console.log('seen ' +"
        " list.getEntries().map((e) => e.name).join(','))); o.observe({ entryTypes: ['navigation'] }); },"
        " byType() { const p = wx.getPerformance(); console.log(p.getEntriesByType('render').length,"
        " p.getEntriesByName('appLaunch').length, p === wx.getPerformance()); },"
    )
    hub.event("t")
    hub.advance(1.5)
    hub.event("t")
    first, second = (int(x) for x in hub.logs())
    assert 1499 <= second - first <= 1501
    hub.take()
    hub.event("watch")
    hub.deliver("page.painted", {"page_id": 1})
    hub.event("byType")
    assert hub.logs() == ["seen appLaunch", "1 1 true"]


def test_performance_buffer_size_is_bounded() -> None:
    hub = app(
        "go() { const p = wx.getPerformance(); p.setBufferSize(1);"
        " try { p.setBufferSize(0); } catch (e) { console.log(e.message); }"
        " console.log(p.getEntries().length); },"
    )
    hub.deliver("page.painted", {"page_id": 1})  # appLaunch + firstRender entries
    hub.event("go")
    assert hub.logs() == ["setBufferSize expects a positive number", "1"]


def test_idle_callbacks_run_after_the_turn_when_the_worker_is_idle() -> None:
    hub = app(
        "go() { wx.requestIdleCallback((d) => console.log('idle ' + d.didTimeout + ' ' +"
        " (d.timeRemaining() > 0)));"
        " const id = wx.requestIdleCallback(() => console.log('cancelled')); wx.cancelIdleCallback(id);"
        " setTimeout(() => console.log('timer'), 0); console.log('handler'); },"
    )
    hub.event("go")
    assert hub.logs() == ["handler"]
    hub.advance(0)
    assert hub.logs() == ["handler", "timer", "idle false true"]


def test_idle_callbacks_that_ask_again_are_bounded_per_second() -> None:
    hub = app(
        "go() { let n = 0; const again = () => { n++; if (n % 50 === 0) console.log('runs ' + n);"
        " wx.requestIdleCallback(again); }; wx.requestIdleCallback(again); },"
        " flood() { try { for (let i = 0; i < 2000; i++) wx.requestIdleCallback(() => {}); }"
        " catch (e) { console.log(e.message); } },"
    )
    hub.event("go")
    hub.advance(1.0)
    runs = [int(line.split()[1]) for line in hub.logs()]
    assert runs and runs[-1] <= 101  # one batch per 10 ms at most
    hub.take()
    hub.event("flood")
    assert "already waiting" in hub.logs()[0]


def test_device_benchmark_renderer_user_agent_and_preload_hints() -> None:
    hub = app(
        "async go() { const b = await wx.getDeviceBenchmarkInfo(); const u = await wx.getRendererUserAgent();"
        " console.log(b.benchmarkLevel, b.modelLevel, u.userAgent);"
        " wx.preloadAssets({ data: [{ type: 'image', src: '/img/a.png' }],"
        " success: (r) => console.log(r.errMsg) });"
        " wx.preloadAssets({ data: [{ type: 'video', src: 'x' }], fail: (r) => console.log(r.errMsg) });"
        " console.log(wx.preloadWebview({ success: (r) => console.log(r.errMsg) })); },",
        system={"benchmarkLevel": 12, "modelLevel": 3, "rendererUserAgent": "Mozilla/5.0 WebKitGTK test"},
    )
    hub.event("go")
    assert hub.logs() == [
        "12 3 Mozilla/5.0 WebKitGTK test",
        "undefined",
        "preloadAssets:ok",
        'preloadAssets:fail parameter error: data[0] should be {type: "image" | "font", src: String};',
        "preloadWebview:ok",
    ]
    assert hub.calls() == []


def test_set_enable_debug_switches_console_debug() -> None:
    hub = app(
        "async go(e) { console.debug('before'); await wx.setEnableDebug({ enableDebug: e.on });"
        " console.debug('after'); console.log(wx.getAppBaseInfo().enableDebug); },"
    )
    hub.event("go", {"on": False})
    hub.event("go", {"on": True})
    assert hub.logs() == ["before", "false", "after", "true"]


def test_create_animation_exports_wechat_steps() -> None:
    hub = app(
        "go() { const a = wx.createAnimation({ duration: 300, timingFunction: 'ease' });"
        " a.scale(2).rotate(45).opacity(0.5).step();"
        " a.translate(10, 20).width(100).backgroundColor('#f00')"
        ".step({ duration: 100, transformOrigin: '0 0' });"
        " this.setData({ anim: a.export() }); console.log(JSON.stringify(a.export()));"
        " try { a.rotate('x'); } catch (e) { console.log(e.message); }"
        " try { wx.createAnimation({ timingFunction: 'bounce' }); }"
        " catch (e) { console.log(e.message.slice(0, 46)); } },"
    )
    hub.event("go")
    (diff,) = hub.diffs()
    first, second = diff["anim"]["actions"]
    assert first == {
        "animates": [
            {"type": "scale", "args": [2, 2]},
            {"type": "rotate", "args": [45]},
            {"type": "style", "args": ["opacity", 0.5]},
        ],
        "option": {
            "transformOrigin": "50% 50% 0",
            "transition": {"duration": 300, "timingFunction": "ease", "delay": 0},
        },
    }
    # transforms carry over into later steps, as in WeChat; the step's own options win
    assert second["animates"][3:] == [
        {"type": "translate", "args": [10, 20]},
        {"type": "style", "args": ["width", "100px"]},
        {"type": "style", "args": ["background-color", "#f00"]},
    ]
    assert second["option"] == {
        "transformOrigin": "0 0",
        "transition": {"duration": 100, "timingFunction": "ease", "delay": 0},
    }
    assert hub.logs() == [
        json.dumps({"actions": []}, separators=(",", ":")),
        "Animation.rotate expects numbers, got String",
        "createAnimation: timingFunction must be one of",
    ]
