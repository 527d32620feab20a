"""The page renderer in the real WebKit window: patching, events, components, widgets, injections."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.renderer_harness import RendererFrame, shell_window
from vehicle_host.bundles.wxml import compile_wxml

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def frame() -> Iterator[RendererFrame]:
    with shell_window() as driver:
        rt = RendererFrame(driver)
        rt.load()
        yield rt


def uids(rt: RendererFrame) -> dict[str, int]:
    return {n["id"]: n["uid"] for n in rt.inspect()["nodes"] if n["id"]}


def handlers(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["handler"], m.get("component", "")) for m in messages if m.get("type") == "event"]


def test_keyed_lists_reuse_elements_and_patches_touch_only_what_changed(frame: RendererFrame) -> None:
    frame.render(
        "<text id='title'>{{title}}</text>"
        "<view wx:for='{{rows}}' wx:key='id' id='k{{item.id}}'>{{item.name}}</view>"
        "<view wx:for='{{plain}}' id='p{{index}}'>{{item}}</view>",
        {"title": "T", "rows": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}],
         "plain": ["x", "y"]},
    )  # fmt: skip
    before = uids(frame)
    frame.patch(
        {"rows": [{"id": 3, "name": "c"}, {"id": 1, "name": "A"}, {"id": 4, "name": "d"}], "title": "U"}
    )
    after = uids(frame)
    assert after["k3"] == before["k3"] and after["k1"] == before["k1"]  # moved, not recreated
    assert "k2" not in after and after["k4"] > max(before.values())  # removed / inserted
    assert after["title"] == before["title"]
    assert frame.inspect()["text"].split("\n")[:4] == ["U", "c", "A", "d"]
    frame.patch({"plain[1]": "z", "plain[2]": "w"})  # without wx:key: index-based
    after2 = uids(frame)
    assert after2["p0"] == after["p0"] and after2["p1"] == after["p1"] and "p2" in after2
    assert frame.inspect()["text"].endswith("x\nz\nw")


def test_tap_bubbles_with_targets_and_catch_stops(frame: RendererFrame) -> None:
    frame.render(
        "<view id='outer' bindtap='onOuter' data-level='outer'>"
        "<view id='middle' catchtap='onMiddle' data-level='mid'><view id='inner' bindtap='onInner'"
        " data-item-id='{{7}}'>in</view></view>"
        "<view id='free' data-x-y='1'>free</view></view>",
        {},
    )
    frame.take()
    frame.click("inner")
    events = [m for m in frame.events() if m.get("type") == "event"]
    assert [e["handler"] for e in events] == ["onInner", "onMiddle"]  # catchtap stopped it
    inner, middle = events
    assert inner["event"]["target"] == {"id": "inner", "dataset": {"itemId": 7}}
    assert middle["event"]["currentTarget"] == {"id": "middle", "dataset": {"level": "mid"}}
    assert middle["event"]["target"]["id"] == "inner"
    assert set(inner["event"]["detail"]) == {"x", "y"}
    frame.click("free")
    (outer,) = [m for m in frame.events() if m.get("type") == "event"]
    assert outer["handler"] == "onOuter"
    assert outer["event"]["target"] == {"id": "free", "dataset": {"xY": "1"}}


COMPONENTS = {
    "c/card": {
        "tree": compile_wxml(
            "<view class='box' id='cbox' bindtap='onInner'><text id='ctitle'>{{title}} {{count}}</text>"
            "<slot/><slot name='foot'/></view>",
            filename="c/card.wxml",
            in_component=True,
        ),
        "css": ".cs--box { padding: 2px }",
        "scope": "cs",
    }
}


def test_components_attach_props_slots_set_data_and_detach(frame: RendererFrame) -> None:
    messages = frame.render(
        "<my-card wx:if='{{show}}' id='card' title='{{t}}' bind:close='onClose' bindtap='onCardTap'>"
        "<text id='slotted' slot='foot' bindtap='onSlot'>{{t}}!</text></my-card>",
        {"show": True, "t": "Hi"},
        using={"my-card": "c/card"},
        components=COMPONENTS,
    )
    (attach,) = [m for m in messages if m.get("handler") == "$attach"]
    cid = attach["component"]
    events = {"close": "onClose", "tap": "onCardTap"}
    assert attach["event"] == {"path": "c/card", "props": {"title": "Hi"}, "parent": "", "events": events}
    assert frame.node("ctitle")["text"] == "Hi"
    assert "cs--box" in frame.node("cbox")["cls"] and "cs-host" in frame.node("card")["cls"]
    assert frame.node("slotted")["owner"] == ""  # slot content belongs to the page
    messages = frame.patch({"count": 5}, component=cid)
    assert frame.node("ctitle")["text"] == "Hi 5" and not handlers(messages)
    messages = frame.patch({"t": "Yo"})
    assert [(m["handler"], m["event"]["changed"]) for m in messages] == [("$props", ["title"])]
    assert frame.node("ctitle")["text"] == "Yo 5" and frame.node("slotted")["text"] == "Yo!"
    frame.take()
    frame.click("ctitle")
    assert handlers(frame.events()) == [("onInner", cid), ("onCardTap", "")]
    frame.click("slotted")
    assert handlers(frame.events()) == [("onSlot", ""), ("onInner", cid), ("onCardTap", "")]
    messages = frame.patch({"show": False})
    assert handlers(messages) == [("$detach", cid)]


def test_form_controls_report_wechat_details(frame: RendererFrame) -> None:
    frame.render(
        "<form id='f' bindsubmit='onSubmit' bindreset='onReset'>"
        "<switch id='sw' name='sw' bindchange='onSwitch'/>"
        "<checkbox-group name='cg' bindchange='onGroup'><checkbox id='cb1' value='a'/>"
        "<checkbox id='cb2' value='b' checked/></checkbox-group>"
        "<radio-group name='rg' bindchange='onRadio'><radio id='r1' value='x'/>"
        "<radio id='r2' value='y'/></radio-group>"
        "<picker id='pk' name='pk' range='{{opts}}' value='{{1}}' bindchange='onPick'>"
        "<view>pick</view></picker>"
        "<navigator id='nav' url='/pages/b/b?x=1'>go</navigator>"
        "<navigator id='bad' url='{{evil}}'>bad</navigator>"
        "<button id='submit' form-type='submit'>Send</button>"
        "<button id='reset' form-type='reset'>Reset</button>"
        "</form>",
        {"opts": ["A", "B", "C"], "evil": "javascript:parent.postMessage('pwned','*')"},
    )
    frame.take()
    for node in ("sw", "cb1", "cb2", "r2"):
        frame.click(node)
    got = [(m["handler"], m["event"]["detail"]) for m in frame.events() if m.get("type") == "event"]
    assert got == [
        ("onSwitch", {"value": True}),
        ("onGroup", {"value": ["a", "b"]}),  # cb2 starts checked
        ("onGroup", {"value": ["a"]}),
        ("onRadio", {"value": "y"}),
    ]
    frame.click("submit")
    (submit,) = [m for m in frame.events() if m.get("handler") == "onSubmit"]
    assert submit["event"]["detail"]["value"] == {"sw": True, "cg": ["a"], "rg": "y", "pk": 1}
    frame.click("pk")
    frame.events(0.3)
    frame.driver.click(400, 479 - 200 + 8 + 16)  # the first row of the sheet's only column
    frame.driver.click(780, 479 - 200 - 20)  # OK, at the right of the bar
    picks = [m for m in frame.events() if m.get("handler") == "onPick"]
    assert picks and picks[-1]["event"]["detail"] == {"value": 0}
    frame.click("nav")
    frame.click("bad")
    navs = [m for m in frame.events() if m.get("type") == "navigate"]
    assert navs == [{"type": "navigate", "openType": "navigate", "url": "/pages/b/b?x=1"}]
    frame.click("reset")
    assert [m["handler"] for m in frame.events() if m.get("type") == "event"] == ["onReset"]


def test_injections_never_run(frame: RendererFrame) -> None:
    # a tree the compiler would refuse, sent as if from a compromised hub, plus hostile data
    hostile_tree = {
        "k": "root",
        "children": [
            {"k": "el", "tag": "script", "attrs": {}, "events": {}, "children": [
                {"k": "text", "v": ["parent.postMessage('pwned-script','*')"]}]},
            {"k": "el", "tag": "iframe", "attrs": {"srcdoc": ["<script>parent.postMessage('x','*')</script>"],
             "src": ["javascript:parent.postMessage('pwned-src','*')"]}, "events": {}, "children": []},
            {"k": "el", "tag": "image", "attrs": {"src": [{"e": {"op": "id", "n": "img"}}],
             "onerror": ["parent.postMessage('pwned-onerror','*')"]}, "events": {}, "children": []},
            {"k": "el", "tag": "view", "attrs": {"style": [{"e": {"op": "id", "n": "style"}}],
             "onclick": ["parent.postMessage('pwned-click','*')"], "id": ["v"]}, "events": {}, "children": [
                {"k": "text", "v": [{"e": {"op": "id", "n": "html"}}]}]},
            {"k": "el", "tag": "rich-text", "attrs": {"nodes": [{"e": {"op": "id", "n": "nodes"}}]},
             "events": {}, "children": []},
        ],
    }  # fmt: skip
    data = {
        "img": "javascript:parent.postMessage('pwned-img','*')",
        "style": "background:url(http://127.0.0.1:9/x.png)",
        "html": "<img src=x onerror=\"parent.postMessage('pwned-text','*')\">",
        "nodes": [
            {"name": "img", "attrs": {"src": "x", "onerror": "parent.postMessage('pwned-rich','*')"}},
            {"name": "script", "children": [{"type": "text", "text": "parent.postMessage('pwned-rs','*')"}]},
            {"name": "a", "attrs": {"href": "javascript:parent.postMessage('pwned-a','*')"},
             "children": [{"type": "text", "text": "link"}]},
        ],
    }  # fmt: skip
    frame.take()
    frame.render_tree(hostile_tree, data)
    frame.click("v")
    seen = frame.events(1.0)
    page = frame.inspect()
    assert "<img src=x onerror" in page["text"]  # shown as text
    tags = " ".join(re.findall(r"<[^>]*>", page["html"].lower()))  # markup only, not the text
    assert "&lt;img src=x onerror" in page["html"]
    for needle in ("<script", "<iframe", "onerror", "onclick", "javascript:", "srcdoc", "url(http", "href"):
        assert needle not in tags, needle
    assert not [m for m in seen if isinstance(m, str) or m.get("type") in ("csp",) or "pwned" in str(m)]
