"""Evaluation of ``{{ }}`` expression ASTs with the JS semantics of the page renderer.

The renderer (``shell/ui/renderer-core.js``) walks the same AST in JavaScript; this module is its
Python twin, used by tests and by tools that want to preview a page.  The one known difference is that
Python has a single ``None`` for both ``null`` and ``undefined`` (treated as ``undefined``).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from typing import Any

Ast = dict[str, Any]
Part = str | dict[str, Any]

_MAX_SAFE = 2**53
#: the longest text one expression may make, as in the renderer (longer results become "")
MAX_TEXT = 1 << 20
#: what JS's Number() trims: WhiteSpace and LineTerminator of ECMA-262
_JS_SPACE = " \t\n\r\f\v\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_JS_SPACE += "\u2028\u2029\u202f\u205f\u3000\ufeff"
_RADIX = {"0x": 16, "0o": 8, "0b": 2}
_RADIX_DIGITS = {16: r"[0-9a-fA-F]+", 8: r"[0-7]+", 2: r"[01]+"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fix(value: int | float) -> int | float:
    """Keep results inside the range where JS numbers are exact integers."""
    if isinstance(value, int) and abs(value) > _MAX_SAFE:
        try:
            return float(value)
        except OverflowError:  # beyond the largest double: JS gives Infinity
            return math.inf if value > 0 else -math.inf
    return value


def to_number(value: Any) -> int | float:
    """JS ``Number(value)`` (None is treated as ``undefined``, so it gives NaN)."""
    if isinstance(value, bool):
        return int(value)
    if _is_number(value):
        return _fix(value)
    if isinstance(value, str):
        text = value.strip(_JS_SPACE)
        if not text:
            return 0
        radix = _RADIX.get(text[:2].lower())
        if radix is not None and re.fullmatch(_RADIX_DIGITS[radix], text[2:]):
            return _fix(int(text[2:], radix))
        if re.fullmatch(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Infinity", text):
            number = float(text.replace("Infinity", "inf"))  # correctly rounded, as JS; never raises
            if number.is_integer() and abs(number) <= _MAX_SAFE and not (number == 0 and text[0] == "-"):
                return int(number)
            return number
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
    if value == 0:
        return "0"
    # JS Number::toString: the shortest round-trip digits (as repr), laid out by the JS rules
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    raw = whole + fraction
    digits = raw.lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(raw) - len(digits))  # value = 0.digits * 10**point
    digits = digits.rstrip("0")
    sign = "-" if value < 0 else ""
    if len(digits) <= point <= 21:
        return sign + digits + "0" * (point - len(digits))
    if 0 < point <= 21:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    power = point - 1
    body = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{body}e{'+' if power > 0 else '-'}{abs(power)}"


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
        return _capped_join("" if item is None else to_string(item) for item in value)
    return "[object Object]"


def _capped(text: str) -> str:
    return "" if len(text) > MAX_TEXT else text


def _capped_join(pieces: Iterable[str], separator: str = ",") -> str:
    out: list[str] = []
    size = 0
    for piece in pieces:
        size += len(piece) + (len(separator) if out else 0)
        if size > MAX_TEXT:
            return ""
        out.append(piece)
    return separator.join(out)


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
        product = a * b
        # a zero product keeps the sign JS gives it (0 * -5 is -0)
        return float(a) * float(b) if product == 0 and isinstance(product, int) else _fix(product)
    if op == "/":
        if b == 0:
            if a == 0 or math.isnan(a):
                return math.nan
            return math.copysign(math.inf, a) * (math.copysign(1.0, b) if isinstance(b, float) else 1.0)
        if isinstance(a, int) and isinstance(b, int) and a % b == 0:
            return _fix(a // b) if a != 0 or b > 0 else -0.0
        return a / b
    # '%': the result takes the sign of the dividend, as in JS.
    if b == 0 or math.isnan(a) or math.isnan(b) or math.isinf(a):
        return math.nan
    if math.isinf(b):
        return a
    if isinstance(a, int) and isinstance(b, int):
        rest = abs(a) % abs(b)
        return rest if a >= 0 else -rest if rest else -0.0
    return math.fmod(a, b)


def _binary(op: str, left: Any, right: Any) -> Any:
    if op == "+":
        left, right = _primitive(left), _primitive(right)
        if isinstance(left, str) or isinstance(right, str):
            return _capped(to_string(left) + to_string(right))
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
        if ast["o"] == "+":
            return number
        return -float(number) if number == 0 else -number  # -0 stays a (negative) zero, as in JS
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
        out: dict[str, Any] = {}
        for entry in ast["v"]:
            if isinstance(entry, dict):  # {"op": "spread", "a": ast}
                spread = evaluate(entry["a"], scope)
                if isinstance(spread, dict):
                    out.update(spread)
                elif isinstance(spread, (list, str)):
                    out.update({str(i): v for i, v in enumerate(spread)})
            else:
                out[entry[0]] = evaluate(entry[1], scope)
        return out
    raise ValueError(f"unknown AST node {op!r}")


def evaluate_parts(parts: list[Part], scope: dict[str, Any]) -> Any:
    """Value of an attribute or text: a single ``{{ }}`` keeps its raw value, otherwise a joined string."""
    if len(parts) == 1 and isinstance(parts[0], dict):
        return evaluate(parts[0]["e"], scope)
    return _capped_join(
        (part if isinstance(part, str) else to_display(evaluate(part["e"], scope)) for part in parts), ""
    )
