"""The renderer's pure parts (renderer-core.js, renderer-build.js) run in a real JS engine (QuickJS)."""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

import pytest
import quickjs

from vehicle_host.bundles.expr import evaluate, parse_expression
from vehicle_host.bundles.wxml import compile_wxml

EXPORTS = (
    "evaluate, setPath, applyDiff, buildPage, buildComponent, R, camel, propName, scopeClasses, safeStyle, "
    "safeImageSrc, safePageUrl, display"
)
# a vnode tree as plain data (what the DOM part would draw), for comparisons
DUMP = """
function dump(list) {
  return list.map(function (v) {
    if (v.t === 'text') return {key: v.key, text: v.v};
    const out = {key: v.key, tag: v.tag, attrs: v.attrs, dataset: v.dataset, owner: v.owner, css: v.css};
    if (v.t === 'comp') { out.props = v.props; out.slots = Object.keys(v.slots); }
    else out.children = dump(v.children);
    return out;
  });
}
"""


@pytest.fixture(scope="module")
def js() -> quickjs.Context:
    ui = resources.files("vehicle_host.shell").joinpath("ui")
    source = "\n".join(
        ui.joinpath(n).read_text(encoding="utf-8") for n in ("renderer-core.js", "renderer-build.js")
    )
    ctx = quickjs.Context()
    ctx.eval(
        f"var api = (function () {{ 'use strict';\n{source}\n{DUMP}\nreturn {{ {EXPORTS}, dump }}; }})();"
    )
    return ctx


def call(js: quickjs.Context, expr: str) -> Any:
    return json.loads(js.eval(f"JSON.stringify({expr})"))


def render(
    js: quickjs.Context, wxml: str, data: dict[str, Any], templates: dict[str, Any] | None = None
) -> Any:
    tree = compile_wxml(wxml, filename="t.wxml")
    js.eval(f"api.R.tree = {json.dumps(tree)}; api.R.data = {json.dumps(data)};")
    js.eval(f"api.R.templates = {json.dumps(templates or {})};")
    return call(js, "api.dump(api.buildPage())")


def text_of(nodes: list[dict[str, Any]]) -> str:
    return "".join(n["text"] if "text" in n else text_of(n.get("children", [])) for n in nodes)


EXPRESSIONS = [
    "a + b", "a + s", "s + n", "n * 2 - 1", "n / 0", "-n / 0", "n % 3", "-7 % 3", "a > b", "s < 'b'",
    "a == '1'", "a === 1", "u == null", "u === undefined", "!s", "!!list", "list.length", "list[1]",
    "obj.x.y", "obj['x'].y", "missing.deep", "n > 2 ? 'big' : 'small'", "a && b", "u || 'dflt'",
    "[a, b, n]", "{x: a, y: {z: n}}", "'' + list", "list + 1", "obj + ''", "+s", "-'3'", "1 + true",
    "{...obj, a}", "{...list}", "(a + b) * n", "1e3 + 0.5", "0x10 * 2", "'\\u00e9'.length",
]  # fmt: skip
SCOPE = {"a": 1, "b": 2, "s": "a", "n": 5, "list": [1, 2, 3], "obj": {"x": {"y": "deep"}}}


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_js_and_python_evaluators_agree(js: quickjs.Context, text: str) -> None:
    ast = parse_expression(text)
    expected = evaluate(ast, dict(SCOPE))
    got = js.eval(
        f"(function(){{var v = api.evaluate({json.dumps(ast)}, {{vars: {json.dumps(SCOPE)}, parent: null}});"
        "return JSON.stringify(v === undefined ? '<undefined>' : (typeof v === 'number' && !isFinite(v))"
        " ? String(v) : v);})()"
    )
    value = json.loads(got)
    if isinstance(expected, float) and (math.isnan(expected) or math.isinf(expected)):
        assert value == ("NaN" if math.isnan(expected) else ("Infinity" if expected > 0 else "-Infinity"))
    elif expected is None:
        assert value in ("<undefined>", None)
    else:
        assert value == expected


def test_set_data_paths(js: quickjs.Context) -> None:
    got = call(
        js,
        "(function(){var d={list:[{name:'a'}]};"
        " api.applyDiff(d, {'list[0].name':'x', 'list[2].n':1, 'a.b.c':2, 'x[1]':3,"
        " '__proto__.p':1, 'a.constructor':1, 'bad..path':1, 'q[100001]':1}); return d;})()",
    )
    assert got == {"list": [{"name": "x"}, None, {"n": 1}], "a": {"b": {"c": 2}}, "x": [None, 3]}
    assert call(js, "({}).p === undefined && Object.prototype.p === undefined")


def test_wx_for_defaults_keys_and_conditions(js: quickjs.Context) -> None:
    nodes = render(
        js,
        "<view wx:for='{{list}}' wx:key='id' data-item-id='{{item.id}}' data-userName='u'>"
        "{{index}}:{{item.n}}</view>"
        "<text wx:for='{{[\"x\",\"y\"]}}' wx:key='*this'>{{item}}</text>"
        "<text wx:for='{{3}}'>{{item}}</text>"
        "<text wx:for='ab' wx:for-item='c' wx:for-index='i'>{{i}}{{c}}</text>"
        "<view wx:if='{{n > 9}}'>big</view><view wx:elif='{{n > 3}}'>mid</view><view wx:else>small</view>"
        "<block wx:for='{{list}}'><text>[{{item.n}}]</text><text>;</text></block>",
        {"list": [{"id": 7, "n": "a"}, {"id": 9, "n": "b"}], "n": 5},
    )
    assert [n["key"] for n in nodes[:4]] == ["0:k7", "0:k9", "1:kx", "1:ky"]
    assert nodes[0]["dataset"] == {"itemId": 7, "username": "u"}  # WeChat: data-userName -> username
    assert text_of(nodes) == "0:a1:bxy0120a1bmid[a];[b];"
    assert [n["key"] for n in nodes if n["tag"] == "view"][-1] == "5"  # the elif branch, at its position
    assert [n["key"] for n in nodes[-4:]] == ["7:i0/0", "7:i0/1", "7:i1/0", "7:i1/1"]


def test_duplicate_and_missing_keys_stay_unique(js: quickjs.Context) -> None:
    nodes = render(js, "<view wx:for='{{list}}' wx:key='id'/>", {"list": [{"id": 1}, {"id": 1}, {}]})
    assert [n["key"] for n in nodes] == ["0:k1", "0:k1#1", "0:i2"]


def test_templates_see_only_their_data(js: quickjs.Context) -> None:
    body = compile_wxml("<text>{{name}}/{{secret}}/{{i}}</text>", filename="t.wxml")
    tpl = compile_wxml("<template is='row' data='{{...item, i: 1}}'/>", filename="t.wxml")
    tpl["children"][0]["ref"] = "t.wxml#row"
    js.eval(f"api.R.tree = {json.dumps(tpl)}; api.R.data = {{item: {{name: 'n'}}, secret: 's'}};")
    js.eval(f"api.R.templates = {{'t.wxml#row': {json.dumps(body)}}};")
    assert text_of(call(js, "api.dump(api.buildPage())")) == "n//1"


def test_components_props_slots_and_scoped_classes(js: quickjs.Context) -> None:
    nodes = render(
        js,
        "",
        {},
    )
    assert nodes == []
    tree = compile_wxml(
        "<my-card class='outer' my-title='{{t}}' hidden='{{false}}'>"
        "<text slot='foot'>{{t}}</text><text>x</text>"
        "</my-card>",
        filename="t.wxml",
        components={"my-card": "c/card"},
    )
    comp = compile_wxml(
        "<view class='a {{k}}'><slot/><slot name='foot'/><slot/></view>", filename="c.wxml", in_component=True
    )
    js.eval(f"api.R.tree = {json.dumps(tree)}; api.R.data = {{t: 'T'}}; api.R.templates = {{}};")
    js.eval(f"api.R.components = {{'c/card': {{tree: {json.dumps(comp)}, css: '', scope: 'cs'}}}};")
    (host,) = call(js, "api.dump(api.buildPage())")
    assert host["props"] == {"myTitle": "T"} and sorted(host["slots"]) == ["", "foot"]
    inner = call(
        js,
        "(function(){var v = api.buildPage()[0]; return api.dump(api.buildComponent("
        "{id: 'c1', path: 'c/card', data: {k: 'b'}, vnode: v}));})()",
    )
    assert inner[0]["owner"] == "c1" and inner[0]["css"] == "cs"
    assert call(js, "api.scopeClasses(' a  b ', 'cs')") == "cs--a cs--b"
    kids = inner[0]["children"]
    assert [text_of([k]) for k in kids] == ["x", "T"]  # default slot once, then the named one
    assert kids[0]["owner"] == "" and kids[0]["css"] == ""  # slot content keeps the page's scope


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        ("safeImageSrc", "data:image/png;base64,AAA", "data:image/png;base64,AAA"),
        ("safeImageSrc", "javascript:alert(1)", ""),
        ("safeImageSrc", "data:text/html,<script>", ""),
        ("safeImageSrc", "http://x/a.png", ""),
        ("safeImageSrc", "/img/a.png", ""),
        ("safePageUrl", "/pages/a/a?x=1", "/pages/a/a?x=1"),
        ("safePageUrl", "../b/b", "../b/b"),
        ("safePageUrl", " java\tscript:alert(1)", ""),
        ("safePageUrl", "//evil.example/x", ""),
        ("safePageUrl", "https://x", ""),
        ("safeStyle", "color: red; width: 10px", "color: red; width: 10px"),
        ("safeStyle", "background: url(http://x/a.png)", ""),
        (
            "safeStyle",
            "background: url('data:image/png;base64,AA')",
            "background: url('data:image/png;base64,AA')",
        ),
        ("safeStyle", "width: expression(alert(1))", ""),
        ("safeStyle", "background: u\\72l(http://x)", ""),
        ("camel", "element-type", "elementType"),
        ("camel", "elementType", "elementtype"),
        ("propName", "my-title", "myTitle"),
    ],
)
def test_url_style_and_name_rules(js: quickjs.Context, fn: str, value: str, expected: str) -> None:
    assert call(js, f"api.{fn}({json.dumps(value)})") == expected


def test_an_expression_cannot_multiply_bound_data_into_memory(js: quickjs.Context) -> None:
    big = "x" * 200_000
    repeat = "[" + ", ".join(["a"] * 6) + "]"
    wxml = "<view>{{" + repeat + " + ''}}|{{a + a}}|" + "{{a}}" * 6 + "</view>"
    scope = {"a": big}
    for text, expected in ((f"{repeat} + ''", ""), ("a + a", big + big), ("[a, a] + ''", big + "," + big)):
        ast = parse_expression(text)
        assert evaluate(ast, dict(scope)) == expected  # over 1 MiB of text becomes ""
        length = js.eval(
            f"api.evaluate({json.dumps(ast)}, {{vars: {json.dumps(scope)}, parent: null}}).length"
        )
        assert length == len(expected)
    # text joined from many {{ }} parts is capped the same way, in the renderer and its Python twin
    assert text_of(render(js, wxml, scope)) == ""
    small = {"a": "ab"}
    assert text_of(render(js, wxml, small)) == "ab,ab,ab,ab,ab,ab|abab|" + "ab" * 6
    # and all the text of one page is bounded: 30 copies of 200 KB stop at 4 MiB, with the overflow flag
    page = render(js, "<view wx:for='{{list}}'>{{a}}</view>", {"a": big, "list": list(range(30))})
    assert 0 < len(text_of(page)) <= 4 * 2**20
    assert js.eval("api.R.overflow") is True
