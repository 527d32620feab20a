"""Compile one WXML file into a JSON-able tree that the page renderer (``shell/ui/renderer-*.js``) draws.

The tokenizer is our own (not ``html.parser``) so that ``{{ a < b }}`` inside text or attribute values is
never mistaken for markup, self-closing tags work on every element, and every error has a line/column.
Element semantics (built-in components, attributes, security checks) are in ``wxml_nodes``; linking
files together (``<import>``, ``<include>``, template references, images) is in ``templates``.

Tree format::

    {"k": "root", "children": [node, ...]}
    {"k": "text", "v": [parts]}
    {"k": "el", "tag": "view", "attrs": {"class": [parts]}, "events": {"tap": {"handler": "onTap",
     "catch": False}}, "children": [...], "line": 3,
     # optional on el, comp and tpl: "if": ast, "elif": ast, "else": True, "for": ast,
     #                                "forItem": "item", "forIndex": "index", "key": "id" | "*this"}
    {"k": "comp", "tag": "my-card", "c": "components/card/card", "attrs", "events", "children", "line"}
    {"k": "tpl", "is": [parts], "data": obj-ast (optional), "line": 4}   # <template is>; the linker
                                                                         # adds "ref" or "refs"
    {"k": "slot", "name": "", "line": 2}                                 # component files only
    {"k": "include", "src": "a.wxml", "line": 1, "col": 1}               # replaced by the linker

``parts`` are from :func:`vehicle_host.bundles.expr.parse_mustache`, with HTML character references in
the literal parts decoded.  An attribute written without a value is ``[{"e": {"op": "lit", "v": True}}]``.
``<template name="x">`` definitions and ``<import src>`` are not in the tree: see :class:`WxmlFile`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vehicle_host.bundles.expr import Part, find_mustache_end, parse_mustache, parse_object_body
from vehicle_host.bundles.source_text import SourceText
from vehicle_host.bundles.wxml_nodes import ElementBuilder, check_tag
from vehicle_host.errors import TemplateError

MAX_SOURCE_BYTES = 512 * 1024
MAX_NODES = 20_000
MAX_DEPTH = 64

MAX_TEMPLATES = 200

_TAG = re.compile(r"[a-z][a-z0-9_-]*")
_TAG_CHARS = re.compile(r"[^\s/>]+")
_ATTR_NAME = re.compile(r"[^\s\"'<>/=`]+")
_END_TAG = re.compile(r"</([^\s>]*)\s*>")
_UNQUOTED = re.compile(r"[^\s\"'<>=`]+")
_TEMPLATE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass
class WxmlFile:
    """One compiled WXML file: its tree, the templates it defines, and the files it imports."""

    filename: str
    tree: dict[str, Any]
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"children", "line"}
    imports: list[tuple[str, int, int]] = field(default_factory=list)  # (src, line, column)


class _Source(SourceText):
    """One WXML file: offsets to line/column, and its {{ }} parts."""

    def parts(self, text: str, offset: int) -> list[Part]:
        line, column = self.where(offset)
        parts = parse_mustache(text, filename=self.filename, line=line, column=column)
        return [html.unescape(part) if isinstance(part, str) else part for part in parts]


class _Frame:
    """An open element (or the root) whose children are being collected."""

    def __init__(self, node: dict[str, Any], tag: str, offset: int) -> None:
        self.node = node
        self.tag = tag
        self.offset = offset
        self.children: list[dict[str, Any]] = node["children"]
        self.chain_open = False  # the last element sibling was wx:if / wx:elif


class _Compiler:
    def __init__(self, source: str, filename: str, components: Mapping[str, str], in_component: bool) -> None:
        self.src = _Source(source, filename)
        self.text = source
        self.root: dict[str, Any] = {"k": "root", "children": []}
        self.stack = [_Frame(self.root, "", 0)]
        self.nodes = 0
        self.components = dict(components)
        self.component_tags = frozenset(components)
        self.in_component = in_component
        self.result = WxmlFile(filename, self.root)
        self.builder = ElementBuilder(self.src.error, self.src.parts)
        self._mustache = -2  # offset of the next "{{" (-1: none is left; -2: not searched yet)

    # ----------------------------------------------------------------- driver

    def run(self) -> WxmlFile:
        text, n, i = self.text, len(self.text), 0
        while i < n:
            lt = self._find_markup(i)
            if lt > i:
                self._text(text[i:lt], i)
            if lt >= n:
                break
            if text.startswith("<!--", lt):
                end = text.find("-->", lt + 4)
                if end < 0:
                    raise self.src.error("unterminated comment <!--", lt)
                i = end + 3
            elif text.startswith("</", lt):
                i = self._end_tag(lt)
            else:
                i = self._start_tag(lt)
        if len(self.stack) > 1:
            frame = self.stack[-1]
            raise self.src.error(f"<{frame.tag}> is never closed (missing </{frame.tag}>)", frame.offset)
        return self.result

    def _find_markup(self, i: int) -> int:
        """Next ``<`` that starts markup, skipping over ``{{ }}`` so ``{{a < b}}`` stays text."""
        text, n = self.text, len(self.text)
        while i < n:
            lt = text.find("<", i)
            if lt < 0:
                return n
            if self._mustache != -1 and self._mustache < i:  # remembered: each byte is searched once
                self._mustache = text.find("{{", i)
            mustache = self._mustache
            if 0 <= mustache < lt:
                close = find_mustache_end(text, mustache + 2)
                i = n if close < 0 else close + 2
                continue
            nxt = text[lt + 1 : lt + 2]
            if nxt.isalpha() or nxt in ("/", "!", "?"):
                return lt
            i = lt + 1  # a lone '<' (as in "a < b") is plain text
        return n

    def _count(self, offset: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.src.error(f"template has more than {MAX_NODES} nodes (limit)", offset)

    # ----------------------------------------------------------------- text

    def _text(self, raw: str, offset: int) -> None:
        if not raw.strip():
            return
        frame = self.stack[-1]
        parts = self.src.parts(raw, offset)
        if not parts:
            return
        self._count(offset)
        frame.children.append({"k": "text", "v": parts})
        frame.chain_open = False

    # ----------------------------------------------------------------- tags

    def _end_tag(self, lt: int) -> int:
        m = _END_TAG.match(self.text, lt)
        if not m:
            raise self.src.error("malformed end tag (expected </name>)", lt)
        name = m.group(1)
        frame = self.stack[-1]
        if len(self.stack) == 1:
            raise self.src.error(f"</{name}> has no matching start tag", lt)
        if name != frame.tag:
            line, _ = self.src.where(frame.offset)
            raise self.src.error(f"</{name}> does not match <{frame.tag}> opened on line {line}", lt)
        self.stack.pop()
        if frame.node["k"] in ("tpl", "include", "import") and frame.node["children"]:
            raise self.src.error(f"<{frame.tag}> must be empty (write <{frame.tag} .../>)", frame.offset)
        return m.end()

    def _start_tag(self, lt: int) -> int:
        text, n = self.text, len(self.text)
        if text.startswith("<!", lt) or text.startswith("<?", lt):
            raise self.src.error("<! and <? declarations are not allowed in WXML", lt)
        m = _TAG_CHARS.match(text, lt + 1)
        name = m.group(0) if m else ""
        if not _TAG.fullmatch(name):
            raise self.src.error(f"invalid tag name {name!r} (use lowercase letters, digits and -)", lt)
        tag = check_tag(name, self.component_tags, lt, self.src.error)
        i = lt + 1 + len(name)
        attrs: list[tuple[str, str | None, int]] = []
        seen: set[str] = set()
        while True:
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise self.src.error(f"<{name}> tag is not finished (missing >)", lt)
            if text[i] == ">":
                i += 1
                self_closing = False
                break
            if text.startswith("/>", i):
                i += 2
                self_closing = True
                break
            am = _ATTR_NAME.match(text, i)
            if not am:
                raise self.src.error(f"unexpected {text[i]!r} in <{name}> tag", i)
            attr, attr_at = am.group(0), i
            i = am.end()
            if attr in seen:
                raise self.src.error(f"attribute {attr!r} is given twice", attr_at)
            seen.add(attr)
            j = i
            while j < n and text[j].isspace():
                j += 1
            if j < n and text[j] == "=":
                j += 1
                while j < n and text[j].isspace():
                    j += 1
                value, value_at, i = self._attr_value(j, attr)
                attrs.append((attr, value, value_at))
            else:
                attrs.append((attr, None, attr_at))
        if len(self.stack) > MAX_DEPTH:
            raise self.src.error(f"elements nest deeper than the limit of {MAX_DEPTH}", lt)
        self._count(lt)
        node = self._node(tag, attrs, lt)
        parent = self.stack[-1]
        if node["k"] == "tdef":
            if any(f.node["k"] == "tdef" for f in self.stack):
                raise self.src.error("<template name> cannot be defined inside another template", lt)
        elif node["k"] != "import":
            self._chain(parent, node, lt)
            parent.children.append(node)
        if not self_closing:
            self.stack.append(_Frame(node, name, lt))
        return i

    # ----------------------------------------------------------------- nodes

    def _node(self, tag: str, attrs: list[tuple[str, str | None, int]], lt: int) -> dict[str, Any]:
        line, _ = self.src.where(lt)
        if tag in ("template", "import", "include", "slot"):
            return self._structural(tag, {a[0]: a for a in attrs}, attrs, lt)
        comp = tag in self.components
        node: dict[str, Any] = {"k": "comp", "tag": tag, "c": self.components[tag]} if comp else {"k": "el"}
        if not comp:
            node["tag"] = tag
        node.update({"attrs": {}, "events": {}, "children": [], "line": line})
        return self.builder.build(node, attrs, lt, comp=comp)

    def _only(self, tag: str, named: dict[str, tuple[str, str | None, int]], allowed: set[str]) -> None:
        for attr, (_, _, at) in named.items():
            if attr not in allowed:
                raise self.src.error(f"attribute {attr!r} is not allowed on <{tag}>", at)

    def _static(self, tag: str, named: dict[str, tuple[str, str | None, int]], attr: str, lt: int) -> str:
        if attr not in named:
            raise self.src.error(f"<{tag}> needs a {attr} attribute", lt)
        _, value, at = named[attr]
        text = (value or "").strip()
        if not text or "{{" in text:
            raise self.src.error(f"{attr} of <{tag}> must be a plain value, without {{{{ }}}}", at)
        return text

    def _structural(
        self,
        tag: str,
        named: dict[str, tuple[str, str | None, int]],
        attrs: list[tuple[str, str | None, int]],
        lt: int,
    ) -> dict[str, Any]:
        line, column = self.src.where(lt)
        if tag in ("import", "include"):
            self._only(tag, named, {"src"})
            src = self._static(tag, named, "src", lt)
            if tag == "import":
                self.result.imports.append((src, line, column))
                return {"k": "import", "children": []}
            return {"k": "include", "src": src, "line": line, "col": column, "children": []}
        if tag == "slot":
            if not self.in_component:
                raise self.src.error("<slot> can only be used in a component's template", lt)
            self._only(tag, named, {"name"})
            name = self._static(tag, named, "name", lt) if "name" in named else ""
            return {"k": "slot", "name": name, "line": line, "children": []}
        if "name" in named:  # <template name="x"> defines a template
            if "is" in named:
                raise self.src.error("<template> takes either name (to define) or is (to use), not both", lt)
            self._only(tag, named, {"name"})
            name = self._static(tag, named, "name", lt)
            if not _TEMPLATE_NAME.fullmatch(name):
                raise self.src.error(f"template name {name!r} must be letters, digits, _ and -", lt)
            if name in self.result.templates:
                raise self.src.error(f"template {name!r} is defined twice in this file", lt)
            if len(self.result.templates) >= MAX_TEMPLATES:
                raise self.src.error(f"more than {MAX_TEMPLATES} templates in one file (limit)", lt)
            node: dict[str, Any] = {"k": "tdef", "children": [], "line": line}
            self.result.templates[name] = node
            return node
        if "is" not in named:
            raise self.src.error("<template> needs name (to define a template) or is (to use one)", lt)
        _, value, at = named["is"]
        node = {"k": "tpl", "is": self.src.parts(value or "", at), "events": {}, "attrs": {}, "line": line}
        if not node["is"]:
            raise self.src.error("<template is> needs a template name", at)
        if "data" in named:
            _, data, data_at = named["data"]
            node["data"] = self._data(data or "", data_at)
        rest = [a for a in attrs if a[0] not in ("is", "data")]
        for attr, _, at in rest:
            if not attr.startswith("wx:"):
                raise self.src.error(f"attribute {attr!r} is not allowed on <template is>", at)
        self.builder.build(node, rest, lt, comp=True)
        del node["events"], node["attrs"]
        node["children"] = []
        return node

    def _data(self, value: str, at: int) -> dict[str, Any]:
        """``data="{{a: 1, ...b, c}}"``: the body of an object literal."""
        stripped = value.strip()
        lead = len(value) - len(value.lstrip())
        if not (stripped.startswith("{{") and stripped.endswith("}}")) or len(stripped) < 4:
            raise self.src.error('data of <template is> must be one {{ }}, e.g. data="{{...item}}"', at)
        body_at = at + lead + 2
        body = stripped[2:-2]
        if find_mustache_end(stripped, 2) != len(stripped) - 2:
            raise self.src.error('data of <template is> must be one {{ }}, e.g. data="{{...item}}"', at)
        line, column = self.src.where(body_at)
        return parse_object_body(body, filename=self.src.filename, line=line, column=column)

    def _attr_value(self, j: int, attr: str) -> tuple[str, int, int]:
        """Returns (raw value, offset of the value text, offset after it)."""
        text, n = self.text, len(self.text)
        if j >= n:
            raise self.src.error(f"attribute {attr!r} has no value", j)
        quote = text[j]
        if quote in "'\"":
            # Inside {{ }} use the other kind of quote: the first matching quote ends the value.
            end = text.find(quote, j + 1)
            if end < 0:
                raise self.src.error(f"unterminated quoted value of attribute {attr!r}", j)
            return text[j + 1 : end], j + 1, end + 1
        m = _UNQUOTED.match(text, j)
        if not m:
            raise self.src.error(f"attribute {attr!r} has no value", j)
        value, end = m.group(0), m.end()
        if value.endswith("/") and text.startswith(">", end):
            value, end = value[:-1], end - 1
        return value, j, end

    def _chain(self, parent: _Frame, node: dict[str, Any], lt: int) -> None:
        if ("elif" in node or "else" in node) and not parent.chain_open:
            which = "wx:elif" if "elif" in node else "wx:else"
            raise self.src.error(f"{which} must directly follow an element with wx:if or wx:elif", lt)
        parent.chain_open = ("if" in node or "elif" in node) and "for" not in node


def compile_wxml(
    source: str, *, filename: str, components: Mapping[str, str] | None = None, in_component: bool = False
) -> dict[str, Any]:
    """Compile one WXML file into the renderer's tree (templates and imports are dropped: use
    :func:`parse_wxml` or the linker in ``templates`` for those); every problem raises TemplateError."""
    return parse_wxml(source, filename=filename, components=components, in_component=in_component).tree


def parse_wxml(
    source: str, *, filename: str, components: Mapping[str, str] | None = None, in_component: bool = False
) -> WxmlFile:
    """Compile one WXML file; ``components`` maps custom tags to component paths (usingComponents)."""
    if len(source) > MAX_SOURCE_BYTES or len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise TemplateError(
            f"template is larger than the limit of {MAX_SOURCE_BYTES // 1024} KiB", filename=filename
        )
    try:
        return _Compiler(source, filename, components or {}, in_component).run()
    except TemplateError:
        raise
    except (RecursionError, ValueError, IndexError, KeyError, TypeError) as exc:  # defensive: never leak
        raise TemplateError(f"internal template compiler error: {exc!r}", filename=filename) from exc
