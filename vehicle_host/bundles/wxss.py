"""Compile WXSS into CSS for the page renderer (``shell/ui/renderer.js``).

* ``Nrpx`` becomes ``calc(N * var(--rpx))``; the renderer sets ``--rpx: calc(100vw / 750)`` on ``:root``.
* Type selectors of WXML components (``view``, ``text`` …, ``page``) become ``.wx-<tag>``, because the
  renderer draws each WXML element as a DOM element carrying the class ``wx-<tag>``.
* ``@import "other.wxss";`` (top level only) is inlined at compile time through a loader that resolves
  the path inside the bundle; import cycles, deep chains and oversized totals are refused.
* Component style sheets are scoped (``scope="c1a2b3c4d"``): ``.foo`` becomes ``.c1a2b3c4d--foo`` (the
  renderer prefixes the classes written in that component's template the same way) and ``:host``
  becomes ``.c1a2b3c4d-host``; type, id and attribute selectors are refused there, as WeChat asks.
* Anything that could load or run something is refused: ``url()`` other than ``data:`` (and strings
  inside ``image()``/``image-set()``/``cross-fade()``), ``expression(``, ``javascript:`` and ``</style``.

The work is done on tokens (a small CSS tokenizer that understands comments, strings, escapes, numbers
and ``url()``), so ``.view-x``, ``#view``, ``[type=view]`` and property values are never rewritten.
``rpx`` inside at-rule preludes (such as ``@media``) is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from vehicle_host.bundles.source_text import SourceText
from vehicle_host.errors import TemplateError

MAX_SOURCE_BYTES = 512 * 1024
MAX_IMPORT_DEPTH = 16
MAX_TOTAL_BYTES = 1024 * 1024

#: (importing file, target as written, line, column) -> (resolved bundle path, text); raises TemplateError
Loader = Callable[[str, str, int, int], tuple[str, str]]

COMPONENT_TAGS = frozenset(
    {
        "view", "text", "button", "image", "input", "scroll-view", "navigator", "icon", "switch", "slider",
        "progress", "label", "swiper", "swiper-item", "picker", "textarea", "checkbox", "radio", "form",
        "page", "checkbox-group", "radio-group", "rich-text",
    }
)  # fmt: skip

_RULE_AT_RULES = frozenset({"media", "supports", "document", "layer", "container", "scope"})
_IMAGE_FUNCTIONS = frozenset({"image", "image-set", "-webkit-image-set", "cross-fade", "-webkit-cross-fade"})
#: functions whose value is only known in the browser: never inside an image function
_INDIRECT_FUNCTIONS = frozenset({"var", "attr", "env"})
_FORBIDDEN = (
    ("</style", "</style is not allowed in a style sheet"),
    ("expression(", "CSS expression() is not allowed"),
    ("javascript:", "javascript: URLs are not allowed in styles"),
)
_HEX = re.compile(r"[0-9a-fA-F]{1,6}")
_NUMBER = re.compile(r"[+-]?(?:\d+\.\d+|\d+|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WS = " \t\n\r\f"


class _Token(NamedTuple):
    kind: str  # ws comment str ident func at hash num url delim
    text: str  # exactly as written
    offset: int
    value: str  # decoded name / string content / url target / unit of a number
    number: str = ""  # the numeric part of a num token


class _Tokenizer(SourceText):
    # -------------------------------------------------------------- helpers

    def _valid_escape(self, i: int) -> bool:
        return i + 1 < len(self.text) and self.text[i] == "\\" and self.text[i + 1] != "\n"

    def _name_start(self, i: int) -> bool:
        text = self.text
        if i >= len(text):
            return False
        c = text[i]
        return c.isalpha() or c == "_" or ord(c) >= 0x80 or self._valid_escape(i)

    def _ident_start(self, i: int) -> bool:
        text = self.text
        if i < len(text) and text[i] == "-":
            return i + 1 < len(text) and (text[i + 1] == "-" or self._name_start(i + 1))
        return self._name_start(i)

    def _escape(self, i: int) -> tuple[str, int]:
        """Decode the escape whose backslash is at i; returns (char, next offset)."""
        m = _HEX.match(self.text, i + 1)
        if m:
            code = int(m.group(0), 16)
            j = m.end()
            if self.text.startswith("\r\n", j):
                j += 2
            elif j < len(self.text) and self.text[j] in _WS:
                j += 1
            bad = code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF
            return ("\ufffd" if bad else chr(code)), j
        return self.text[i + 1], i + 2

    def _name(self, i: int) -> tuple[str, int]:
        text, out = self.text, list[str]()
        while i < len(text):
            c = text[i]
            if c.isalnum() or c in "_-" or ord(c) >= 0x80:
                out.append(c)
                i += 1
            elif self._valid_escape(i):
                ch, i = self._escape(i)
                out.append(ch)
            else:
                break
        return "".join(out), i

    def _string(self, i: int) -> tuple[str, int]:
        text, quote, out = self.text, self.text[i], list[str]()
        j = i + 1
        while j < len(text):
            c = text[j]
            if c == quote:
                return "".join(out), j + 1
            if c == "\n":
                break
            if c == "\\":
                if j + 1 >= len(text):
                    j += 1
                    continue
                if text[j + 1] == "\n":
                    j += 2
                    continue
                ch, j = self._escape(j)
                out.append(ch)
                continue
            out.append(c)
            j += 1
        raise self.error("unterminated string", i)

    def _url(self, start: int, i: int) -> tuple[str, int]:
        """After ``url(`` at i; returns (decoded target, offset after the closing parenthesis)."""
        text = self.text
        while i < len(text) and text[i] in _WS:
            i += 1
        if i < len(text) and text[i] in "'\"":
            target, i = self._string(i)
        else:
            out: list[str] = []
            while i < len(text) and text[i] != ")" and text[i] not in _WS:
                c = text[i]
                if c in "'\"(" or ord(c) < 0x20:
                    raise self.error("malformed url(...)", start)
                if c == "\\":
                    if not self._valid_escape(i):
                        raise self.error("malformed url(...)", start)
                    ch, i = self._escape(i)
                    out.append(ch)
                    continue
                out.append(c)
                i += 1
            target = "".join(out)
        while i < len(text) and text[i] in _WS:
            i += 1
        if i >= len(text) or text[i] != ")":
            raise self.error("malformed url(...) (missing ')')", start)
        return target, i + 1

    # -------------------------------------------------------------- tokens

    def tokens(self) -> list[_Token]:
        text, n, i = self.text, len(self.text), 0
        out: list[_Token] = []
        while i < n:
            c = text[i]
            start = i
            if c in _WS:
                while i < n and text[i] in _WS:
                    i += 1
                out.append(_Token("ws", text[start:i], start, ""))
            elif text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise self.error("unterminated comment /*", i)
                i = end + 2
                out.append(_Token("comment", text[start:i], start, ""))
            elif c in "'\"":
                value, i = self._string(i)
                out.append(_Token("str", text[start:i], start, value))
            elif (m := _NUMBER.match(text, i)) is not None:
                i = m.end()
                unit = ""
                if i < n and text[i] == "%":
                    unit, i = "%", i + 1
                elif self._ident_start(i):
                    unit, i = self._name(i)
                out.append(_Token("num", text[start:i], start, unit, m.group(0)))
            elif self._ident_start(i):
                name, i = self._name(i)
                if i < n and text[i] == "(":
                    i += 1
                    if name.lower() == "url":
                        target, i = self._url(start, i)
                        out.append(_Token("url", text[start:i], start, target))
                    else:
                        out.append(_Token("func", text[start:i], start, name))
                else:
                    out.append(_Token("ident", text[start:i], start, name))
            elif c == "@" and self._ident_start(i + 1):
                name, i = self._name(i + 1)
                out.append(_Token("at", text[start:i], start, name))
            elif c == "#" and i + 1 < n and (text[i + 1].isalnum() or text[i + 1] in "_-\\"):
                name, i = self._name(i + 1)
                if not name:
                    name, i = "", start + 1
                    out.append(_Token("delim", c, start, c))
                    continue
                out.append(_Token("hash", text[start:i], start, name))
            else:
                i += 1
                out.append(_Token("delim", c, start, c))
        return out


def _check(tok: _Token, functions: list[str], tz: _Tokenizer) -> None:
    """Refuse tokens that could load or run something."""
    if tok.kind == "url" and not tok.value.strip().lower().startswith("data:"):
        raise tz.error("url() may only use data: URLs in this host (no network or file access)", tok.offset)
    if tok.kind == "func" and tok.value.lower() == "expression":
        raise tz.error("CSS expression() is not allowed", tok.offset)
    if tok.kind in ("str", "url") and "javascript:" in tok.value.lower():
        raise tz.error("javascript: URLs are not allowed in styles", tok.offset)
    if (
        tok.kind in ("ident", "func")
        and "\\" in tok.text
        and tok.value.lower() in ("javascript", "expression")
    ):
        raise tz.error(f"escaped {tok.value!r} is not allowed in styles", tok.offset)
    in_image = any(name.lower() in _IMAGE_FUNCTIONS for name in functions)
    if tok.kind == "str" and in_image and not tok.value.strip().lower().startswith("data:"):
        raise tz.error("images in styles may only use data: URLs", tok.offset)
    if tok.kind == "func" and in_image and tok.value.lower() in _INDIRECT_FUNCTIONS:
        # image-set(var(--u) 1x) with --u: "https://..." would load from the network
        raise tz.error(
            f"{tok.value}() is not allowed inside image functions; write the data: URL there", tok.offset
        )


def _significant(tokens: list[_Token]) -> list[_Token]:
    return [t for t in tokens if t.kind not in ("ws", "comment")]


def _rewrite_selector(tokens: list[_Token], scope: str = "", tz: _Tokenizer | None = None) -> str:
    if scope and tz is not None:
        return _scoped_selector(tokens, scope, tz)
    out: list[str] = []
    brackets = 0
    prev: _Token | None = None
    for tok in tokens:
        if tok.kind == "delim" and tok.text == "[":
            brackets += 1
        elif tok.kind == "delim" and tok.text == "]":
            brackets = max(0, brackets - 1)
        is_type = (
            tok.kind == "ident"
            and brackets == 0
            and tok.value.lower() in COMPONENT_TAGS
            and not (prev is not None and prev.kind == "delim" and prev.text in ".:|#&")
        )
        out.append(f".wx-{tok.value.lower()}" if is_type else tok.text)
        prev = tok
    return "".join(out)


def _scoped_selector(tokens: list[_Token], scope: str, tz: _Tokenizer) -> str:
    """A selector of a component's style sheet: classes get the component's prefix."""
    out: list[str] = []
    prev: _Token | None = None
    for tok in tokens:
        after = prev.text if prev is not None and prev.kind == "delim" else ""
        if tok.kind == "ident" and after == ".":
            out.append(f"{scope}--{tok.value}")
        elif tok.kind == "ident" and after == ":" and tok.value.lower() == "host":
            out[-1] = f".{scope}-host"
        elif tok.kind == "func" and after == ":" and tok.value.lower() == "host":
            raise tz.error(":host(...) is not supported; use :host or classes", tok.offset)
        elif tok.kind == "ident" and after not in (":", "|", "&"):
            raise tz.error(
                f"tag selector {tok.value!r} is not allowed in a component's styles; use a class", tok.offset
            )
        elif tok.kind == "hash" or (tok.kind == "delim" and tok.text in "[*"):
            raise tz.error(
                "id, attribute and * selectors are not allowed in a component's styles; use a class",
                tok.offset,
            )
        else:
            out.append(tok.text)
        prev = tok
    return "".join(out)


def _child_context(prelude: list[_Token], context: str) -> tuple[str, bool]:
    """(context of the block that follows, whether the prelude is a selector to rewrite)."""
    first = _significant(prelude)
    if context == "frames":
        return "decls", False
    if first and first[0].kind == "at":
        name = re.sub(r"^-[a-z]+-", "", first[0].value.lower())
        if name in _RULE_AT_RULES:
            return "rules", False
        if name == "keyframes":
            return "frames", False
        return "decls", False
    return "decls", True


def compile_wxss(source: str, *, filename: str, load: Loader | None = None, scope: str = "") -> str:
    """Compile WXSS source into CSS for the renderer; every problem raises TemplateError.

    ``load`` resolves ``@import`` targets (without it ``@import`` is refused); ``scope`` compiles a
    component's style sheet."""
    return _compile_file(source, filename, load, scope, (), [0])


def _compile_file(
    source: str, filename: str, load: Loader | None, scope: str, stack: tuple[str, ...], total: list[int]
) -> str:
    total[0] += len(source)
    if total[0] > MAX_TOTAL_BYTES:
        raise TemplateError(
            f"style sheets with their imports are larger than {MAX_TOTAL_BYTES // 1024} KiB",
            filename=filename,
        )
    if len(source) > MAX_SOURCE_BYTES or len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise TemplateError(
            f"style sheet is larger than the limit of {MAX_SOURCE_BYTES // 1024} KiB", filename=filename
        )
    tz = _Tokenizer(source, filename)
    lowered = source.lower()
    for needle, message in _FORBIDDEN:
        at = lowered.find(needle)
        if at >= 0:
            raise tz.error(message, at)

    def do_import(tok: _Token, target: str) -> str:
        line, column = tz.where(tok.offset)
        if load is None:
            raise tz.error("@import is not available here", tok.offset)
        if len(stack) >= MAX_IMPORT_DEPTH:
            raise tz.error(f"@import chain is deeper than {MAX_IMPORT_DEPTH} files", tok.offset)
        resolved, text = load(filename, target, line, column)
        if resolved == filename or resolved in stack:
            raise tz.error(f"@import cycle: {' -> '.join((*stack, filename, resolved))}", tok.offset)
        return _compile_file(text, resolved, load, scope, (*stack, filename), total)

    try:
        return _compile(tz, scope, do_import)
    except TemplateError:
        raise
    except (RecursionError, ValueError, IndexError, KeyError, TypeError) as exc:  # defensive: never leak
        raise TemplateError(f"internal style compiler error: {exc!r}", filename=filename) from exc


def _import_target(prelude: list[_Token], tz: _Tokenizer) -> str:
    sig = _significant(prelude)
    if len(sig) == 2 and sig[1].kind in ("str", "url") and sig[1].value.strip():
        return sig[1].value.strip()
    raise tz.error('@import needs one file, e.g. @import "common.wxss";', sig[0].offset)


def _compile(tz: _Tokenizer, scope: str, do_import: Callable[[_Token, str], str]) -> str:
    out: list[str] = []
    contexts: list[tuple[str, int]] = [("rules", 0)]  # (kind, offset of the opening brace)
    functions: list[str] = []
    prelude: list[_Token] = []
    for tok in tz.tokens():
        importing = contexts[-1][0] == "rules" and any(
            t.kind == "at" and t.value.lower() == "import" for t in prelude[:3]
        )
        if not (importing and tok.kind == "url"):
            _check(tok, functions, tz)
        if (
            tok.kind == "at"
            and tok.value.lower() == "import"
            and (_significant(prelude) or len(contexts) > 1)
        ):
            raise tz.error("@import is only allowed at the top level, as its own statement", tok.offset)
        if tok.kind == "func":
            functions.append(tok.value)
        elif tok.kind == "delim" and tok.text == "(":
            functions.append("")
        elif tok.kind == "delim" and tok.text == ")" and functions:
            functions.pop()
        context = contexts[-1][0]
        is_open = tok.kind == "delim" and tok.text == "{"
        is_close = tok.kind == "delim" and tok.text == "}"
        if context == "decls":
            if is_open:
                contexts.append(("decls", tok.offset))
            elif is_close:
                contexts.pop()
                functions.clear()
            if tok.kind == "num" and tok.value.lower() == "rpx":
                out.append(f"calc({tok.number} * var(--rpx))")
            else:
                out.append(tok.text)
            continue
        # "rules" or "frames": collect a prelude until '{', ';' or '}'.
        if is_open:
            child, rewrite = _child_context(prelude, context)
            first = _significant(prelude)
            if first and first[0].kind == "at" and first[0].value.lower() == "import":
                raise tz.error('@import ends with ";", e.g. @import "common.wxss";', first[0].offset)
            out.append(_rewrite_selector(prelude, scope, tz) if rewrite else "".join(t.text for t in prelude))
            out.append("{")
            contexts.append((child, tok.offset))
            prelude = []
        elif is_close:
            if _significant(prelude):
                raise tz.error("expected '{' after the selector", _significant(prelude)[0].offset)
            if len(contexts) == 1:
                raise tz.error("unmatched '}'", tok.offset)
            out.append("".join(t.text for t in prelude) + "}")
            contexts.pop()
            functions.clear()
            prelude = []
        elif tok.kind == "delim" and tok.text == ";" and not functions:
            first = _significant(prelude)
            if first and first[0].kind == "at" and first[0].value.lower() == "import":
                if len(contexts) > 1:
                    raise tz.error(
                        "@import is only allowed at the top level of a style sheet", first[0].offset
                    )
                out.append(do_import(first[0], _import_target(prelude, tz)))
            elif len(contexts) == 1 and (
                stray := next(
                    (
                        t
                        for t in first
                        if t.kind == "at" and (t is not first[0] or t.value.lower() != "charset")
                    ),
                    None,
                )
            ):
                # statement at-rules other than @import/@charset: nothing a page needs, and a
                # name spelled with escapes must never reach the browser as something else
                raise tz.error(f"@{stray.value[:40]} is not supported in WXSS", stray.offset)
            else:
                out.append("".join(t.text for t in prelude) + ";")
            prelude = []
        else:
            prelude.append(tok)
    if _significant(prelude):
        raise tz.error("expected '{' after the selector", _significant(prelude)[0].offset)
    out.append("".join(t.text for t in prelude))
    if len(contexts) > 1:
        raise tz.error("'{' is never closed (missing '}')", contexts[-1][1])
    return "".join(out)
