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

There are no calls and no assignments, so an expression can only read data.  ``evaluate`` runs an AST
with the same JS-ish semantics as the page renderer (``shell/ui/renderer.js``); the one known difference
is that Python has a single ``None`` for both ``null`` and ``undefined`` (treated as ``undefined``).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any

from vehicle_host.errors import TemplateError

MAX_EXPRESSION_CHARS = 2_000
MAX_DEPTH = 32

Ast = dict[str, Any]
Part = str | dict[str, Any]

_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_PUNCT = ("===", "!==", "==", "!=", "<=", ">=", "&&", "||")
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

    def error(self, message: str, offset: int) -> TemplateError:
        offset = max(0, min(offset, len(self.text)))
        before = self.text[:offset]
        newlines = before.count("\n")
        if newlines:
            line = self.line + newlines if self.line else 0
            column = offset - before.rfind("\n")
        else:
            line = self.line
            column = self.column + offset if self.column else 0
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
        value = float(value)
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

    def entry(self) -> list[Any]:
        kind, value, _ = self.peek()
        if kind not in ("name", "str"):
            raise self.unexpected("expected a property name or string key")
        self.i += 1
        self.expect(":")
        return [value, self.cond()]

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
        body_pos = pos.error("", start + 2)
        ast = parse_expression(
            text[start + 2 : end], filename=filename, line=body_pos.line, column=body_pos.column
        )
        parts.append({"e": ast})
        i = end + 2


# --------------------------------------------------------------------------- evaluation


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fix(value: int | float) -> int | float:
    """Keep results inside the range where JS numbers are exact integers."""
    if isinstance(value, int) and abs(value) > _MAX_SAFE:
        return float(value)
    return value


def to_number(value: Any) -> int | float:
    """JS ``Number(value)`` (None is treated as ``undefined``, so it gives NaN)."""
    if isinstance(value, bool):
        return int(value)
    if _is_number(value):
        return _fix(value)
    if isinstance(value, str):
        text = value.strip(" \t\n\r\f\v\u00a0\ufeff")
        if not text:
            return 0
        try:
            if re.fullmatch(r"[+-]?[0-9]+", text):
                return _fix(int(text))
            if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
                return _fix(int(text, 16))
            if re.fullmatch(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Infinity", text):
                return float(text.replace("Infinity", "inf"))
        except (ValueError, OverflowError):
            return math.nan
        return math.nan
    if isinstance(value, list):
        return to_number(to_string(value))
    return math.nan


def _number_text(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa.removesuffix('.0')}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


def to_string(value: Any) -> str:
    """JS ``String(value)`` (None gives ``"undefined"``)."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return _number_text(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if item is None else to_string(item) for item in value)
    return "[object Object]"


def to_display(value: Any) -> str:
    """How a value shows inside text or an attribute: None renders as the empty string."""
    return "" if value is None else to_string(value)


def truthy(value: Any) -> bool:
    """JS truthiness: None, false, 0, NaN and "" are false; everything else (even [] and {}) is true."""
    if value is None or value is False:
        return False
    if _is_number(value):
        return not (value == 0 or (isinstance(value, float) and math.isnan(value)))
    if isinstance(value, str):
        return value != ""
    return True


def _primitive(value: Any) -> Any:
    return to_string(value) if isinstance(value, (list, dict)) else value


def _js_type(value: Any) -> str:
    if value is None or isinstance(value, (bool, str)):
        return {type(None): "undefined", bool: "boolean", str: "string"}[type(value)]
    return "number" if _is_number(value) else "object"


def strict_equals(left: Any, right: Any) -> bool:
    if _js_type(left) != _js_type(right):
        return False
    if isinstance(left, (list, dict)):
        return left is right
    return bool(left == right)


def loose_equals(left: Any, right: Any) -> bool:
    lt, rt = _js_type(left), _js_type(right)
    if lt == rt:
        return strict_equals(left, right)
    if left is None or right is None:
        return False
    if lt == "boolean":
        return loose_equals(int(left), right)
    if rt == "boolean":
        return loose_equals(left, int(right))
    if lt == "object":
        return loose_equals(_primitive(left), right)
    if rt == "object":
        return loose_equals(left, _primitive(right))
    return bool(to_number(left) == to_number(right))


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge
}  # fmt: skip


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _primitive(left), _primitive(right)
    if not (isinstance(left, str) and isinstance(right, str)):
        left, right = to_number(left), to_number(right)
        if math.isnan(left) or math.isnan(right):
            return False
    return bool(_COMPARE[op](left, right))


def _arith(op: str, left: Any, right: Any) -> int | float:
    a, b = to_number(left), to_number(right)
    if op == "-":
        return _fix(a - b)
    if op == "*":
        return _fix(a * b)
    if op == "/":
        if b == 0:
            if a == 0 or math.isnan(a):
                return math.nan
            return math.copysign(math.inf, a) * (math.copysign(1.0, b) if isinstance(b, float) else 1.0)
        if isinstance(a, int) and isinstance(b, int) and a % b == 0:
            return _fix(a // b)
        return a / b
    # '%': the result takes the sign of the dividend, as in JS.
    if b == 0 or math.isnan(a) or math.isnan(b) or math.isinf(a):
        return math.nan
    if math.isinf(b):
        return a
    if isinstance(a, int) and isinstance(b, int):
        rest = abs(a) % abs(b)
        return rest if a >= 0 else -rest
    return math.fmod(a, b)


def _binary(op: str, left: Any, right: Any) -> Any:
    if op == "+":
        left, right = _primitive(left), _primitive(right)
        if isinstance(left, str) or isinstance(right, str):
            return to_string(left) + to_string(right)
        return _fix(to_number(left) + to_number(right))
    if op in ("-", "*", "/", "%"):
        return _arith(op, left, right)
    if op in _COMPARE:
        return _compare(op, left, right)
    if op in ("==", "!="):
        return loose_equals(left, right) == (op == "==")
    if op in ("===", "!=="):
        return strict_equals(left, right) == (op == "===")
    raise ValueError(f"unknown operator {op!r}")


def member(obj: Any, prop: Any) -> Any:
    """``obj[prop]`` reading own data only; anything missing (or a member of None) gives None."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(to_string(prop))
    if isinstance(obj, (list, str)):
        key = to_string(prop)
        if key == "length":
            return len(obj)
        if re.fullmatch(r"0|[1-9][0-9]*", key):
            index = int(key)
            return obj[index] if index < len(obj) else None
    return None


def evaluate(ast: Ast, scope: dict[str, Any]) -> Any:
    """Evaluate an AST against a scope of variables with JS-ish semantics."""
    op = ast["op"]
    if op == "lit":
        return ast["v"]
    if op == "id":
        return scope.get(ast["n"])
    if op == "mem":
        return member(evaluate(ast["o"], scope), evaluate(ast["p"], scope))
    if op == "un":
        value = evaluate(ast["a"], scope)
        if ast["o"] == "!":
            return not truthy(value)
        number = to_number(value)
        return number if ast["o"] == "+" else -number
    if op == "bin":
        left = evaluate(ast["l"], scope)
        if ast["o"] == "&&":
            return evaluate(ast["r"], scope) if truthy(left) else left
        if ast["o"] == "||":
            return left if truthy(left) else evaluate(ast["r"], scope)
        return _binary(ast["o"], left, evaluate(ast["r"], scope))
    if op == "cond":
        return evaluate(ast["a"] if truthy(evaluate(ast["t"], scope)) else ast["b"], scope)
    if op == "arr":
        return [evaluate(item, scope) for item in ast["v"]]
    if op == "obj":
        return {key: evaluate(value, scope) for key, value in ast["v"]}
    raise ValueError(f"unknown AST node {op!r}")


def evaluate_parts(parts: list[Part], scope: dict[str, Any]) -> Any:
    """Value of an attribute or text: a single ``{{ }}`` keeps its raw value, otherwise a joined string."""
    if len(parts) == 1 and isinstance(parts[0], dict):
        return evaluate(parts[0]["e"], scope)
    return "".join(
        part if isinstance(part, str) else to_display(evaluate(part["e"], scope)) for part in parts
    )
