"""WXML templates compiled into the renderer's tree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vehicle_host.bundles.expr import evaluate_parts
from vehicle_host.bundles.wxml import MAX_DEPTH, MAX_NODES, MAX_SOURCE_BYTES, compile_wxml
from vehicle_host.errors import TemplateError


def compile_(source: str) -> dict[str, Any]:
    return compile_wxml(source, filename="pages/index/index.wxml")


def first(source: str) -> dict[str, Any]:
    node: dict[str, Any] = compile_(source)["children"][0]
    return node


def error(source: str) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        compile_(source)
    assert info.value.filename == "pages/index/index.wxml"
    assert "internal" not in str(info.value)
    return info.value


# --------------------------------------------------------------------------- tree shape


def test_element_text_and_attributes() -> None:
    tree = compile_('<view class="row {{cls}}" id="main">Speed: {{speed}} km/h</view>')
    assert tree == {
        "k": "root",
        "children": [
            {
                "k": "el",
                "tag": "view",
                "attrs": {"class": ["row ", {"e": {"op": "id", "n": "cls"}}], "id": ["main"]},
                "events": {},
                "children": [
                    {"k": "text", "v": ["Speed: ", {"e": {"op": "id", "n": "speed"}}, " km/h"]},
                ],
                "line": 1,
            }
        ],
    }
    assert json.loads(json.dumps(tree)) == tree


def test_whitespace_text_dropped_and_lines_recorded() -> None:
    tree = compile_("<view>\n  <text>a</text>\n\n  <text>b</text>\n</view>\n")
    view = tree["children"][0]
    assert [child["line"] for child in view["children"]] == [2, 4]
    assert all(child["k"] == "el" for child in view["children"])


def test_self_closing_and_valueless_attributes() -> None:
    tree = compile_('<view><image src="a.png"/><input disabled /><icon type="info"></icon></view>')
    image, input_, icon = tree["children"][0]["children"]
    assert image["tag"] == "image" and image["children"] == []
    assert input_["attrs"]["disabled"] == [{"e": {"op": "lit", "v": True}}]
    assert icon["attrs"]["type"] == ["info"]


def test_entities_decoded_in_literals_only() -> None:
    node = first("<text>a &amp; b &lt; {{ x }}</text>")
    assert node["children"][0]["v"] == ["a & b < ", {"e": {"op": "id", "n": "x"}}]
    node = first('<view title="&quot;q&quot;"/>')
    assert node["attrs"]["title"] == ['"q"']


def test_mustache_with_angle_brackets_is_text() -> None:
    node = first("<text>{{a<b ? 'lt' : 'ge'}}</text>")
    assert node["children"][0]["v"][0]["e"]["op"] == "cond"
    node = first('<view wx:if="{{a > 1 && b < 2}}">x</view>')
    assert node["if"]["o"] == "&&"
    node = first("<text>1 < 2</text>")
    assert node["children"][0]["v"] == ["1 < 2"]


def test_comments_are_skipped() -> None:
    tree = compile_("<!-- a <view> in a comment --><view/><!---->")
    assert len(tree["children"]) == 1


def test_events() -> None:
    node = first('<view bindtap="onTap" catch:longpress="onLong" bind:input="onInput" catchtouchstart="t"/>')
    assert node["events"] == {
        "tap": {"handler": "onTap", "catch": False},
        "longpress": {"handler": "onLong", "catch": True},
        "input": {"handler": "onInput", "catch": False},
        "touchstart": {"handler": "t", "catch": True},
    }
    assert node["attrs"] == {}


def test_control_attributes() -> None:
    tree = compile_(
        "<view wx:if=\"{{a}}\">1</view>\n<view wx:elif='{{b}}'>2</view>\n<view wx:else>3</view>\n"
        '<view wx:for="{{list}}" wx:key="id">{{index}}: {{item.name}}</view>\n'
        '<block wx:for="{{rows}}" wx:for-item="row" wx:for-index="i" wx:key="*this">'
        "<text>{{row}}</text></block>"
    )
    a, b, c, loop, block = tree["children"]
    assert a["if"] == {"op": "id", "n": "a"}
    assert b["elif"] == {"op": "id", "n": "b"}
    assert c["else"] is True
    assert loop["for"] == {"op": "id", "n": "list"}
    assert (loop["forItem"], loop["forIndex"], loop["key"]) == ("item", "index", "id")
    assert block["tag"] == "block"
    assert (block["forItem"], block["forIndex"], block["key"]) == ("row", "i", "*this")


def test_for_with_if_on_same_tag() -> None:
    node = first('<view wx:for="{{xs}}" wx:if="{{item.on}}">{{item.n}}</view>')
    assert node["for"]["n"] == "xs" and node["if"]["op"] == "mem"


def test_chain_survives_comments_and_whitespace() -> None:
    tree = compile_('<view wx:if="{{a}}"/>\n  <!-- c -->\n  <view wx:else/>')
    assert tree["children"][1]["else"] is True


def test_attribute_values_evaluate() -> None:
    node = first('<view data-id="{{item.id}}" data-label="n{{n}}"/>')
    assert evaluate_parts(node["attrs"]["data-id"], {"item": {"id": 7}}) == 7
    assert evaluate_parts(node["attrs"]["data-label"], {"n": 2}) == "n2"


def test_unquoted_attribute_value() -> None:
    node = first("<view class=row/>")
    assert node["attrs"]["class"] == ["row"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("source", "fragment", "line"),
    [
        ("<view>\n<text>x</view>", "does not match <text>", 2),
        ("<view>\n  <text>x</text>", "<view> is never closed", 1),
        ("<view/>\n</view>", "no matching start tag", 2),
        ("<View/>", "invalid tag name", 1),
        ("<view ONCLICK='x'/>", "is not allowed", 1),
        ("<view onerror='x'/>", "is not allowed", 1),
        ("<view\n  class='x'", "not finished", 1),
        ("<view class='x/>", "unterminated quoted value", 1),
        ("<view class='a' class='b'/>", "given twice", 1),
        ("\n<view onclick='x()'/>", "'onclick' is not allowed", 2),
        ("<view onTap='x'/>", "is not allowed", 1),
        ("<view bindtap='{{h}}'/>", "method name, not an expression", 1),
        ("<view bindtap='a.b'/>", "must be a method name", 1),
        ("<view bindtap=''/>", "must be a method name", 1),
        ("<view bindtap='a' catchtap='b'/>", "bound twice", 1),
        ("<view capture-bind:tap='a'/>", "not supported", 1),
        ("<view wx:if='a'/>", "single {{ }} expression", 1),
        ("<view wx:if='{{a}} {{b}}'/>", "single {{ }} expression", 1),
        ("<view wx:if/>", "single {{ }} expression", 1),
        ("<view wx:for='x{{a}}'/>", "single {{ }} expression", 1),
        ("<view wx:foo='1'/>", "unknown attribute", 1),
        ("<view wx:for='{{a}}' wx:for-item='{{x}}'/>", "plain variable name", 1),
        ("<view wx:key='id'/>", "need wx:for", 1),
        ("<view wx:for='{{a}}' wx:key=''/>", "wx:key", 1),
        ("<view/>\n<view wx:else/>", "wx:else must directly follow", 2),
        ("<view wx:if='{{a}}'/>text<view wx:elif='{{b}}'/>", "wx:elif must directly follow", 1),
        ("<view wx:for='{{a}}' wx:if='{{b}}'/><view wx:else/>", "wx:else must directly follow", 1),
        ("<view wx:if='{{a}}'/><view wx:else/><view wx:else/>", "wx:else must directly follow", 1),
        ("<view wx:if='{{a}}' wx:else/>", "cannot be combined", 1),
        ("<view wx:if='{{a}}'/><view wx:else='x'/>", "takes no value", 1),
        ("<view>\n\n<text>{{ a + }}</text></view>", "unexpected end", 3),
        ("<text>{{ a </text>", "unterminated {{", 1),
        ("<view>\n<template/></view>", "<template> needs name", 2),
        ("<template name='a' is='b'/>", "either name", 1),
        ("<template name='x'/><template name='x'/>", "defined twice", 1),
        ("<template name='{{x}}'/>", "plain value", 1),
        ("<template name='a'><template name='b'/></template>", "inside another template", 1),
        ("<template is='a' bindtap='x'/>", "not allowed on <template is>", 1),
        ("<template is='a' data='x'/>", "must be one {{ }}", 1),
        ("<template is='a' data='{{a:}}'/>", "unexpected", 1),
        ("<template is='a'>x</template>", "must be empty", 1),
        ("<import/>", "needs a src", 1),
        ("<import src='{{a}}'/>", "plain value", 1),
        ("<include src='a.wxml' wx:if='{{a}}'/>", "not allowed on <include>", 1),
        ("<slot/>", "only be used in a component", 1),
        ("<wxs module='m'>var a</wxs>", "<wxs> is not supported by this host", 1),
        ("<script>alert(1)</script>", "<script> is not allowed", 1),
        ("<style>a{}</style>", "<style> is not allowed", 1),
        ("<view>\n <iframe src='x'/></view>", "<iframe> is not allowed", 2),
        ("<div>x</div>", "unknown element <div>", 1),
        ("<img src='x.png'>", "unknown element <img>", 1),
        ("<video/>", "not supported by this host yet", 1),
        ("<navigator url='javascript:alert(1)'/>", "javascript: URLs are not allowed", 1),
        ("<navigator url=' JaVa\tScript:alert(1)'/>", "javascript: URLs are not allowed", 1),
        ("<navigator url='vbscript:x'/>", "vbscript: URLs are not allowed", 1),
        ("<navigator url='https://evil.example/'/>", "https: URLs are not allowed here", 1),
        ("<navigator url='data:text/html,x'/>", "data: URLs are not allowed here", 1),
        ("<image src='data:text/html;base64,PHNjcmlwdD4='/>", "data:image/", 1),
        ("<image src='http://x/a.png'/>", "network images", 1),
        ("<image src='javascript:{{a}}'/>", "javascript: URLs", 1),
        ("<view style='background: url(http://x/a.png)'/>", "may not use url()", 1),
        ("<view style='width: expression(alert(1))'/>", "expression()", 1),
        ("<input model:value='{{a}}'/>", "not supported by this host", 1),
        ("<view wx:for='{{a}}' wx:key='a.b'/>", "wx:key must name", 1),
        ("<!DOCTYPE html><view/>", "not allowed", 1),
        ("<!-- open", "unterminated comment", 1),
        ("<view></ view>", "malformed end tag", 1),
        ("<view =x/>", "unexpected '='", 1),
    ],
)
def test_errors(source: str, fragment: str, line: int) -> None:
    err = error(source)
    assert fragment in str(err)
    assert err.line == line
    assert err.column >= 1


def test_error_column() -> None:
    err = error("<view>\n  <view bindtap='{{x}}'/></view>")
    assert (err.line, err.column) == (2, 18)  # the start of the attribute value
    err = error("<view>\n  <text>ab {{ 1 + }}</text></view>")
    assert err.line == 2 and err.column > 10


def test_limits() -> None:
    deep = "<view>" * MAX_DEPTH + "</view>" * MAX_DEPTH
    compile_(deep)
    assert "limit of 64" in str(error("<view>" * (MAX_DEPTH + 1) + "</view>" * (MAX_DEPTH + 1)))
    assert "20000 nodes" in str(error("<view/>" * (MAX_NODES + 1)))
    assert "512 KiB" in str(error("<view/>" + " " * MAX_SOURCE_BYTES))
    assert "512 KiB" in str(error("<text>" + "é" * (MAX_SOURCE_BYTES // 2) + "</text>"))


# --------------------------------------------------------------------------- hypothesis

_PIECES = st.sampled_from(
    [
        "<view", "<text", "</view>", "</text>", ">", "/>", " ", "\n", "a", "=", "'", '"', "{{", "}}", "x",
        " wx:if=", " wx:elif=", " wx:else", " wx:for=", " bindtap=", " catch:tap=", " class=", "<!--",
        "-->", "&amp;", "<", "<block", "</block>", "<template", "<", "!", "?", "onx=", " data-a-b=",
    ]
)  # fmt: skip


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=300), st.lists(_PIECES, max_size=80).map("".join)))
def test_compile_only_raises_template_error(source: str) -> None:
    try:
        tree = compile_wxml(source, filename="x.wxml")
    except TemplateError as exc:
        assert "internal" not in str(exc)
        assert exc.filename == "x.wxml"
        return
    assert tree["k"] == "root"
    json.dumps(tree)


@given(st.lists(st.sampled_from(["view", "text", "button"]), min_size=1, max_size=20))
def test_well_formed_nesting_compiles(tags: list[str]) -> None:
    source = "".join(f"<{t} data-n='{i}'>" for i, t in enumerate(tags)) + "".join(
        f"</{t}>" for t in reversed(tags)
    )
    node = compile_wxml(source, filename="x.wxml")["children"][0]
    for i, tag in enumerate(tags):
        assert node["tag"] == tag and node["attrs"]["data-n"] == [str(i)]
        node = node["children"][0] if node["children"] else node


# --------------------------------------------------------------------------- templates, components, slots

from vehicle_host.bundles.wxml import parse_wxml  # noqa: E402


def test_template_definitions_imports_and_uses() -> None:
    parsed = parse_wxml(
        "<import src='a.wxml'/>\n<template name='row'><text>{{x}}</text></template>\n"
        "<template is='row' data='{{x: 1, ...rest}}' wx:if='{{ok}}'/><include src='/b.wxml'/>",
        filename="p.wxml",
    )
    assert parsed.imports == [("a.wxml", 1, 1)]
    assert parsed.templates["row"]["children"][0]["tag"] == "text"
    use, include = parsed.tree["children"]
    assert use == {
        "k": "tpl", "is": ["row"], "line": 3, "children": [], "if": {"op": "id", "n": "ok"},
        "data": {"op": "obj", "v": [["x", {"op": "lit", "v": 1}],
                                    {"op": "spread", "a": {"op": "id", "n": "rest"}}]},
    }  # fmt: skip
    assert include == {"k": "include", "src": "/b.wxml", "line": 3, "col": 61, "children": []}


def test_custom_components_slots_and_aliases() -> None:
    tree = compile_wxml(
        "<my-card title='{{t}}' bind:close='onClose'><text slot='foot'>x</text></my-card><cover-view/>",
        filename="p.wxml",
        components={"my-card": "components/card/card"},
    )
    card, cover = tree["children"]
    assert (card["k"], card["c"], card["tag"], card["attrs"]["title"]) == (
        "comp", "components/card/card", "my-card", [{"e": {"op": "id", "n": "t"}}]
    )  # fmt: skip
    assert card["children"][0]["attrs"]["slot"] == ["foot"]
    assert cover["tag"] == "view"
    slots = compile_wxml("<slot/><slot name='foot'/>", filename="c.wxml", in_component=True)["children"]
    assert [(s["k"], s["name"]) for s in slots] == [("slot", ""), ("slot", "foot")]


def test_plain_string_wx_for_iterates_characters() -> None:
    node = first("<view wx:for='ab'>{{item}}</view>")
    assert node["for"] == {"op": "arr", "v": [{"op": "lit", "v": "a"}, {"op": "lit", "v": "b"}]}


def test_safe_urls_pass() -> None:
    node = first("<navigator url='/pages/a/a?x=1' open-type='redirect'/>")
    assert node["attrs"]["url"] == ["/pages/a/a?x=1"]
    node = first("<image src='data:image/png;base64,AAAA'/>")
    assert node["attrs"]["src"] == ["data:image/png;base64,AAAA"]
    node = first("<view style='background: url(data:image/png;base64,AA)' title='data: 5'/>")
    assert node["attrs"]["title"] == ["data: 5"]
