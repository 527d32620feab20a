"""Expressions inside WXML ``{{ }}``: a small JS-like subset parsed into a JSON-able AST.

Grammar (lowest precedence first)::

    cond    := or ('?' cond ':' cond)?
    or      := and ('||' and)*
    and     := eq ('&&' eq)*
    eq      := rel (('==' | '!=' | '===' | '!==') rel)*
    rel     := add (('<' | '<=' | '>' | '>=') add)*
    add     := mul (('+' | '-') mul)*
    mul     := unary (('*' | '/' | '%') unary)*
    unary   := ('!' | '-' | '+') unary | postfix
    postfix := primary ('.' name | '[' cond ']')*
    primary := number | string | true | false | null | undefined | name
             | '(' cond ')' | '[' (cond (',' cond)*)? ']' | '{' (key ':' cond (',' ...)*)? '}'

Object literals also take shorthand (``{a}``) and spread (``{...item, i}``) entries, as WeChat allows in
``<template data="{{...item}}">``; a spread entry is ``{"op": "spread", "a": ast}`` in the ``obj`` list.

There are no calls and no assignments, so an expression can only read data.  Evaluation (the Python twin
of the renderer's) lives in :mod:`vehicle_host.bundles.expr_eval` and is re-exported here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from vehicle_host.bundles.expr_eval import (
    Ast,
    Part,
    evaluate,
    evaluate_parts,
    loose_equals,
    member,
    strict_equals,
    to_display,
    to_number,
    to_string,
    truthy,
)
from vehicle_host.errors import TemplateError

__all__ = [
    "Ast",
    "Part",
    "evaluate",
    "evaluate_parts",
    "find_mustache_end",
    "loose_equals",
    "member",
    "parse_expression",
    "parse_mustache",
    "parse_object_body",
    "strict_equals",
    "to_display",
    "to_number",
    "to_string",
    "truthy",
]

MAX_EXPRESSION_CHARS = 2_000
MAX_DEPTH = 32

_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_PUNCT = ("...", "===", "!==", "==", "!=", "<=", ">=", "&&", "||")
_DIGITS = "0123456789"
_SINGLE = "+-*/%<>!?:.,[](){}"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_KEYWORDS: dict[str, Ast] = {
    "true": {"op": "lit", "v": True},
    "false": {"op": "lit", "v": False},
    "null": {"op": "lit", "v": None},
    "undefined": {"op": "lit", "v": None, "u": True},
}
_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (("||",), ("&&",), ("==", "!=", "===", "!=="))
_BINARY_LEVELS += (("<", "<=", ">", ">="), ("+", "-"), ("*", "/", "%"))
_MAX_SAFE = 2**53


class _Pos:
    """Maps offsets in a piece of text to file line/column, given where the text starts."""

    def __init__(self, text: str, filename: str, line: int, column: int) -> None:
        self.text = text
        self.filename = filename
        self.line = line
        self.column = column
        self._last = (0, line, column)  # (offset, line, column) of the last lookup

    def where(self, offset: int) -> tuple[int, int]:
        """Line and column of ``offset`` (0 where unknown). Lookups that move forward only scan the
        text in between, so walking a long text costs linear time, not quadratic."""
        offset = max(0, min(offset, len(self.text)))
        start, line, column = self._last if offset >= self._last[0] else (0, self.line, self.column)
        newlines = self.text.count("\n", start, offset)
        if newlines:
            line = line + newlines if line else 0
            column = offset - self.text.rfind("\n", start, offset)
        else:
            column = column + offset - start if column else 0
        self._last = (offset, line, column)
        return line, column

    def error(self, message: str, offset: int) -> TemplateError:
        line, column = self.where(offset)
        return TemplateError(message, filename=self.filename, line=line, column=column)


def _tokenize(text: str, pos: _Pos) -> list[tuple[str, Any, int]]:
    """Split into (kind, value, offset) tokens; kind is num, str, name, punct or end."""
    tokens: list[tuple[str, Any, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n\f\v\u00a0":
            i += 1
            continue
        if ch in _DIGITS or (ch == "." and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER.match(text, i)
            assert m is not None
            raw = m.group(0)
            if i + len(raw) < n and (text[i + len(raw)].isalnum() or text[i + len(raw)] in "_$"):
                raise pos.error(f"invalid number {raw + text[i + len(raw)]!r}", i)
            tokens.append(("num", _number(raw, pos, i), i))
            i += len(raw)
            continue
        if ch in "'\"":
            value, i2 = _string(text, i, pos)
            tokens.append(("str", value, i))
            i = i2
            continue
        m = _NAME.match(text, i)
        if m:
            tokens.append(("name", m.group(0), i))
            i = m.end()
            continue
        for p in _PUNCT:
            if text.startswith(p, i):
                tokens.append(("punct", p, i))
                i += len(p)
                break
        else:
            if ch not in _SINGLE:
                if ch == "=":
                    raise pos.error("assignment is not allowed in expressions", i)
                raise pos.error(f"unexpected character {ch!r}", i)
            tokens.append(("punct", ch, i))
            i += 1
    tokens.append(("end", None, n))
    return tokens


def _number(raw: str, pos: _Pos, offset: int) -> int | float:
    if raw[:2] in ("0x", "0X"):
        value: int | float = int(raw, 16)
    elif any(c in raw for c in ".eE"):
        value = float(raw)
    else:
        value = int(raw)
    if isinstance(value, int) and value > _MAX_SAFE:
        try:
            value = float(value)
        except OverflowError:  # more digits than a double holds
            value = math.inf
    if math.isinf(value):
        raise pos.error(f"number {raw} is out of range", offset)
    return value


def _string(text: str, start: int, pos: _Pos) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\n":
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            break
        esc = text[i + 1]
        if esc in ("x", "u"):
            width = 2 if esc == "x" else 4
            digits = text[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise pos.error(f"invalid \\{esc} escape in string", i)
            code = int(digits, 16)
            out.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "\ufffd")
            i += 2 + width
            continue
        if esc == "\n":
            i += 2
            continue
        out.append(_ESCAPES.get(esc, esc))
        i += 2
    raise pos.error("unterminated string", start)


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any, int]], pos: _Pos) -> None:
        self.tokens = tokens
        self.i = 0
        self.pos = pos
        self.depth = 0

    def peek(self) -> tuple[str, Any, int]:
        return self.tokens[self.i]

    def at(self, punct: str) -> bool:
        kind, value, _ = self.tokens[self.i]
        return kind == "punct" and value == punct

    def expect(self, punct: str) -> None:
        if not self.at(punct):
            raise self.unexpected(f"expected {punct!r}")
        self.i += 1

    def unexpected(self, hint: str = "") -> TemplateError:
        kind, value, offset = self.peek()
        what = "end of expression" if kind == "end" else repr(value) if kind != "str" else "string"
        suffix = f" ({hint})" if hint else ""
        return self.pos.error(f"unexpected {what}{suffix}", offset)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.pos.error(f"expression nests too deeply (limit {MAX_DEPTH})", self.peek()[2])

    def cond(self) -> Ast:
        self.enter()
        test = self.binary(0)
        if self.at("?"):
            self.i += 1
            yes = self.cond()
            self.expect(":")
            no = self.cond()
            test = {"op": "cond", "t": test, "a": yes, "b": no}
        self.depth -= 1
        return test

    def binary(self, level: int) -> Ast:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        ops = _BINARY_LEVELS[level]
        left = self.binary(level + 1)
        while True:
            kind, value, _ = self.peek()
            if kind != "punct" or value not in ops:
                return left
            self.i += 1
            right = self.binary(level + 1)
            left = {"op": "bin", "o": value, "l": left, "r": right}

    def unary(self) -> Ast:
        kind, value, _ = self.peek()
        if kind == "punct" and value in ("!", "-", "+"):
            self.i += 1
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return {"op": "un", "o": value, "a": operand}
        return self.postfix()

    def postfix(self) -> Ast:
        node = self.primary()
        while True:
            if self.at("."):
                self.i += 1
                kind, value, _ = self.peek()
                if kind != "name":
                    raise self.unexpected("expected a property name after '.'")
                self.i += 1
                node = {"op": "mem", "o": node, "p": {"op": "lit", "v": value}}
            elif self.at("["):
                self.i += 1
                prop = self.cond()
                self.expect("]")
                node = {"op": "mem", "o": node, "p": prop}
            elif self.at("("):
                raise self.unexpected("function calls are not allowed in expressions")
            else:
                return node

    def primary(self) -> Ast:
        kind, value, _ = self.peek()
        if kind in ("num", "str"):
            self.i += 1
            return {"op": "lit", "v": value}
        if kind == "name":
            self.i += 1
            if value in _KEYWORDS:
                return dict(_KEYWORDS[value])
            return {"op": "id", "n": value}
        if self.at("("):
            self.i += 1
            inner = self.cond()
            self.expect(")")
            return inner
        if self.at("["):
            return self.array()
        if self.at("{"):
            return self.object()
        raise self.unexpected()

    def array(self) -> Ast:
        return {"op": "arr", "v": self.listing("]", self.cond)}

    def object(self) -> Ast:
        return {"op": "obj", "v": self.listing("}", self.entry)}

    def entry(self) -> list[Any] | Ast:
        if self.at("..."):
            self.i += 1
            return {"op": "spread", "a": self.cond()}
        kind, value, _ = self.peek()
        if kind not in ("name", "str", "num"):
            raise self.unexpected("expected a property name or string key")
        self.i += 1
        key = value if kind != "num" else _key_text(value)
        if kind == "name" and (self.at(",") or self.at("}")):
            if value in _KEYWORDS:
                raise self.unexpected("expected ':' after the key")
            return [key, {"op": "id", "n": value}]  # shorthand {a} is {a: a}
        self.expect(":")
        return [key, self.cond()]

    def listing(self, close: str, item: Callable[[], Any]) -> list[Any]:
        """Comma-separated items after an opening bracket, up to ``close`` (a trailing comma is fine)."""
        self.i += 1
        items: list[Any] = []
        while not self.at(close):
            items.append(item())
            if not self.at(","):
                break
            self.i += 1
        self.expect(close)
        return items


def _key_text(value: int | float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _ast_depth(ast: Ast) -> int:
    deepest, stack = 0, list[tuple[Any, int]]([(ast, 1)])
    while stack:
        node, depth = stack.pop()
        if isinstance(node, list):  # items of arr, [key, value] entries of obj
            stack += [(item, depth) for item in node]
        elif isinstance(node, dict):
            deepest = max(deepest, depth)
            stack += [(child, depth + 1) for child in node.values() if isinstance(child, (dict, list))]
    return deepest


def parse_expression(text: str, *, filename: str = "", line: int = 0, column: int = 0) -> Ast:
    """Parse the text of one ``{{ }}`` (without the braces) into an AST; raises TemplateError."""
    pos = _Pos(text, filename, line, column)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise pos.error(f"expression is longer than the limit of {MAX_EXPRESSION_CHARS} characters", 0)
    if not text.strip():
        raise pos.error("empty expression in {{ }}", 0)
    parser = _Parser(_tokenize(text, pos), pos)
    ast = parser.cond()
    if parser.peek()[0] != "end":
        raise parser.unexpected()
    if _ast_depth(ast) > MAX_DEPTH:
        raise pos.error(f"expression nests too deeply (limit {MAX_DEPTH})", 0)
    return ast


def parse_object_body(text: str, *, filename: str = "", line: int = 0, column: int = 0) -> Ast:
    """Parse the body of an object literal without its braces (``a: 1, ...b, c``), as in WeChat's
    ``<template data="{{...}}">``; returns an ``obj`` AST.  Raises TemplateError."""
    pos = _Pos(text, filename, line, column)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise pos.error(f"expression is longer than the limit of {MAX_EXPRESSION_CHARS} characters", 0)
    tokens = _tokenize(text, pos)
    end = tokens[-1][2]
    parser = _Parser([("punct", "{", 0), *tokens[:-1], ("punct", "}", end), ("end", None, end)], pos)
    ast = parser.object()
    if parser.peek()[0] != "end":
        raise parser.unexpected()
    if _ast_depth(ast) > MAX_DEPTH:
        raise pos.error(f"expression nests too deeply (limit {MAX_DEPTH})", 0)
    return ast


def find_mustache_end(text: str, start: int) -> int:
    """Offset of the ``}}`` closing the mustache whose body starts at ``start``, or -1."""
    i, n, braces = start, len(text), 0
    while i < n:
        ch = text[i]
        if ch in "'\"":
            i += 1
            while i < n and text[i] != ch and text[i] != "\n":
                i += 2 if text[i] == "\\" else 1
            i += 1
            continue
        if ch == "{":
            braces += 1
        elif ch == "}":
            if braces == 0 and text.startswith("}}", i):
                return i
            braces = max(0, braces - 1)
        i += 1
    return -1


def parse_mustache(text: str, *, filename: str = "", line: int = 0, column: int = 0) -> list[Part]:
    """Split text with ``{{ }}`` into literal strings and ``{"e": ast}`` parts (empty literals dropped)."""
    pos = _Pos(text, filename, line, column)
    parts: list[Part] = []
    i = 0
    while True:
        start = text.find("{{", i)
        if start < 0:
            if i < len(text):
                parts.append(text[i:])
            return parts
        if start > i:
            parts.append(text[i:start])
        end = find_mustache_end(text, start + 2)
        if end < 0:
            raise pos.error("unterminated {{ (missing }})", start)
        body_line, body_column = pos.where(start + 2)
        ast = parse_expression(text[start + 2 : end], filename=filename, line=body_line, column=body_column)
        parts.append({"e": ast})
        i = end + 2
