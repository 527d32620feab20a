"""Fuzzing the WXML compiler: generated and mutated templates compile to a tree that holds only allowed
components and attributes (no script, no ``on*`` attribute, no ``javascript:``/network URL, no style that
loads or runs anything), or fail with a TemplateError pointing at file:line:col inside the source.

Values computed by ``{{ }}`` at run time are checked again by the renderer (``safeStyle``,
``safeImageSrc``, ``safePageUrl`` in ``shell/ui/renderer-core.js``); here the literal parts are checked.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.fuzzing import fuzz, mutated_text, seed_files
from vehicle_host.bundles.bundlefs import BundleFiles
from vehicle_host.bundles.templates import Budget, Linker
from vehicle_host.bundles.wxml import MAX_DEPTH, MAX_SOURCE_BYTES, parse_wxml
from vehicle_host.bundles.wxml_nodes import ALIASES, BUILTIN_TAGS, URL_ATTRS, url_scheme
from vehicle_host.errors import BundleError, TemplateError

COMPONENTS = {"my-card": "components/card/card", "x-list": "components/list/index"}
NODE_KINDS = {"root", "text", "el", "comp", "tpl", "slot", "include", "tdef"}
_VALID_ATTR = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")


def _check_parts(parts: Any) -> None:
    assert isinstance(parts, list)
    for part in parts:
        assert (isinstance(part, str) and part) or (isinstance(part, dict) and set(part) == {"e"}), part


def _check_url(tag: str, name: str, parts: list[Any]) -> None:
    if not parts or not isinstance(parts[0], str):
        return  # computed at run time: the renderer checks the value
    scheme = url_scheme(parts[0])
    assert scheme not in ("javascript", "vbscript"), parts
    if tag == "image" and name == "src":
        assert scheme == "" or _CONTROL.sub("", parts[0]).lower().startswith("data:image/"), parts
    else:
        assert scheme == "", f"{name}={parts[0]!r} on <{tag}> has a URL scheme"


def _check_style(parts: list[Any]) -> None:
    literal = "".join(p for p in parts if isinstance(p, str)).lower()
    for bad in ("expression(", "javascript:", "vbscript:", "@import", "-moz-binding", "\\"):
        assert bad not in literal, literal
    for m in re.finditer(r"url\s*\(\s*['\"]?\s*", literal):
        assert literal.startswith("data:image/", m.end()), literal


def check_tree(node: dict[str, Any], components: dict[str, str]) -> int:
    """The safety invariants of a compiled tree; returns the number of nodes."""
    kind = node["k"]
    assert kind in NODE_KINDS, kind
    if kind == "text":
        _check_parts(node["v"])
        return 1
    if kind == "el":
        assert node["tag"] in BUILTIN_TAGS, node["tag"]
    if kind == "comp":
        assert components[node["tag"]] == node["c"]
    for name, parts in node.get("attrs", {}).items():
        assert _VALID_ATTR.fullmatch(name) and ":" not in name, name
        assert name[:2].lower() != "on", f"inline event attribute {name!r} survived"
        _check_parts(parts)
        if kind == "el" and name.lower() in URL_ATTRS:
            _check_url(node["tag"], name.lower(), parts)
        if kind == "el" and name.lower() == "style":
            _check_style(parts)
    for event, binding in node.get("events", {}).items():
        assert set(binding) == {"handler", "catch"} and _IDENT.fullmatch(binding["handler"]), (event, binding)
    return 1 + sum(check_tree(child, components) for child in node.get("children", []))


def compile_or_refuse(source: str, components: dict[str, str] | None = None) -> None:
    using = COMPONENTS if components is None else components
    try:
        parsed = parse_wxml(source, filename="pages/p/p.wxml", components=using, in_component=True)
    except TemplateError as exc:
        assert "internal" not in str(exc), str(exc)
        assert exc.filename == "pages/p/p.wxml" and str(exc).startswith("pages/p/p.wxml:")
        if "larger than the limit" in str(exc):
            return
        lines = source.split("\n")
        assert 1 <= exc.line <= len(lines), f"line {exc.line} is outside the file: {exc}"
        assert 1 <= exc.column <= len(lines[exc.line - 1]) + 1, f"column {exc.column} is outside line: {exc}"
        return
    json.dumps(parsed.tree)  # the tree travels to the renderer as plain data
    check_tree(parsed.tree, using)
    for template in parsed.templates.values():
        assert not any(child["k"] == "tdef" for child in template["children"])
        for child in template["children"]:
            check_tree(child, using)


# -- generated templates --------------------------------------------------------------------------------

# mostly tags that compile (so the generator reaches deep), sometimes one that must be refused
REFUSED_TAGS = [
    "template",
    "include",
    "import",
    "script",
    "style",
    "iframe",
    "wxs",
    "video",
    "VIEW",
    "svg",
    "a",
]
tags = st.sampled_from(
    [
        *sorted(BUILTIN_TAGS) * 3,
        *ALIASES,
        *COMPONENTS,
        *["view", "text", "image", "navigator"] * 4,
        "slot",
        *REFUSED_TAGS,
        "x-unknown",
    ]
)
dangerous_values = st.sampled_from(
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "java\tscript:x",
        "\x01javascript:x",
        "&#106;avascript:x",
        "javascript&colon;x",
        "&#x6A;avascript:x",
        "vbscript:x",
        "data:text/html,<script>x</script>",
        "data:image/png;base64,AAAA",
        "da\nta:text/html,x",
        "http://evil.example/x.png",
        "//evil.example/x",
        "https://x",
        "file:///etc/passwd",
        "blob:x",
        "a.png",
        "/pages/a/a",
        "../../etc/passwd",
        "{{u}}",
        "{{u}}javascript:x",
        "java{{''}}script:x",
        "color: red",
        "background: url(http://x)",
        "background:url( 'x')",
        "background: URL(data:text/html,x)",
        "background: url(data:image/png;base64,AA)",
        "width: expression(x)",
        "b: \\75rl(http://x)",
        "@import 'x'",
        "behavior: url(x.htc)",
        "-moz-binding: x",
        "x: u&#114;l(http://x)",
        "x: url&#40;http://x)",
        "onTap",
        "on Tap",
        "1bad",
        "{{a}}",
        "{{a ? 'javascript:x' : ''}}",
        "",
        "<script>",
        "--><script>x</script>",
        "</view>",
        "&lt;script&gt;",
        '"',
        "'",
        "{{",
        "}}",
        "{{'}}'}}",
    ]
)
attribute_names = st.sampled_from(
    [
        *["class", "style", "src", "url", "href", "data-x", "wx:if", "wx:for", "bindtap"] * 4,
        "class",
        "id",
        "style",
        "src",
        "SRC",
        "href",
        "url",
        "poster",
        "action",
        "formaction",
        "background",
        "xlink:href",
        "onclick",
        "ONLOAD",
        "on",
        "onTap",
        "bindtap",
        "catchtap",
        "bind:tap",
        "catch:longpress",
        "capture-bind:tap",
        "mut-bind:tap",
        "wx:if",
        "wx:elif",
        "wx:else",
        "wx:for",
        "wx:for-item",
        "wx:key",
        "wx:for-index",
        "wx:unknown",
        "data-x",
        "data-a-b",
        "model:value",
        "mark:x",
        "slot",
        "name",
        "is",
        "data",
        "disabled",
        "hidden",
        "srcdoc",
        "formAction",
        "1x",
        "a`b",
        "x\u00e9",
    ]
)
attributes = st.lists(
    st.tuples(
        attribute_names,
        st.none() | dangerous_values | st.text(max_size=8),
        st.sampled_from(['"', "'", ""]),
    ),
    max_size=4,
)


def _attrs(items: list[tuple[str, str | None, str]]) -> str:
    out = []
    for name, value, quote in items:
        if value is None:
            out.append(f" {name}")
        else:
            out.append(f" {name}={quote}{value}{quote}")
    return "".join(out)


texts = st.one_of(
    st.text(max_size=12),
    dangerous_values,
    st.sampled_from(
        ["{{a}}", "{{a < b}}", "a < b", "&amp;", "&#0;", "<!-- c -->", "<!--", "{{ '}}' }}", "\n"]
    ),
)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def build(tag: str, attrs: list[tuple[str, str | None, str]], body: list[str], close: str) -> str:
        if close == "self":
            return f"<{tag}{_attrs(attrs)}/>"
        end = "" if close == "open" else f"</{tag if close == 'match' else 'view'}>"
        return f"<{tag}{_attrs(attrs)}>{''.join(body)}{end}"

    return st.builds(
        build,
        tags,
        attributes,
        st.lists(children, max_size=4),
        st.sampled_from(["match"] * 6 + ["self", "open", "other"]),
    )


templates = st.recursive(texts, _element, max_leaves=20).map(lambda s: s)


@fuzz(500)
@given(st.lists(templates, min_size=1, max_size=4).map("\n".join))
@example("<view style='b: \\75rl(http://x)'/>")
@example("<view style='background: url( data:text/html,x)'/>")
@example("<image src='da\nta:text/html,x'/>")
@example("<navigator url='&#106;avascript:x'/>")
@example("<view ONclick='x'/>")
@example("<text>{{" + "1" * 400 + "}}</text>")
@example("<view wx:if='{{0x" + "f" * 300 + "}}'/>")
# the largest templates of the shapes that used to take quadratic time (seconds per compile)
@example("<text>" + "{{a}}\n" * (MAX_SOURCE_BYTES // 6 - 10) + "</text>")
@example("<text>" + "a < b " * (MAX_SOURCE_BYTES // 6 - 10) + "</text>")
def test_generated_templates_compile_safely_or_name_the_place(source: str) -> None:
    compile_or_refuse(source)


_WXML_TOKENS = [
    "<",
    ">",
    "/>",
    "</",
    "<view>",
    "</view>",
    "<script>",
    "<!--",
    "-->",
    "{{",
    "}}",
    "'",
    '"',
    "=",
    " ",
    "\n",
    "&",
    "&#",
    ";",
    " onclick='x'",
    " style='background:url(http://x)'",
    " src='javascript:x'",
    " wx:if='{{a}}'",
    " wx:else",
    " wx:for='{{list}}'",
    " bindtap='h'",
    " bindtap='{{h}}'",
    "<template is='t'/>",
    "<template name='t'>",
    "</template>",
    "<include src='a.wxml'/>",
    "<import src='/b'/>",
    "<slot/>",
    "\\",
    "{{a.b[c]}}",
    "{{...x}}",
    "<my-card>",
    "</my-card>",
    "<block wx:for='{{x}}'>",
    "</block>",
    "<?xml?>",
    "<!DOCTYPE>",
]


@fuzz(400)
@given(mutated_text(st.sampled_from([raw.decode() for _, raw in seed_files("pages/*/*.wxml")]), _WXML_TOKENS))
def test_mutated_sample_templates_compile_safely_or_name_the_place(source: str) -> None:
    compile_or_refuse(source)


@fuzz(300)
@given(
    tags,
    st.sampled_from(sorted({*URL_ATTRS, "style", "STYLE", "Src", "onclick", "onerror", "oNload"})),
    dangerous_values,
)
def test_one_dangerous_attribute_is_refused_or_harmless(tag: str, name: str, value: str) -> None:
    for quote in ('"', "'"):
        if quote not in value:
            compile_or_refuse(f"<{tag} {name}={quote}{value}{quote}/>")


@fuzz(50)
@given(st.integers(1, MAX_DEPTH + 4), st.sampled_from(["view", "block", "my-card"]))
def test_nesting_limit_holds(depth: int, tag: str) -> None:
    source = f"<{tag}>" * depth + f"</{tag}>" * depth
    try:
        tree = parse_wxml(source, filename="p.wxml", components=COMPONENTS).tree
    except TemplateError as exc:
        assert depth > MAX_DEPTH and "nest deeper" in str(exc), str(exc)
        return
    assert depth <= MAX_DEPTH and check_tree(tree, COMPONENTS) == depth + 1


# -- linking several files (include / import / template) --------------------------------------------

file_names = st.sampled_from(["pages/p/p.wxml", "pages/p/a.wxml", "common/b.wxml", "c.wxml"])
references = st.sampled_from(
    [
        "a",
        "a.wxml",
        "/common/b",
        "../../c",
        "../../../x",
        "/pages/p/p",
        "b",
        "",
        " ",
        "http://x/a.wxml",
        "a\\b",
        "/c.wxml",
        "./a",
        "nope",
    ]
)
link_pieces = st.one_of(
    templates,
    st.builds(lambda s: f"<include src='{s}'/>", references),
    st.builds(lambda s: f"<import src='{s}'/>", references),
    st.builds(lambda n, b: f"<template name='{n}'>{b}</template>", st.sampled_from(["t", "u"]), templates),
    st.builds(
        lambda n: f"<template is='{n}' data='{{{{...x}}}}'/>", st.sampled_from(["t", "u", "{{x}}", "v"])
    ),
    st.just("<image src='i.png'/>"),
)


@fuzz(150)
@given(st.dictionaries(file_names, st.lists(link_pieces, max_size=4).map("".join), min_size=1, max_size=4))
@example({"pages/p/p.wxml": "<include src='/c'/>", "c.wxml": "<include src='pages/p/p'/>"})
def test_linked_files_compile_safely_or_refuse(files: dict[str, str]) -> None:
    """``templates.Linker`` over a small bundle on disk: includes, imports, template refs and images."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text, encoding="utf-8", errors="surrogatepass")
        (root / "pages/p").mkdir(parents=True, exist_ok=True)
        (root / "pages/p/i.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        entry = next(iter(files))
        used: dict[str, dict[str, Any]] = {}
        linker = Linker(BundleFiles(root), Budget(), used, COMPONENTS, in_component=True)
        try:
            tree = linker.link(entry)
        except (TemplateError, BundleError) as exc:
            assert "internal" not in str(exc), str(exc)
            return
        check_tree(tree, COMPONENTS)
        for body in used.values():
            check_tree(body, COMPONENTS)
        json.dumps([tree, used])
