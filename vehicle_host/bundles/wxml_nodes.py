"""What a WXML element may be: built-in components, attributes, events and control attributes.

:mod:`vehicle_host.bundles.wxml` tokenizes a file; this module turns one start tag into a tree node and
refuses what could run code or load from outside: ``<script>``/``<style>``/raw HTML elements (unknown
tags are errors, never DOM), inline ``on*`` attributes, and ``javascript:``/``vbscript:``/``data:``
(other than images) or network URLs written in the template.  Values produced by expressions at run
time are checked again by the renderer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from vehicle_host.bundles.expr import Part
from vehicle_host.errors import TemplateError

#: Built-in components the renderer draws (``block`` draws nothing itself).
BUILTIN_TAGS = frozenset(
    {
        "view", "text", "image", "button", "input", "textarea", "scroll-view", "swiper", "swiper-item",
        "navigator", "icon", "switch", "slider", "progress", "checkbox", "checkbox-group", "radio",
        "radio-group", "form", "label", "picker", "rich-text", "block",
    }
)  # fmt: skip
#: Tags drawn as another built-in.
ALIASES = {"cover-view": "view", "cover-image": "image"}
STRUCTURAL_TAGS = frozenset({"template", "import", "include", "slot"})
_REFUSED = {
    "script": "<script> is not allowed in WXML; put logic in the page's .js file",
    "style": "<style> is not allowed in WXML; put styles in the page's .wxss file",
    "wxs": "<wxs> is not supported by this host; compute values in the page's .js file",
    "iframe": "<iframe> is not allowed in WXML",
}
_NOT_YET = frozenset(
    {"picker-view", "picker-view-column", "movable-area", "movable-view", "video", "audio", "camera",
     "map", "canvas", "web-view", "live-player", "live-pusher", "editor", "ad", "official-account",
     "open-data", "page-meta", "navigation-bar", "match-media", "functional-page-navigator"}
)  # fmt: skip

_VALID_ATTR = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*(:[A-Za-z_][A-Za-z0-9_.-]*)?")
IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_EVENT = re.compile(r"(bind|catch|capture-bind|capture-catch|mut-bind):?([A-Za-z][A-Za-z0-9_-]*)")
_WX_ATTRS = frozenset(
    {"wx:if", "wx:elif", "wx:else", "wx:for", "wx:for-items", "wx:for-item", "wx:for-index", "wx:key"}
)
URL_ATTRS = frozenset({"src", "url", "href", "poster", "action", "formaction", "background", "xlink:href"})
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):")
_CONTROL_CHARS = re.compile(r"[\x00-\x20\x7f]+")
_STYLE_URL = re.compile(r"url\s*\(\s*(['\"]?)\s*(?!data:image/)", re.IGNORECASE)
#: what the renderer's safeStyle also drops: old script hooks in CSS
_STYLE_CODE = re.compile(
    r"expression\s*\(|javascript:|vbscript:|@import|behavior\s*:|-moz-binding", re.IGNORECASE
)

ErrorAt = Callable[[str, int], TemplateError]
PartsAt = Callable[[str, int], list[Part]]


def true_parts() -> list[Part]:
    return [{"e": {"op": "lit", "v": True}}]


def url_scheme(text: str) -> str:
    """The scheme of a URL as a browser would see it ("" for none): control characters and blanks
    inside are ignored, as browsers ignore them."""
    m = _SCHEME.match(_CONTROL_CHARS.sub("", text).lower())
    return m.group(1) if m else ""


def check_tag(name: str, components: frozenset[str], at: int, error: ErrorAt) -> str:
    """The tag the tree uses for ``name`` (after aliases); refuses what may not reach the DOM."""
    if name in _REFUSED:
        raise error(_REFUSED[name], at)
    if name in components or name in BUILTIN_TAGS or name in STRUCTURAL_TAGS:
        return name
    if name in ALIASES:
        return ALIASES[name]
    if name in _NOT_YET:
        raise error(f"<{name}> is not supported by this host yet", at)
    raise error(
        f"unknown element <{name}>: use a built-in component (view, text, image, ...) or declare it in "
        "usingComponents of the page's .json or app.json",
        at,
    )


class ElementBuilder:
    """Builds the node for one element from its attributes (errors point into the source)."""

    def __init__(self, error: ErrorAt, parts: PartsAt) -> None:
        self.error = error
        self.parts = parts

    def build(
        self, node: dict[str, Any], attrs: list[tuple[str, str | None, int]], lt: int, *, comp: bool
    ) -> dict[str, Any]:
        tag = node.get("tag", "")
        for name, value, at in attrs:
            if not _VALID_ATTR.fullmatch(name):
                raise self.error(f"invalid attribute name {name!r}", at)
            if name[:2].lower() == "on":
                raise self.error(
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
            if ":" in name:
                raise self.error(f"attribute {name!r} is not supported by this host (no model:/mark:)", at)
            parts = true_parts() if value is None else self.parts(value, at)
            if not comp:
                self._check_value(tag, name.lower(), parts, at)
            node["attrs"][name] = parts
        if ("elif" in node or "else" in node) and ("if" in node or "for" in node):
            raise self.error("wx:elif / wx:else cannot be combined with wx:if or wx:for", lt)
        if "for" in node:
            node.setdefault("forItem", "item")
            node.setdefault("forIndex", "index")
        elif "forItem" in node or "forIndex" in node or "key" in node:
            raise self.error("wx:for-item, wx:for-index and wx:key need wx:for on the same tag", lt)
        return node

    def _check_value(self, tag: str, name: str, parts: list[Part], at: int) -> None:
        first = parts[0] if parts else ""
        if name == "style":
            literal = "".join(p for p in parts if isinstance(p, str)).lower()
            if _STYLE_CODE.search(literal) or _STYLE_URL.search(literal):
                raise self.error(
                    "style may not use url() (other than data:), expression(), javascript:, @import, "
                    "behavior or -moz-binding",
                    at,
                )
            if "\\" in literal:  # a CSS escape can spell url( or expression( past the check above
                raise self.error("style may not use backslash escapes; write the characters themselves", at)
            return
        if name not in URL_ATTRS or not isinstance(first, str):
            return
        scheme = url_scheme(first)
        if scheme in ("javascript", "vbscript"):
            raise self.error(f"{scheme}: URLs are not allowed", at)
        if tag == "image" and name == "src":
            if scheme == "data" and not _CONTROL_CHARS.sub("", first).lower().startswith("data:image/"):
                raise self.error("image src may only use data:image/... URLs or files of the bundle", at)
            if scheme in ("http", "https"):
                raise self.error(
                    "network images are not available in this host; ship the image in the bundle", at
                )
            if scheme not in ("", "data"):
                raise self.error(f"{scheme}: URLs are not allowed for images", at)
        elif scheme:
            raise self.error(f"{scheme}: URLs are not allowed here; use a page path of this app", at)

    def single_mustache(self, name: str, value: str | None, at: int) -> dict[str, Any]:
        parts = [] if value is None else self.parts(value, at)
        if len(parts) != 1 or not isinstance(parts[0], dict):
            raise self.error(f'{name} needs a single {{{{ }}}} expression, e.g. {name}="{{{{ok}}}}"', at)
        ast: dict[str, Any] = parts[0]["e"]
        return ast

    def _control(self, node: dict[str, Any], name: str, value: str | None, at: int) -> None:
        if name not in _WX_ATTRS:
            raise self.error(f"unknown attribute {name!r}", at)
        if name == "wx:if":
            node["if"] = self.single_mustache(name, value, at)
        elif name == "wx:elif":
            node["elif"] = self.single_mustache(name, value, at)
        elif name == "wx:else":
            if value is not None and value.strip():
                raise self.error("wx:else takes no value", at)
            node["else"] = True
        elif name in ("wx:for", "wx:for-items"):
            if "for" in node:
                raise self.error("wx:for is given twice", at)
            if value is not None and value.strip() and "{{" not in value:
                # WeChat: a plain string iterates over its characters
                node["for"] = {"op": "arr", "v": [{"op": "lit", "v": ch} for ch in value.strip()]}
            else:
                node["for"] = self.single_mustache(name, value, at)
        elif name in ("wx:for-item", "wx:for-index"):
            name_value = (value or "").strip()
            if not IDENT.fullmatch(name_value):
                raise self.error(f"{name} must be a plain variable name, not {value!r}", at)
            node["forItem" if name == "wx:for-item" else "forIndex"] = name_value
        else:  # wx:key
            key = (value or "").strip()
            if not key or "{{" in key or not (key == "*this" or IDENT.fullmatch(key)):
                raise self.error("wx:key must name a field of the item (or be *this), without {{ }}", at)
            node["key"] = key

    def _event(
        self, node: dict[str, Any], kind: str, event: str, name: str, value: str | None, at: int
    ) -> None:
        if kind not in ("bind", "catch"):
            raise self.error(f"{kind} event bindings ({name!r}) are not supported by this host yet", at)
        handler = (value or "").strip()
        if "{{" in handler:
            raise self.error(f"event handler of {name!r} must be a method name, not an expression", at)
        if not IDENT.fullmatch(handler):
            raise self.error(f"event handler of {name!r} must be a method name, got {value!r}", at)
        if event in node["events"]:
            raise self.error(f"event {event!r} is bound twice on this tag", at)
        node["events"][event] = {"handler": handler, "catch": kind == "catch"}
