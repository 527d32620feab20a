"""The {{ }} expression parser and the Python evaluator."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vehicle_host.bundles.expr import (
    MAX_DEPTH,
    MAX_EXPRESSION_CHARS,
    evaluate,
    evaluate_parts,
    parse_expression,
    parse_mustache,
    to_display,
    truthy,
)
from vehicle_host.errors import BundleError, TemplateError


def ev(text: str, **scope: Any) -> Any:
    return evaluate(parse_expression(text), scope)


def lit(v: Any) -> dict[str, Any]:
    return {"op": "lit", "v": v}


def ident(n: str) -> dict[str, Any]:
    return {"op": "id", "n": n}


# --------------------------------------------------------------------------- AST shapes


def test_literals() -> None:
    assert parse_expression("42") == lit(42)
    assert parse_expression("3.5") == lit(3.5)
    assert parse_expression(".5") == lit(0.5)
    assert parse_expression("1e3") == lit(1000.0)
    assert parse_expression("0x1F") == lit(31)
    assert parse_expression("'it\\'s'") == lit("it's")
    assert parse_expression('"a\\n\\u00e9\\x41"') == lit("a\néA")
    assert parse_expression("true") == lit(True)
    assert parse_expression("false") == lit(False)
    assert parse_expression("null") == lit(None)
    assert parse_expression("undefined") == {"op": "lit", "v": None, "u": True}


def test_identifiers_and_members() -> None:
    assert parse_expression("speed") == ident("speed")
    assert parse_expression("$a_1") == ident("$a_1")
    assert parse_expression("a.b") == {"op": "mem", "o": ident("a"), "p": lit("b")}
    assert parse_expression("list[i + 1]") == {
        "op": "mem",
        "o": ident("list"),
        "p": {"op": "bin", "o": "+", "l": ident("i"), "r": lit(1)},
    }
    assert parse_expression("a.b[0].c")["p"] == lit("c")


def test_unary_binary_and_precedence() -> None:
    assert parse_expression("!ok") == {"op": "un", "o": "!", "a": ident("ok")}
    assert parse_expression("-x") == {"op": "un", "o": "-", "a": ident("x")}
    assert parse_expression("1 + 2 * 3") == {
        "op": "bin",
        "o": "+",
        "l": lit(1),
        "r": {"op": "bin", "o": "*", "l": lit(2), "r": lit(3)},
    }
    # left associative
    assert parse_expression("a - b - c")["l"] == {"op": "bin", "o": "-", "l": ident("a"), "r": ident("b")}
    ast = parse_expression("a || b && c === d")
    assert ast["o"] == "||"
    assert ast["r"]["o"] == "&&"
    assert ast["r"]["r"]["o"] == "==="
    assert parse_expression("(1 + 2) * 3")["o"] == "*"
    for op in ["*", "/", "%", "+", "-", "<", "<=", ">", ">=", "==", "!=", "===", "!==", "&&", "||"]:
        assert parse_expression(f"a {op} b") == {"op": "bin", "o": op, "l": ident("a"), "r": ident("b")}


def test_conditional_arrays_objects() -> None:
    assert parse_expression("c ? a : b") == {"op": "cond", "t": ident("c"), "a": ident("a"), "b": ident("b")}
    nested = parse_expression("a ? b : c ? d : e")
    assert nested["b"]["op"] == "cond"
    assert parse_expression("[a, 1]") == {"op": "arr", "v": [ident("a"), lit(1)]}
    assert parse_expression("[]") == {"op": "arr", "v": []}
    assert parse_expression("{a: 1, 'b c': x}") == {"op": "obj", "v": [["a", lit(1)], ["b c", ident("x")]]}
    assert parse_expression("{}") == {"op": "obj", "v": []}


def test_ast_is_json() -> None:
    ast = parse_expression("a ? {k: [1, 'x', null, undefined, true]} : b.c[d]")
    assert json.loads(json.dumps(ast)) == ast


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a +", "unexpected end"),
        ("f(1)", "function calls"),
        ("a.b()", "function calls"),
        ("a = 1", "assignment"),
        ("'abc", "unterminated string"),
        ("a.", "property name"),
        ("[1, 2", "expected ']'"),
        ("{a 1}", "expected ':'"),
        ("{[1]: 2}", "property name"),
        ("a b", "unexpected 'b'"),
        ("1abc", "invalid number"),
        ("a # b", "unexpected character"),
        ("'\\x4'", "escape"),
        ("1e999", "out of range"),
        ("a ? b", "expected ':'"),
    ],
)
def test_errors(text: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_expression(text, filename="p.wxml", line=3, column=5)
    assert fragment in str(info.value)
    assert info.value.filename == "p.wxml"
    assert info.value.line == 3
    assert isinstance(info.value, BundleError)


def test_error_column_points_at_problem() -> None:
    with pytest.raises(TemplateError) as info:
        parse_expression("a + #", filename="p.wxml", line=2, column=10)
    assert (info.value.line, info.value.column) == (2, 14)


def test_limits() -> None:
    long = "a+" * (MAX_EXPRESSION_CHARS // 2) + "a"
    with pytest.raises(TemplateError, match="longer than the limit"):
        parse_expression(long)
    ok = "(" * (MAX_DEPTH - 1) + "a" + ")" * (MAX_DEPTH - 1)
    assert parse_expression(ok) == ident("a")
    with pytest.raises(TemplateError, match="nests too deeply"):
        parse_expression("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(TemplateError, match="nests too deeply"):
        parse_expression("!" * 100 + "a")
    with pytest.raises(TemplateError, match="nests too deeply"):
        parse_expression("+".join(["a"] * 40))
    with pytest.raises(TemplateError, match="nests too deeply"):
        parse_expression("[" * 900 + "]" * 900)


# --------------------------------------------------------------------------- mustache


def test_mustache_split() -> None:
    parts = parse_mustache("Count: {{n + 1}} km")
    assert parts == ["Count: ", {"e": {"op": "bin", "o": "+", "l": ident("n"), "r": lit(1)}}, " km"]
    assert parse_mustache("{{a}}{{b}}") == [{"e": ident("a")}, {"e": ident("b")}]
    assert parse_mustache("plain") == ["plain"]
    assert parse_mustache("") == []
    assert parse_mustache("{{ {a: 1} }}") == [{"e": {"op": "obj", "v": [["a", lit(1)]]}}]
    assert parse_mustache("{{ '}}' }}!") == [{"e": lit("}}")}, "!"]
    assert parse_mustache("a }} b") == ["a }} b"]


def test_mustache_errors_have_positions() -> None:
    with pytest.raises(TemplateError, match="unterminated") as info:
        parse_mustache("ab {{ x", filename="p.wxml", line=4, column=3)
    assert (info.value.line, info.value.column) == (4, 6)
    with pytest.raises(TemplateError) as info:
        parse_mustache("x\n  {{ a + }}", filename="p.wxml", line=4, column=3)
    assert info.value.line == 5
    with pytest.raises(TemplateError, match="empty"):
        parse_mustache("{{}}")


# --------------------------------------------------------------------------- evaluation


def test_evaluate_basics() -> None:
    assert ev("a + b", a=1, b=2) == 3
    assert ev("'n=' + n", n=5) == "n=5"
    assert ev("a + 'x'", a=None) == "undefinedx"
    assert ev("7 / 2") == 3.5
    assert ev("6 / 2") == 3
    assert ev("-7 % 3") == -1
    assert ev("7.5 % 2") == 1.5
    assert ev("1 / 0") == math.inf
    assert math.isnan(ev("0 / 0"))
    assert math.isnan(ev("x * 2"))
    assert ev("'3' * '4'") == 12
    assert ev("'5' - 2") == 3
    assert ev("true + 1") == 2
    assert ev("[1, 2] + ''") == "1,2"
    assert ev("{} + ''") == "[object Object]"
    assert ev("0.1 + 0.2 + ''") == "0.30000000000000004"
    assert ev("1.0 + ''") == "1"


def test_evaluate_members() -> None:
    scope = {"car": {"speed": 88, "tags": ["a", "b"]}, "i": 1}
    assert ev("car.speed", **scope) == 88
    assert ev("car.tags[i]", **scope) == "b"
    assert ev("car.tags.length", **scope) == 2
    assert ev("car.tags['1']", **scope) == "b"
    assert ev("car.missing.deeper", **scope) is None
    assert ev("nothing.x") is None
    assert ev("'abc'.length") == 3
    assert ev("'abc'[1]") == "b"
    assert ev("car.tags[5]", **scope) is None
    assert ev("car['speed']", **scope) == 88


def test_evaluate_comparisons_and_logic() -> None:
    assert ev("1 == '1'") is True
    assert ev("1 === '1'") is False
    assert ev("null == undefined") is True
    assert ev("0 == false") is True
    assert ev("1 === true") is False
    assert ev("'' != 0") is False
    assert ev("'b' > 'a'") is True
    assert ev("2 > '10'") is False
    assert ev("'2' > '10'") is True
    assert ev("x < 1") is False
    assert ev("a && b", a=0, b=5) == 0
    assert ev("a || b", a=0, b=5) == 5
    assert ev("a || b", a="x", b=5) == "x"
    assert ev("!list.length", list=[]) is True
    assert ev("ok ? 'yes' : 'no'", ok=[]) == "yes"
    assert ev("{a: x, b: [x, 2]}", x=1) == {"a": 1, "b": [1, 2]}


def test_short_circuit_does_not_evaluate_right() -> None:
    # The right side would only be None anyway; check by shape: && with falsy left returns left.
    assert ev("false && missing.x") is False
    assert ev("true || missing.x") is True


def test_truthy_and_display() -> None:
    falsy: list[Any] = [None, False, 0, 0.0, math.nan, ""]
    true_values: list[Any] = [True, 1, -1, "0", "false", [], {}]
    assert not any(truthy(value) for value in falsy)
    assert all(truthy(value) for value in true_values)
    assert to_display(None) == ""
    assert to_display(2.0) == "2"
    assert to_display(True) == "true"


def test_evaluate_parts() -> None:
    assert evaluate_parts(parse_mustache("{{n}}"), {"n": 3}) == 3
    assert evaluate_parts(parse_mustache("n={{n}}{{missing}}"), {"n": 3}) == "n=3"
    assert evaluate_parts(parse_mustache("x"), {}) == "x"


# --------------------------------------------------------------------------- hypothesis

ints = st.integers(min_value=-(2**31), max_value=2**31)


@given(ints, ints)
def test_addition_round_trip(a: int, b: int) -> None:
    assert evaluate(parse_expression("a + b"), {"a": a, "b": b}) == a + b
    assert evaluate(parse_expression(f"{abs(a)} - {abs(b)}"), {}) == abs(a) - abs(b)
    product = a * b if abs(a * b) <= 2**53 else float(a * b)  # JS numbers are doubles
    assert evaluate(parse_expression("a * b"), {"a": a, "b": b}) == product
    assert evaluate(parse_expression("a < b ? a : b"), {"a": a, "b": b}) == min(a, b)
    assert evaluate(parse_expression("a === b"), {"a": a, "b": b}) is (a == b)


@given(ints, ints.filter(lambda v: v != 0))
def test_modulo_and_division_follow_js(a: int, b: int) -> None:
    rest = evaluate(parse_expression("a % b"), {"a": a, "b": b})
    assert rest == math.fmod(a, b)
    assert evaluate(parse_expression("a / b"), {"a": a, "b": b}) == pytest.approx(a / b)


@given(st.text(max_size=40))
def test_string_literal_round_trip(text: str) -> None:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    assert evaluate(parse_expression(f"'{escaped}' + ''"), {}) == text


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_parse_expression_only_raises_template_error(text: str) -> None:
    try:
        ast = parse_expression(text)
    except TemplateError:
        return
    json.dumps(ast)
    evaluate(ast, {"a": 1, "b": [1, 2], "c": {"d": "x"}})


_EXPR_ALPHABET = st.sampled_from([*"ab1.0'\"[](){}!?:+-*/%<>=&|, \\n", "{{", "}}", "undefined", "null"])


@settings(max_examples=300)
@given(st.lists(_EXPR_ALPHABET, max_size=60).map("".join))
def test_expression_like_text_only_raises_template_error(text: str) -> None:
    try:
        ast = parse_expression(text)
    except TemplateError:
        return
    evaluate(ast, {"a": 1, "b": "s"})


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=200), st.lists(_EXPR_ALPHABET, max_size=60).map("".join)))
def test_parse_mustache_only_raises_template_error(text: str) -> None:
    try:
        parts = parse_mustache(text, filename="x.wxml", line=1, column=1)
    except TemplateError as exc:
        assert "internal" not in str(exc)
        return
    assert all(part for part in parts)
    evaluate_parts(parts, {"a": 0})
