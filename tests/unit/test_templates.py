"""Pages compiled from real bundle folders: includes, imports, templates, components, images, sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.bundles import catalog
from vehicle_host.bundles.components import scope_of
from vehicle_host.bundles.expr import evaluate
from vehicle_host.errors import BundleError, TemplateError
from vehicle_host.wire import Envelope, encode

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def bundle(root: Path, files: dict[str, str | bytes], *, pages: list[str] | None = None, **app: Any) -> Any:
    doc = {
        "pages": pages or ["pages/index/index"],
        "vehicle": {"id": "org.test.app", "name": "Test", "version": "1.0.0"},
        **app,
    }
    files = {"app.json": json.dumps(doc), "app.js": "App({})", **files}
    for route in doc["pages"]:
        files.setdefault(f"{route}.js", "Page({})")
    for name, content in files.items():
        path = root / "app" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    apps, broken = catalog.scan(root)
    assert not broken, broken
    return apps[0]


def page(tmp_path: Path, files: dict[str, str | bytes], **app: Any) -> catalog.CompiledPage:
    return catalog.compile_page(bundle(tmp_path, files, **app), "pages/index/index")


def error(tmp_path: Path, files: dict[str, str | bytes], **app: Any) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        page(tmp_path, files, **app)
    return info.value


def texts(tree: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    stack = [tree]
    while stack:
        node = stack.pop(0)
        if node.get("k") == "text":
            out.extend(p for p in node["v"] if isinstance(p, str))
        stack[0:0] = node.get("children", [])
    return out


def test_include_inlines_everything_but_templates(tmp_path: Path) -> None:
    compiled = page(
        tmp_path,
        {
            "pages/index/index.wxml": "<view>a</view>\n<include src='../../common/header'/>\n<view>z</view>",
            "common/header.wxml": "<template name='t'><text>hidden</text></template><text>head</text>"
            "<include src='/common/inner.wxml'/>",
            "common/inner.wxml": "<text>inner</text>",
        },
    )
    assert texts(compiled.tree) == ["a", "head", "inner", "z"]
    assert compiled.templates == {}


def test_import_is_not_transitive_and_local_templates_win(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "pages/index/index.wxml": "<import src='a.wxml'/><template is='fromA' data='{{x}}'/>"
        "<template is='same'/><template name='same'><text>local</text></template>",
        "pages/index/a.wxml": "<import src='b.wxml'/><template name='fromA'><text>A {{x}}</text></template>"
        "<template name='same'><text>imported</text></template>",
        "pages/index/b.wxml": "<template name='fromB'><text>B</text></template>",
    }
    compiled = page(tmp_path, files)
    first, second = compiled.tree["children"]
    assert first["ref"] == "pages/index/a.wxml#fromA"
    assert evaluate(first["data"], {"x": 3}) == {"x": 3}
    assert second["ref"] == "pages/index/index.wxml#same"
    assert set(compiled.templates) == {"pages/index/a.wxml#fromA", "pages/index/index.wxml#same"}
    files["pages/index/index.wxml"] = "<import src='a.wxml'/>\n<template is='fromB'/>"
    err = error(tmp_path / "2", files)
    assert "'fromB' is not defined or imported" in str(err)
    assert (err.filename, err.line) == ("pages/index/index.wxml", 2)


def test_dynamic_template_names_ship_every_visible_template(tmp_path: Path) -> None:
    compiled = page(
        tmp_path,
        {
            "pages/index/index.wxml": "<template name='odd'><text>o</text></template>"
            "<template name='even'><text>e</text></template>"
            "<block wx:for='{{[1,2]}}'>"
            "<template is='{{item % 2 ? \"odd\" : \"even\"}}' data='{{...item}}'/></block>"
        },
    )
    tpl = compiled.tree["children"][0]["children"][0]
    assert tpl["refs"] == {"odd": "pages/index/index.wxml#odd", "even": "pages/index/index.wxml#even"}
    assert "ref" not in tpl and len(compiled.templates) == 2


@pytest.mark.parametrize(
    ("wxml", "extra", "fragment", "where"),
    [
        ("<include src='../../../../etc/passwd'/>", {}, "outside the bundle", ("pages/index/index.wxml", 1)),
        (
            "\n<import src='/nope.wxml'/><template is='x'/>",
            {},
            "not in the bundle",
            ("pages/index/index.wxml", 2),
        ),
        (
            "<include src='a.wxml'/>",
            {"pages/index/a.wxml": "<include src='b'/>", "pages/index/b.wxml": "<include src='a'/>"},
            "cycle",
            ("pages/index/b.wxml", 1),
        ),
        (
            "<include src='a.wxml'/>",
            {"pages/index/a.wxml": "<view>\n  <text>{{ 1 + }}</text></view>"},
            "unexpected",
            ("pages/index/a.wxml", 2),
        ),
        ("<image src='missing.png'/>", {}, "missing from the bundle", ("pages/index/index.wxml", 1)),
        (
            "<image src='a.txt'/>",
            {"pages/index/a.txt": "x"},
            "not an image type",
            ("pages/index/index.wxml", 1),
        ),
        ("<include src='http://x/a.wxml'/>", {}, "not a path inside", ("pages/index/index.wxml", 1)),
    ],
)
def test_linking_errors_name_file_and_line(
    tmp_path: Path, wxml: str, extra: dict[str, str], fragment: str, where: tuple[str, int]
) -> None:
    err = error(tmp_path, {"pages/index/index.wxml": wxml, **extra})
    assert fragment in str(err)
    assert (err.filename, err.line) == where


def test_bundle_images_are_inlined_as_data_urls(tmp_path: Path) -> None:
    compiled = page(
        tmp_path,
        {"pages/index/index.wxml": "<image src='/img/a.png'/><image src='{{dynamic}}'/>", "img/a.png": PNG},
    )
    first, second = compiled.tree["children"]
    assert first["attrs"]["src"][0].startswith("data:image/png;base64,iVBORw0KGgo")
    assert second["attrs"]["src"] == [{"e": {"op": "id", "n": "dynamic"}}]


def test_components_compile_with_slots_and_scoped_styles(tmp_path: Path) -> None:
    compiled = page(
        tmp_path,
        {
            "pages/index/index.json": json.dumps(
                {"usingComponents": {"my-card": "../../components/card/card"}}
            ),
            "pages/index/index.wxml": "<my-card title='{{t}}' bind:close='onClose'><text slot='foot'>f</text>"
            "</my-card>",
            "components/card/card.json": json.dumps(
                {"component": True, "usingComponents": {"x-badge": "../badge/badge"}}
            ),
            "components/card/card.wxml": "<view class='card'><x-badge/><slot/><slot name='foot'/></view>",
            "components/card/card.wxss": ".card { width: 10rpx }",
            "components/card/card.js": "Component({})",
            "components/badge/badge.json": json.dumps({"component": True}),
            "components/badge/badge.wxml": "<text>badge</text>",
            "components/badge/badge.js": "Component({})",
        },
    )
    node = compiled.tree["children"][0]
    assert (node["k"], node["c"], node["tag"]) == ("comp", "components/card/card", "my-card")
    assert node["events"] == {"close": {"handler": "onClose", "catch": False}}
    assert set(compiled.components) == {"components/card/card", "components/badge/badge"}
    card = compiled.components["components/card/card"]
    scope = scope_of("components/card/card")
    assert card["scope"] == scope and card["css"] == f".{scope}--card {{ width: calc(10 * var(--rpx)) }}"
    slots = [n for n in card["tree"]["children"][0]["children"] if n["k"] == "slot"]
    assert [s["name"] for s in slots] == ["", "foot"]
    assert card["tree"]["children"][0]["children"][0]["k"] == "comp"


def test_component_and_using_errors(tmp_path: Path) -> None:
    base: dict[str, str | bytes] = {
        "pages/index/index.json": json.dumps({"usingComponents": {"c-x": "/comp/x"}}),
        "pages/index/index.wxml": "<c-x/>",
        "comp/x.json": "{}",
        "comp/x.wxml": "<view/>",
    }
    with pytest.raises(BundleError, match='needs "component": true'):
        page(tmp_path / "a", base)
    with pytest.raises(BundleError, match="not in the bundle"):
        page(
            tmp_path / "b",
            {**base, "pages/index/index.json": json.dumps({"usingComponents": {"c-x": "/no"}})},
        )
    with pytest.raises(BundleError, match="not a built-in"):
        page(
            tmp_path / "c",
            {**base, "pages/index/index.json": json.dumps({"usingComponents": {"view": "/comp/x"}})},
        )
    err = error(tmp_path / "d", {**base, "comp/x.json": '{"component": true}', "comp/x.wxss": "\n\nview {}"})
    assert (err.filename, err.line) == ("comp/x.wxss", 3)


def test_global_components_window_and_tab_bar(tmp_path: Path) -> None:
    app = bundle(
        tmp_path,
        {
            "pages/index/index.wxml": "<g-comp/>",
            "pages/index/index.json": json.dumps({"navigationBarTitleText": "Page title", "bogus": {"x": 1}}),
            "pages/other/other.wxml": "<view/>",
            "g/c.json": json.dumps({"component": True}),
            "g/c.wxml": "<text>global</text>",
            "g/c.js": "Component({})",
            "icons/home.png": PNG,
            "utils/util.js": "module.exports = 1",
        },
        pages=["pages/index/index", "pages/other/other"],
        usingComponents={"g-comp": "/g/c"},
        window={"navigationBarTitleText": "App", "backgroundColor": "#000", "enablePullDownRefresh": True},
        tabBar={
            "color": "#999",
            "list": [
                {"pagePath": "pages/index/index", "text": "Home", "iconPath": "icons/home.png"},
                {"pagePath": "pages/other/other", "text": "Other"},
            ],
        },
    )
    compiled = catalog.compile_page(app, "pages/index/index")
    assert compiled.title == "Page title"
    assert compiled.window == {
        "navigationBarTitleText": "Page title",
        "backgroundColor": "#000",
        "enablePullDownRefresh": True,
    }
    assert compiled.tab_bar["list"][0]["iconPath"].startswith("data:image/png;base64,")
    assert compiled.tab_bar["color"] == "#999"
    assert "g/c" in compiled.components
    payload = {"app_id": "org.test.app", "page_id": 1, **compiled.open_payload()}
    encode(Envelope("page.open", 1, "hub", "shell", payload))  # fits the wire schema
    assert catalog.bundle_sources(app) == {
        "app.js": "App({})",
        "g/c.js": "Component({})",
        "pages/index/index.js": "Page({})",
        "pages/other/other.js": "Page({})",
        "utils/util.js": "module.exports = 1",
    }
    config = catalog.page_config(app)
    assert config["pages"] == ["pages/index/index", "pages/other/other"]
    assert config["usingComponents"]["pages/other/other"] == {"g-comp": "g/c"}
    assert config["components"] == {"g/c": {"usingComponents": {"g-comp": "g/c"}}}
    assert config["tabBar"]["list"][1]["text"] == "Other"
    assert config["window"]["backgroundColor"] == "#000"


def test_bundle_sources_limits(tmp_path: Path) -> None:
    app = bundle(
        tmp_path / "a",
        {"pages/index/index.wxml": "<view/>", "a.js": "x" * (400 * 1024), "b.js": "y" * (400 * 1024)},
    )
    with pytest.raises(BundleError, match="exceeds 768 KB"):
        catalog.bundle_sources(app)
    app = bundle(tmp_path / "b", {"pages/index/index.wxml": "<view/>"})
    (app.path / "pages/index/index.js").unlink()
    with pytest.raises(BundleError, match=r"pages/index/index\.js: missing"):
        catalog.bundle_sources(app)


def test_page_node_limit_counts_includes(tmp_path: Path) -> None:
    body = "<view/>" * 15_000
    files: dict[str, str | bytes] = {
        "pages/index/index.wxml": "<include src='a'/>" * 4,
        "pages/index/a.wxml": body,
    }
    err = error(tmp_path, files)
    assert "more than 50000 template nodes" in str(err)
