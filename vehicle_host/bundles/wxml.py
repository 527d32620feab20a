"""Compile a WXML page template into a JSON-able tree that ``shell/ui/renderer.js`` renders.

The tokenizer is our own (not ``html.parser``) so that ``{{ a < b }}`` inside text or attribute values is
never mistaken for markup, self-closing tags work on every element, and every error has a line/column.

Tree format::

    {"k": "root", "children": [node, ...]}
    {"k": "text", "v": [parts]}
    {"k": "el", "tag": "view", "attrs": {"class": [parts]}, "events": {"tap": {"handler": "onTap",
     "catch": False}}, "children": [...], "line": 3,
     # optional: "if": ast, "elif": ast, "else": True, "for": ast, "forItem": "item",
     #           "forIndex": "index", "key": "id"}

``parts`` are from :func:`vehicle_host.bundles.expr.parse_mustache`, with HTML character references in
the literal parts decoded.  An attribute written without a value is ``[{"e": {"op": "lit", "v": True}}]``.
"""

from __future__ import annotations

import bisect
import html
import re
from typing import Any

from vehicle_host.bundles.expr import Part, find_mustache_end, parse_mustache
from vehicle_host.errors import TemplateError

MAX_SOURCE_BYTES = 512 * 1024
MAX_NODES = 20_000
MAX_DEPTH = 64

_TAG = re.compile(r"[a-z][a-z0-9-]*")
_TAG_CHARS = re.compile(r"[^\s/>]+")
_ATTR_NAME = re.compile(r"[^\s\"'<>/=`]+")
_VALID_ATTR = re.compile(r"[A-Za-z_:][A-Za-z0-9_:.-]*")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_EVENT = re.compile(r"(bind|catch|capture-bind|capture-catch|mut-bind):?([A-Za-z][A-Za-z0-9_-]*)")
_END_TAG = re.compile(r"</([^\s>]*)\s*>")
_UNQUOTED = re.compile(r"[^\s\"'<>=`]+")
_UNSUPPORTED = frozenset({"template", "import", "include", "wxs"})
_WX_ATTRS = frozenset(
    {"wx:if", "wx:elif", "wx:else", "wx:for", "wx:for-items", "wx:for-item", "wx:for-index", "wx:key"}
)


def _true_parts() -> list[Part]:
    return [{"e": {"op": "lit", "v": True}}]


class _Source:
    """Offset → line/column for one file."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def error(self, message: str, offset: int) -> TemplateError:
        line, column = self.where(offset)
        return TemplateError(message, filename=self.filename, line=line, column=column)

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
    def __init__(self, source: str, filename: str) -> None:
        self.src = _Source(source, filename)
        self.text = source
        self.root: dict[str, Any] = {"k": "root", "children": []}
        self.stack = [_Frame(self.root, "", 0)]
        self.nodes = 0

    # ----------------------------------------------------------------- driver

    def run(self) -> dict[str, Any]:
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
        return self.root

    def _find_markup(self, i: int) -> int:
        """Next ``<`` that starts markup, skipping over ``{{ }}`` so ``{{a < b}}`` stays text."""
        text, n = self.text, len(self.text)
        while i < n:
            lt = text.find("<", i)
            mustache = text.find("{{", i)
            if lt < 0:
                return n
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
        return m.end()

    def _start_tag(self, lt: int) -> int:
        text, n = self.text, len(self.text)
        if text.startswith("<!", lt) or text.startswith("<?", lt):
            raise self.src.error("<! and <? declarations are not allowed in WXML", lt)
        m = _TAG_CHARS.match(text, lt + 1)
        name = m.group(0) if m else ""
        if not _TAG.fullmatch(name):
            raise self.src.error(f"invalid tag name {name!r} (use lowercase letters, digits and -)", lt)
        if name == "script":
            raise self.src.error("<script> is not allowed in WXML; put logic in the page's .js file", lt)
        if name in _UNSUPPORTED:
            raise self.src.error(f"<{name}> is not supported by this host yet", lt)
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
        node = self._element(name, attrs, lt)
        parent = self.stack[-1]
        self._chain(parent, node, lt)
        parent.children.append(node)
        if not self_closing:
            self.stack.append(_Frame(node, name, lt))
        return i

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

    # ----------------------------------------------------------------- element

    def _element(self, tag: str, attrs: list[tuple[str, str | None, int]], lt: int) -> dict[str, Any]:
        line, _ = self.src.where(lt)
        node: dict[str, Any] = {
            "k": "el",
            "tag": tag,
            "attrs": {},
            "events": {},
            "children": [],
            "line": line,
        }
        for name, value, at in attrs:
            if not _VALID_ATTR.fullmatch(name):
                raise self.src.error(f"invalid attribute name {name!r}", at)
            if name[:2].lower() == "on":
                raise self.src.error(
                    f"attribute {name!r} is not allowed; bind events with bind{name[2:]} or catch{name[2:]}",
                    at,
                )
            if name.startswith("wx:"):
                self._control(node, name, value, at)
                continue
            event = _EVENT.fullmatch(name)
            if event:
                self._event(node, event.group(1), event.group(2), name, value, at)
                continue
            node["attrs"][name] = _true_parts() if value is None else self.src.parts(value, at)
        if ("elif" in node or "else" in node) and ("if" in node or "for" in node):
            raise self.src.error("wx:elif / wx:else cannot be combined with wx:if or wx:for", lt)
        if "for" in node:
            node.setdefault("forItem", "item")
            node.setdefault("forIndex", "index")
        elif "forItem" in node or "forIndex" in node or "key" in node:
            raise self.src.error("wx:for-item, wx:for-index and wx:key need wx:for on the same tag", lt)
        return node

    def _single_mustache(self, name: str, value: str | None, at: int) -> dict[str, Any]:
        parts = [] if value is None else self.src.parts(value, at)
        if len(parts) != 1 or not isinstance(parts[0], dict):
            raise self.src.error(f'{name} needs a single {{{{ }}}} expression, e.g. {name}="{{{{ok}}}}"', at)
        ast: dict[str, Any] = parts[0]["e"]
        return ast

    def _control(self, node: dict[str, Any], name: str, value: str | None, at: int) -> None:
        if name not in _WX_ATTRS:
            raise self.src.error(f"unknown attribute {name!r}", at)
        if name == "wx:if":
            node["if"] = self._single_mustache(name, value, at)
        elif name == "wx:elif":
            node["elif"] = self._single_mustache(name, value, at)
        elif name == "wx:else":
            if value is not None and value.strip():
                raise self.src.error("wx:else takes no value", at)
            node["else"] = True
        elif name in ("wx:for", "wx:for-items"):
            if "for" in node:
                raise self.src.error("wx:for is given twice", at)
            node["for"] = self._single_mustache(name, value, at)
        elif name in ("wx:for-item", "wx:for-index"):
            name_value = (value or "").strip()
            if not _IDENT.fullmatch(name_value):
                raise self.src.error(f"{name} must be a plain variable name, not {value!r}", at)
            node["forItem" if name == "wx:for-item" else "forIndex"] = name_value
        else:  # wx:key
            key = (value or "").strip()
            if not key or "{{" in key:
                raise self.src.error("wx:key must name a field of the item (or be *this), without {{ }}", at)
            node["key"] = key

    def _event(
        self, node: dict[str, Any], kind: str, event: str, name: str, value: str | None, at: int
    ) -> None:
        if kind not in ("bind", "catch"):
            raise self.src.error(f"{kind} event bindings ({name!r}) are not supported by this host yet", at)
        handler = (value or "").strip()
        if "{{" in handler:
            raise self.src.error(f"event handler of {name!r} must be a method name, not an expression", at)
        if not _IDENT.fullmatch(handler):
            raise self.src.error(f"event handler of {name!r} must be a method name, got {value!r}", at)
        if event in node["events"]:
            raise self.src.error(f"event {event!r} is bound twice on this tag", at)
        node["events"][event] = {"handler": handler, "catch": kind == "catch"}

    def _chain(self, parent: _Frame, node: dict[str, Any], lt: int) -> None:
        if ("elif" in node or "else" in node) and not parent.chain_open:
            which = "wx:elif" if "elif" in node else "wx:else"
            raise self.src.error(f"{which} must directly follow an element with wx:if or wx:elif", lt)
        parent.chain_open = ("if" in node or "elif" in node) and "for" not in node


def compile_wxml(source: str, *, filename: str) -> dict[str, Any]:
    """Compile WXML source into the renderer's tree; every problem raises TemplateError."""
    if len(source) > MAX_SOURCE_BYTES or len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise TemplateError(
            f"template is larger than the limit of {MAX_SOURCE_BYTES // 1024} KiB", filename=filename
        )
    try:
        return _Compiler(source, filename).run()
    except TemplateError:
        raise
    except (RecursionError, ValueError, IndexError, KeyError, TypeError) as exc:  # defensive: never leak
        raise TemplateError(f"internal template compiler error: {exc!r}", filename=filename) from exc
