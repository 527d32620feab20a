"""Fuzzing the ``{{ }}`` expression parser and evaluator.

* Any text parses to an AST or raises TemplateError; any AST from the parser evaluates (against any data)
  to a value without raising, touching each AST node at most once (no loops: time is linear in the
  expression), and the AST stays within the nesting limit.
* Expressions generated from the grammar are compared with a real JS engine (QuickJS): the expression
  text evaluated as JavaScript is the reference, and both evaluators of our AST must agree with it:
  the Python twin (``expr_eval``) and the page renderer's own (``shell/ui/renderer-core.js``).
  Strings stay in the Basic Multilingual Plane and ``null`` is left out: Python has one ``None`` for
  ``null`` and ``undefined`` and counts characters, not UTF-16 units (documented differences).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import quickjs
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.fuzzing import fuzz, mutated_text, seed_files
from vehicle_host.bundles import expr_eval
from vehicle_host.bundles.expr import (
    MAX_DEPTH,
    MAX_EXPRESSION_CHARS,
    evaluate,
    evaluate_parts,
    parse_expression,
    parse_mustache,
    parse_object_body,
)
from vehicle_host.errors import TemplateError

NAMES = ["a", "b", "c", "d", "e"]
ALPHABET = "ab01 .e-+xX\t\u00a0\u2028\u3000é中"

# -- data -----------------------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-(2**64), 2**64),
    st.floats(),
    st.sampled_from([0.0, -0.0, 1e21, 1e-7, 0.000001, 123.456, 2.0**53, 2.0**53 + 2, 5e-324]),
)
strings = st.text(ALPHABET, max_size=6) | st.sampled_from(
    ["", " 12 ", "0x1F", "0b101", "1e3", "-0", "Infinity"]
)
data_values = st.recursive(
    numbers | strings | st.booleans(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from([*NAMES, "0", "1"]), children)
    ),
    max_leaves=10,
)
scopes = st.fixed_dictionaries({name: data_values for name in NAMES})


def js_literal(value: Any) -> str:
    """A JS source literal of a Python data value (NaN, Infinity and -0 included)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)  # JS reads a long decimal literal as the nearest double, as float() does
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return "-0" if value == 0 and math.copysign(1, value) < 0 else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ",".join(js_literal(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ",".join(f"{json.dumps(k)}:{js_literal(v)}" for k, v in value.items()) + "}"


def as_js_data(value: Any) -> Any:
    """Data as the page receives it: numbers are doubles, so integers beyond 2**53 are rounded."""
    if isinstance(value, list):
        return [as_js_data(v) for v in value]
    if isinstance(value, dict):
        return {k: as_js_data(v) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return value


# -- expressions from the grammar ---------------------------------------------------------------------


def _quote(text: str, quote: str) -> str:
    out = []
    for ch in text:
        if ch in (quote, "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch in "\u2028\u3000":
            out.append(f"\\u{ord(ch):04x}")
        elif ch == "é":
            out.append("\\xe9")
        else:
            out.append(ch)
    return quote + "".join(out) + quote


number_literals = st.one_of(
    st.integers(0, 10**6).map(str),
    st.sampled_from(["0.5", ".25", "1e3", "2E-2", "0x1f", "0XFF", "9007199254740993", "1e21", "3.", "0"]),
)
Pair = tuple[str, str]  # (our expression text, the same in plain JS)


def _same(text: str) -> Pair:
    return text, text


atoms = st.one_of(
    st.sampled_from(NAMES),
    number_literals,
    st.builds(_quote, st.text(ALPHABET, max_size=5), st.sampled_from(["'", '"'])),
    st.sampled_from(["true", "false", "undefined"]),
).map(_same)


def _each(items: list[Pair], sep: str = ", ") -> Pair:
    return sep.join(i[0] for i in items), sep.join(i[1] for i in items)


def _compound(children: st.SearchStrategy[Pair]) -> st.SearchStrategy[Pair]:
    """Compound expressions; member access is written ``m(o, p)`` on the JS side: reading a member of
    ``undefined`` gives ``undefined`` and only own data is read (the renderer's documented rule)."""
    binary = st.sampled_from(
        ["+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "===", "!==", "&&", "||"]
    )
    member = st.sampled_from([*NAMES, "length"])
    entry = st.one_of(
        st.builds(
            lambda k, v: (f"{k}: {v[0]}", f"{k}: {v[1]}"), st.sampled_from([*NAMES, "'k'", "1"]), children
        ),
        st.sampled_from(NAMES).map(_same),
        children.map(lambda v: (f"...({v[0]})", f"...sp({v[1]})")),
    )
    return st.one_of(
        st.builds(
            lambda a, op, b: (f"{a[0]} {op} {b[0]}", f"{a[1]} {op} {b[1]}"), children, binary, children
        ),
        st.builds(lambda op, a: (f"{op} {a[0]}", f"{op} {a[1]}"), st.sampled_from(["!", "-", "+"]), children),
        st.builds(
            lambda t, a, b: (f"{t[0]} ? {a[0]} : {b[0]}", f"{t[1]} ? {a[1]} : {b[1]}"),
            children,
            children,
            children,
        ),
        children.map(lambda a: (f"({a[0]})", f"({a[1]})")),
        st.builds(lambda a, n: (f"({a[0]}).{n}", f"m({a[1]}, '{n}')"), children, member),
        st.builds(lambda n, k: (f"{n}.{k}", f"m({n}, '{k}')"), st.sampled_from(NAMES), member),
        st.builds(lambda a, p: (f"({a[0]})[{p[0]}]", f"m({a[1]}, {p[1]})"), children, children),
        st.lists(children, max_size=3).map(lambda items: (f"[{_each(items)[0]}]", f"[{_each(items)[1]}]")),
        st.lists(entry, max_size=3).map(
            lambda items: (f"({{{_each(items)[0]}}})", f"({{{_each(items)[1]}}})")
        ),
    )


expressions = st.recursive(atoms, _compound, max_leaves=12)

# -- the JS side ----------------------------------------------------------------------------------------

DESCRIBE = """
function m(o, p) {
  if (o === null || o === undefined) return undefined;
  var k = String(p);
  if (Array.isArray(o) || typeof o === 'string') {
    if (k === 'length') return o.length;
    return /^(0|[1-9][0-9]*)$/.test(k) ? o[Number(k)] : undefined;
  }
  return typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
}
// QuickJS spreads a string into {} (browsers, and the spec, give its characters by index)
function sp(v) { return typeof v === 'string' ? Object.assign({}, v.split('')) : v; }
function describe(v) {
  if (Array.isArray(v)) return ['array', v.map(describe)];
  if (v !== null && typeof v === 'object')
    return ['object', Object.keys(v).sort().map(function (k) { return [k, describe(v[k])]; })];
  return [typeof v, String(v), typeof v === 'number' && v === 0 && 1 / v < 0];
}
"""


def describe(value: Any) -> Any:
    """The Python twin's value described as the JS ``describe`` above describes a JS value."""
    if isinstance(value, list):
        return ["array", [describe(v) for v in value]]
    if isinstance(value, dict):
        return ["object", [[k, describe(value[k])] for k in sorted(value)]]
    negative_zero = isinstance(value, float) and value == 0 and math.copysign(1, value) < 0
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return [expr_eval._js_type(value), expr_eval.to_string(value), is_number and negative_zero]


_JS: list[quickjs.Context] = []


def js() -> quickjs.Context:
    if not _JS:
        ui = resources.files("vehicle_host.shell").joinpath("ui")
        core = ui.joinpath("renderer-core.js").read_text(encoding="utf-8")
        ctx = quickjs.Context()
        ctx.eval(f"var renderer = (function () {{ 'use strict';\n{core}\nreturn {{ evaluate }}; }})();")
        ctx.eval(DESCRIBE)
        _JS.append(ctx)
    return _JS[0]


def js_run(source: str) -> Any:
    return json.loads(js().eval(f"JSON.stringify((function () {{ {source} }})())"))


# -- properties -----------------------------------------------------------------------------------------


def _nodes(ast: Any) -> int:
    if isinstance(ast, list):
        return sum(_nodes(item) for item in ast)
    if isinstance(ast, dict):
        return 1 + sum(_nodes(v) for v in ast.values() if isinstance(v, dict | list))
    return 0


@contextmanager
def counting_evaluate() -> Iterator[list[int]]:
    """Count every call of the evaluator (it recurses through the module's global name)."""
    calls = [0]
    real = expr_eval.evaluate

    def counted(ast: expr_eval.Ast, scope: dict[str, Any]) -> Any:
        calls[0] += 1
        return real(ast, scope)

    expr_eval.evaluate = counted
    try:
        yield calls
    finally:
        expr_eval.evaluate = real


def _evaluate_bounded(ast: expr_eval.Ast, scope: dict[str, Any]) -> Any:
    json.dumps(ast)  # the AST is plain data (it travels to the renderer in page.open)
    with counting_evaluate() as calls:
        value = expr_eval.evaluate(ast, scope)
    assert calls[0] <= _nodes(ast), "each AST node is evaluated at most once"
    return value


@fuzz(300)
@given(expressions, scopes)
@example(_same("-0 * 5"), {n: 0 for n in NAMES})
@example(_same("1 / (0 * -1)"), {n: 0 for n in NAMES})
@example(_same("-4 % 2 + ''"), {n: 0 for n in NAMES})
@example(_same("a + ''"), {**{n: 0 for n in NAMES}, "a": 0.00001})
@example(_same("a * 1"), {**{n: 0 for n in NAMES}, "a": "\u2028 0b11 \u3000"})
@example(_same("a + 1"), {**{n: 0 for n in NAMES}, "a": 10**400})
def test_generated_expressions_agree_with_javascript(pair: Pair, scope: dict[str, Any]) -> None:
    text, js_text = pair
    ast = parse_expression(text)
    ours = describe(_evaluate_bounded(ast, as_js_data(scope)))
    names = ", ".join(NAMES)
    values = ", ".join(js_literal(scope[n]) for n in NAMES)
    reference = js_run(f"return describe((function ({names}) {{ return ({js_text}); }})({values}));")
    assert ours == reference, f"Python twin differs from JavaScript for {text!r}"
    vars_ = "{" + ", ".join(f"{n}: {js_literal(scope[n])}" for n in NAMES) + "}"
    renderer = js_run(f"return describe(renderer.evaluate({json.dumps(ast)}, {{vars: {vars_}}}));")
    assert renderer == reference, f"renderer-core.js differs from JavaScript for {text!r}"


_TOKENS = [
    "{{",
    "}}",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "...",
    "?",
    ":",
    ".",
    ",",
    "'",
    '"',
    "\\",
    "\\x",
    "\\u12",
    "===",
    "!==",
    "&&",
    "||",
    "=",
    "!",
    "-",
    "+",
    "*",
    "/",
    "%",
    "<",
    ">",
    "0x",
    "1e999",
    "9" * 400,
    "0x" + "f" * 300,
    "a",
    "item",
    "length",
    "undefined",
    "null",
    "true",
    " ",
    "\n",
    "\u2028",
    "f(",
    "1.e",
]
mustache_seeds = st.sampled_from(
    sorted({m for _, raw in seed_files("pages/*/*.wxml") for m in raw.decode().split("{{")[1:]})
).map(lambda rest: "{{" + rest.split("}}")[0] + "}}")


@fuzz(400)
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(st.sampled_from(_TOKENS), max_size=60).map("".join),
        mutated_text(mustache_seeds, _TOKENS),
    ),
    scopes,
)
@example("9" * 400, {})
@example("0x" + "f" * 300, {})
@example("{{" + "1" * 400 + "}}", {})
@example("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), {})
@example("!" * 40 + "a", {})
@example("a" + "[0]" * 40, {})
@example("1+" * 1000 + "1", {})
def test_any_text_parses_or_raises_template_error(text: str, scope: dict[str, Any]) -> None:
    for parse in (parse_expression, parse_object_body):
        try:
            ast = parse(text, filename="p.wxml", line=3, column=7)
        except TemplateError as exc:
            assert exc.filename == "p.wxml" and exc.line >= 3 and exc.column >= 1, str(exc)
            assert "internal" not in str(exc)
            continue
        assert len(text) <= MAX_EXPRESSION_CHARS
        _evaluate_bounded(ast, scope)
    try:
        parts = parse_mustache(text, filename="p.wxml", line=1, column=1)
    except TemplateError as exc:
        assert exc.filename == "p.wxml" and exc.line >= 1 and exc.column >= 1, str(exc)
        return
    evaluate_parts(parts, scope)


@fuzz(200)
@given(
    st.integers(1, MAX_DEPTH + 8), st.sampled_from(["(@)", "[@]", "-@", "!@", "a[@]", "{k: @}", "@ ? 1 : 2"])
)
def test_nesting_limit_holds(depth: int, shape: str) -> None:
    text = "1"
    for _ in range(depth):
        text = shape.replace("@", text)
    try:
        ast = parse_expression(text)
    except TemplateError as exc:
        assert "nests too deeply" in str(exc)
        assert depth >= MAX_DEPTH // 2  # every shape here allows at least half the limit
        return
    assert depth <= MAX_DEPTH + 1
    evaluate(ast, {"a": [[[1]]]})


@fuzz(200)
@given(st.integers(-(2**53), 2**53), st.integers(-(2**53), 2**53), st.sampled_from(["+", "-", "*", "%", "/"]))
def test_integer_arithmetic_matches_double_arithmetic(a: int, b: int, op: str) -> None:
    """JS numbers are doubles: the twin's exact-int shortcut must round exactly as doubles do."""
    got = evaluate(parse_expression(f"a {op} b"), {"a": a, "b": b})
    x, y = float(a), float(b)
    if op == "/":
        want = math.nan if y == 0 and x == 0 else (math.copysign(math.inf, x) if y == 0 else x / y)
    elif op == "%":
        want = math.nan if y == 0 else math.fmod(x, y)
    else:
        want = {"+": x + y, "-": x - y, "*": x * y}[op]
    if math.isnan(want):
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert float(got) == want and math.copysign(1, float(got)) == math.copysign(1, want)
