"""WXSS compiled into CSS for the renderer."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vehicle_host.bundles.wxss import COMPONENT_TAGS, MAX_SOURCE_BYTES, compile_wxss
from vehicle_host.errors import TemplateError


def css(source: str) -> str:
    return compile_wxss(source, filename="app.wxss")


def error(source: str) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        css(source)
    assert info.value.filename == "app.wxss"
    assert "internal" not in str(info.value)
    return info.value


def test_rpx_becomes_calc() -> None:
    assert css(".a { width: 750rpx; }") == ".a { width: calc(750 * var(--rpx)); }"
    assert css(".a{margin:0 -10rpx .5RPX 1.5e1rpx}") == (
        ".a{margin:0 calc(-10 * var(--rpx)) calc(.5 * var(--rpx)) calc(1.5e1 * var(--rpx))}"
    )
    assert css(".a { width: calc(100% - 20rpx) }") == ".a { width: calc(100% - calc(20 * var(--rpx))) }"


def test_rpx_left_alone_outside_values() -> None:
    assert css('.a::after { content: "10rpx" }') == '.a::after { content: "10rpx" }'
    assert css(".a { width: 10px } /* 10rpx */") == ".a { width: 10px } /* 10rpx */"
    assert css(".a-10rpx { x: 1 }") == ".a-10rpx { x: 1 }"
    assert css("@media (min-width: 300rpx) { .a { b: 1rpx } }") == (
        "@media (min-width: 300rpx) { .a { b: calc(1 * var(--rpx)) } }"
    )


def test_type_selectors_rewritten() -> None:
    assert css("view { color: red }") == ".wx-view { color: red }"
    assert css("page{background:#000}") == ".wx-page{background:#000}"
    assert css("view.a > text + button ~ image, scroll-view swiper-item {}") == (
        ".wx-view.a > .wx-text + .wx-button ~ .wx-image, .wx-scroll-view .wx-swiper-item {}"
    )
    assert css("view:not(text):hover::after {}") == ".wx-view:not(.wx-text):hover::after {}"
    for tag in COMPONENT_TAGS:
        assert css(f"{tag} {{}}") == f".wx-{tag} {{}}"


def test_non_type_selectors_untouched() -> None:
    source = ".view-x, #view, .view, [type=view], [data-x='text'], div, span.button-like, view-x {}"
    assert css(source) == source
    assert css("body view-list {}") == "body view-list {}"


def test_values_and_keyframes_untouched() -> None:
    assert css(".a { font-family: text, view; content: 'view' }") == (
        ".a { font-family: text, view; content: 'view' }"
    )
    source = "@keyframes view { from { opacity: 0 } to { opacity: 1; width: 2rpx } }"
    assert css(source) == (
        "@keyframes view { from { opacity: 0 } to { opacity: 1; width: calc(2 * var(--rpx)) } }"
    )


def test_nested_at_rules() -> None:
    assert css("@media screen { @supports (display: grid) { view { a: 1rpx } } }") == (
        "@media screen { @supports (display: grid) { .wx-view { a: calc(1 * var(--rpx)) } } }"
    )
    assert css('@font-face { font-family: x; src: url("data:font/woff2;base64,AA") }') == (
        '@font-face { font-family: x; src: url("data:font/woff2;base64,AA") }'
    )
    assert css('@charset "utf-8";\nview{}') == '@charset "utf-8";\n.wx-view{}'


def test_data_urls_allowed() -> None:
    for value in ["url(data:image/png;base64,AAAA)", "url( 'data:image/svg+xml,<svg/>' )", 'URL("DATA:x")']:
        assert css(f".a {{ background: {value} }}") == f".a {{ background: {value} }}"
    assert "image-set" in css('.a { background: image-set("data:image/png;base64,AA" 1x) }')


@pytest.mark.parametrize(
    ("source", "fragment", "line"),
    [
        ('@import "other.wxss";', "@import is not available here", 1),
        ("\n@IMPORT url(data:x);", "@import is not available here", 2),
        ("\n\n@\\69mport 'x';", "@import is not available here", 3),
        ("@import;", "@import needs one file", 1),
        ("@media screen { @import 'a.wxss'; }", "only allowed at the top level", 1),
        ("@import 'a.wxss' { }", '@import ends with ";"', 1),
        (".a { background: url(https://evil.example/x.png) }", "data: URLs", 1),
        (".a {\n background: url('/local/file.png') }", "data: URLs", 2),
        (".a { background: u\\72l(http://x) }", "data: URLs", 1),
        (".a { background: image-set('http://x/a.png' 1x) }", "data: URLs", 1),
        (".a { width: expression(alert(1)) }", "expression() is not allowed", 1),
        (".a { width: EXPRESSION(alert(1)) }", "expression() is not allowed", 1),
        (".a { width: expr\\65ssion(1) }", "not allowed", 1),
        (".a { background: url(javascript:alert(1)) }", "javascript:", 1),
        (".a { b: 'java\\73 cript:x' }", "javascript:", 1),
        ("/* </style> */", "</style", 1),
        (".a { content: '</STYLE><script>' }", "</style", 1),
        (".a { color: red", "never closed", 1),
        (".a { color: red } }", "unmatched '}'", 1),
        (".a { content: 'x\n' }", "unterminated string", 1),
        ("/* open", "unterminated comment", 1),
        (".a { background: url(a b) }", "malformed url", 1),
        (".a { } \n.b", "expected '{'", 2),
    ],
)
def test_errors(source: str, fragment: str, line: int) -> None:
    err = error(source)
    assert fragment in str(err)
    assert err.line == line


def test_size_limit() -> None:
    css(" " * MAX_SOURCE_BYTES)
    assert "512 KiB" in str(error(" " * (MAX_SOURCE_BYTES + 1)))


_PIECES = st.sampled_from(
    [
        "view", "text", ".", "#", "{", "}", ";", ":", " ", "\n", "10rpx", "-1.5rpx", "url(", ")", "(", "'",
        '"', "\\", "/*", "*/", "@media", "@import", "@keyframes", "data:", "x", "[", "]", ",", "%", "e",
        "expression", "javascript", "<", "/style",
    ]
)  # fmt: skip


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=300), st.lists(_PIECES, max_size=80).map("".join)))
def test_compile_only_raises_template_error(source: str) -> None:
    try:
        out = compile_wxss(source, filename="x.wxss")
    except TemplateError as exc:
        assert "internal" not in str(exc)
        return
    lowered = out.lower()
    assert "</style" not in lowered
    assert re.search(r"@import(?![\w-])", lowered) is None  # never left for the browser to fetch


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda f: round(f, 3)))
def test_rpx_numbers_preserved(value: float) -> None:
    out = css(f".a {{ width: {value}rpx }}")
    assert out == f".a {{ width: calc({value} * var(--rpx)) }}"


# --------------------------------------------------------------------------- @import and component scope


def loader(files: dict[str, str]):  # type: ignore[no-untyped-def]
    def load(base: str, target: str, line: int, column: int) -> tuple[str, str]:
        name = target if not target.startswith("./") else target[2:]
        if name not in files:
            raise TemplateError(f"{target} missing", filename=base, line=line, column=column)
        return name, files[name]

    return load


def test_import_is_inlined_in_place() -> None:
    files = {"common.wxss": ".c { width: 10rpx }", "deep.wxss": "@import 'common.wxss'; .d{}"}
    out = compile_wxss('@import "deep.wxss";\n.a { b: 1 }', filename="app.wxss", load=loader(files))
    assert out == ".c { width: calc(10 * var(--rpx)) } .d{}\n.a { b: 1 }"
    assert compile_wxss("@import url(common.wxss);", filename="app.wxss", load=loader(files)) == files[
        "common.wxss"
    ].replace("10rpx", "calc(10 * var(--rpx))")


def test_import_cycles_and_missing_files_name_the_file() -> None:
    files = {"a.wxss": "@import 'b.wxss';", "b.wxss": "\n@import 'a.wxss';"}
    with pytest.raises(TemplateError) as info:
        compile_wxss("@import 'a.wxss';", filename="app.wxss", load=loader(files))
    assert "cycle" in str(info.value) and info.value.filename == "b.wxss" and info.value.line == 2
    with pytest.raises(TemplateError) as info:
        compile_wxss("x{}\n@import 'nope.wxss';", filename="app.wxss", load=loader({}))
    assert (info.value.filename, info.value.line) == ("app.wxss", 2)
    imported_error = {"bad.wxss": ".a {\n  b: url(http://x) }"}
    with pytest.raises(TemplateError) as info:
        compile_wxss("@import 'bad.wxss';", filename="app.wxss", load=loader(imported_error))
    assert (info.value.filename, info.value.line) == ("bad.wxss", 2)


def test_component_styles_are_scoped_to_classes() -> None:
    out = compile_wxss(
        ".card .title:hover, .a.b > .c::after { width: 2rpx } :host { display: block }\n"
        "@media (min-width: 1px) { .x { y: 1 } }\n@keyframes k { from { a: 1 } to { a: 2 } }",
        filename="c.wxss",
        scope="cab",
    )
    assert out == (
        ".cab--card .cab--title:hover, .cab--a.cab--b > .cab--c::after { width: calc(2 * var(--rpx)) } "
        ".cab-host { display: block }\n@media (min-width: 1px) { .cab--x { y: 1 } }\n"
        "@keyframes k { from { a: 1 } to { a: 2 } }"
    )


@pytest.mark.parametrize("selector", ["view", ".a view", "#id", "[data-x]", "*", ".a:not(text)"])
def test_component_styles_refuse_tag_id_and_attribute_selectors(selector: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_wxss(f"\n{selector} {{ a: 1 }}", filename="c.wxss", scope="cab")
    assert info.value.line == 2 and "not allowed in a component" in str(info.value)
