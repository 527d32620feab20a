"""Fuzzing the wire codec: any bytes decode to a valid Envelope or raise WireError (nothing else), every
valid envelope round-trips, and the size, nesting and item limits hold exactly where they are documented."""

from __future__ import annotations

import math
from typing import Any

import cbor2
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.fuzzing import fuzz, mutated_bytes
from vehicle_host.errors import WireError
from vehicle_host.wire import API_LEVEL, MAX_MESSAGE_BYTES, MESSAGE_TYPES, Envelope, decode, encode
from vehicle_host.wire.codec import MAX_DEPTH, MAX_ITEMS
from vehicle_host.wire.envelope import MAX_ADDRESS_CHARS, MAX_TYPE_CHARS
from vehicle_host.wire.schema import Field

# text that may hold lone surrogates (which CBOR cannot carry) as well as any other code point
any_text = st.text(st.characters(exclude_categories=()), max_size=20)
plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _value_for(spec: Field) -> st.SearchStrategy[Any]:
    if spec.choices:
        return st.sampled_from(sorted(spec.choices))
    return {
        "str": st.text(max_size=min(spec.limit, 40)),
        "int": st.integers(-(2**63), 2**63 - 1),
        "bool": st.booleans(),
        "num": st.integers(-(2**63), 2**63 - 1) | st.floats(),
        "map": st.dictionaries(st.text(max_size=8), plain, max_size=min(spec.limit, 5)),
        "list": st.lists(plain, max_size=min(spec.limit, 5)),
        "any": plain,
    }[spec.kind]


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    type_ = draw(st.sampled_from(sorted(MESSAGE_TYPES)))
    payload = {}
    for name, spec in MESSAGE_TYPES[type_].items():
        if spec.required or draw(st.booleans()):
            payload[name] = draw(_value_for(spec))
    address = st.text(min_size=1, max_size=MAX_ADDRESS_CHARS)
    return Envelope(type_, draw(st.integers(0, 2**63 - 1)), draw(address), draw(address), payload)


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (CBOR carries NaN; Python's == does not see it as equal)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _check_decoded(envelope: Envelope) -> None:
    """What decode promises about an envelope it returns: encodable again, to the same envelope."""
    assert isinstance(envelope, Envelope)
    assert envelope.type in MESSAGE_TYPES
    again = decode(encode(envelope))
    assert again.type == envelope.type and again.id == envelope.id
    assert (again.source, again.target) == (envelope.source, envelope.target)
    assert _same(again.payload, envelope.payload)


def _decode_or_refuse(data: bytes) -> None:
    try:
        envelope = decode(data)
    except WireError as exc:
        assert str(exc), "a refusal must say what is wrong"
        return
    _check_decoded(envelope)


# -- decode: arbitrary and structured bytes ---------------------------------------------------------

# CBOR heads that announce huge or indefinite items, tags, simple values and half-floats
_HEADS = st.sampled_from(
    [
        b"\x86",
        b"\x9f",
        b"\xbf",
        b"\xff",
        b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\xbb\x7f\xff\xff\xff\xff\xff\xff\xff",
        b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00",
        b"\x7b\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x5f",
        b"\x7f",
        b"\xc0",
        b"\xc2",
        b"\xd8\x1c",
        b"\xd8\x1d",
        b"\xd9\xd9\xf7",
        b"\xf7",
        b"\xf8\x20",
        b"\xf9\x7e\x00",
        b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x3b\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x01",
        b"\x64type",
        b"\x65hello",
        b"\xa0",
        b"\x80",
        b"\x61\xed",
        b"\x62\xed\xa0",
    ]
)


@fuzz(400)
@given(
    st.one_of(st.binary(max_size=400), st.lists(_HEADS | st.binary(max_size=4), max_size=40).map(b"".join))
)
@example(b"\x9f" * 5000)
@example(b"\x86\x01\x64type\x00\x61s\x61t\x5b\x00\x00\x00\x01\x00\x00\x00\x00")
def test_any_bytes_decode_or_raise_wire_error(data: bytes) -> None:
    _decode_or_refuse(data)


cbor_items = st.recursive(
    plain
    | st.just(cbor2.undefined)
    | st.builds(cbor2.CBORSimpleValue, st.integers(0, 19) | st.integers(32, 255))
    | st.builds(cbor2.CBORTag, st.integers(0, 2**64 - 1), st.integers() | st.text(max_size=4)),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(children.filter(lambda v: isinstance(v, str | int | bytes)), children, max_size=4)
    ),
    max_leaves=30,
)


@fuzz(300)
@given(
    st.one_of(
        cbor_items,
        st.tuples(
            st.sampled_from([API_LEVEL, 0, API_LEVEL + 1, True, -1, 2**64 - 1]),
            st.sampled_from(sorted(MESSAGE_TYPES)) | any_text,
            st.integers(-(2**64), 2**64 - 1) | st.booleans() | st.floats(),
            st.text(max_size=3) | st.text(min_size=MAX_ADDRESS_CHARS, max_size=MAX_ADDRESS_CHARS + 2),
            st.text(max_size=3) | st.integers(),
            st.dictionaries(st.text(max_size=10), cbor_items, max_size=6) | cbor_items,
        ).map(list),
    )
)
def test_structured_cbor_decodes_or_raises_wire_error(item: Any) -> None:
    try:
        data = cbor2.dumps(item)
    except (cbor2.CBOREncodeError, ValueError, TypeError):
        return  # cbor2 cannot write it (e.g. a simple value it reserves): nothing to send
    _decode_or_refuse(data)


@fuzz(400)
@given(mutated_bytes(envelopes().map(encode), max_ops=8))
def test_mutated_valid_messages_decode_or_raise_wire_error(data: bytes) -> None:
    _decode_or_refuse(data)


# -- encode and round trip --------------------------------------------------------------------------


@fuzz(300)
@given(envelopes())
def test_every_valid_envelope_round_trips(envelope: Envelope) -> None:
    data = encode(envelope)
    assert len(data) <= MAX_MESSAGE_BYTES
    back = decode(data)
    assert (back.type, back.id, back.source, back.target) == (
        envelope.type,
        envelope.id,
        envelope.source,
        envelope.target,
    )
    assert _same(back.payload, envelope.payload)
    assert encode(back) == data, "the encoding of a decoded message is stable"


@fuzz(300)
@given(
    st.sampled_from(sorted(MESSAGE_TYPES)) | any_text | st.integers(),
    st.integers(-(2**64), 2**64) | st.booleans() | st.text(max_size=3),
    any_text | st.none(),
    any_text,
    st.dictionaries(any_text | st.integers() | st.binary(max_size=3), plain | any_text, max_size=6),
)
def test_encode_refuses_only_with_wire_error(
    type_: Any, id_: Any, source: Any, target: Any, payload: Any
) -> None:
    envelope = Envelope(type=type_, id=id_, source=source, target=target, payload=payload)
    try:
        data = encode(envelope)
    except WireError:
        return
    _check_decoded(decode(data))  # whatever the host sends, its peers accept


# -- limits -----------------------------------------------------------------------------------------


def _render(data: Any) -> bytes:
    return cbor2.dumps([API_LEVEL, "page.render", 1, "app:x", "shell", {"page_id": 1, "data": data}])


@fuzz(60)
@given(st.integers(0, MAX_DEPTH + 10), st.sampled_from(["list", "map"]))
@example(MAX_DEPTH - 2, "map")
@example(MAX_DEPTH - 1, "map")
def test_nesting_limit_holds_exactly(levels: int, kind: str) -> None:
    """page.render data is a map at depth 1 of the payload; each level adds one."""
    inner: Any = 0
    for _ in range(levels):
        inner = [inner] if kind == "list" else {"n": inner}
    depth = levels + 2  # payload (0) -> data map (1) -> ``levels`` containers -> the leaf
    envelope = Envelope("page.render", 1, "app:x", "shell", {"page_id": 1, "data": {"v": inner}})
    if depth > MAX_DEPTH:
        with pytest.raises(WireError, match="nests deeper"):
            decode(_render({"v": inner}))
        with pytest.raises(WireError, match="nests deeper"):
            encode(envelope)
    else:
        assert decode(encode(envelope)).payload["data"] == {"v": inner}


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_item_limit_holds_exactly(extra: int) -> None:
    # the payload map, page_id, the data map and the list each count as one value
    items = MAX_ITEMS - 4 + extra
    data = _render({"v": [0] * items})
    if extra > 0:
        with pytest.raises(WireError, match="more than"):
            decode(data)
    else:
        assert len(decode(data).payload["data"]["v"]) == items


@fuzz(100)
@given(envelopes(), st.integers(1, 4096))
def test_size_limit_holds_for_encode_and_decode(envelope: Envelope, limit: int) -> None:
    data = encode(envelope)
    if len(data) > limit:
        with pytest.raises(WireError, match="exceeds the limit"):
            encode(envelope, max_bytes=limit)
        with pytest.raises(WireError, match="exceeds the limit"):
            decode(data, max_bytes=limit)
    else:
        assert encode(envelope, max_bytes=limit) == data
        decode(data, max_bytes=limit)


@fuzz(100)
@given(
    st.sampled_from(
        sorted(
            (type_, name, spec.limit)
            for type_, fields in MESSAGE_TYPES.items()
            for name, spec in fields.items()
            if spec.kind == "str" and spec.choices is None and spec.limit <= 16 * 1024
        )
    ),
    st.integers(-2, 2),
)
def test_string_field_limits_hold_exactly(field: tuple[str, str, int], delta: int) -> None:
    type_, name, limit = field
    payload: dict[str, Any] = {}
    for other, spec in MESSAGE_TYPES[type_].items():
        if spec.required:
            payload[other] = (
                {"str": "x", "int": 1, "bool": True, "map": {}, "list": [], "any": 0, "num": 1}[spec.kind]
                if spec.choices is None
                else sorted(spec.choices)[0]
            )
    payload[name] = "y" * max(limit + delta, 0)
    data = cbor2.dumps([API_LEVEL, type_, 7, "app:x", "hub", payload])
    if limit + delta > limit:
        with pytest.raises(WireError, match=f"{name!r} is longer than {limit}"):
            decode(data)
    else:
        assert decode(data).payload[name] == payload[name]


def test_header_limits_hold_exactly() -> None:
    ok = cbor2.dumps([API_LEVEL, "app.list", 2**63 - 1, "a" * MAX_ADDRESS_CHARS, "hub", {}])
    assert decode(ok).id == 2**63 - 1
    for bad in (
        [API_LEVEL, "app.list", 2**63, "a", "hub", {}],
        [API_LEVEL, "app.list", 1, "a" * (MAX_ADDRESS_CHARS + 1), "hub", {}],
        [API_LEVEL, "x" * (MAX_TYPE_CHARS + 1), 1, "a", "hub", {}],
    ):
        with pytest.raises(WireError):
            decode(cbor2.dumps(bad))
