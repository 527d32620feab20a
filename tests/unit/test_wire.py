"""The wire contract: valid messages round-trip; any bytes raise WireError and nothing else."""

from __future__ import annotations

import contextlib
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vehicle_host.errors import WireError
from vehicle_host.wire import API_LEVEL, MAX_MESSAGE_BYTES, MESSAGE_TYPES, Envelope, decode, encode
from vehicle_host.wire.schema import Field

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
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
        "num": st.integers(-1000, 1000) | st.floats(allow_nan=False, allow_infinity=False),
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
    address = st.text(min_size=1, max_size=30)
    return Envelope(
        type=type_,
        id=draw(st.integers(0, 2**63 - 1)),
        source=draw(address),
        target=draw(address),
        payload=payload,
    )


@given(envelopes())
def test_every_valid_message_round_trips(envelope: Envelope) -> None:
    assert decode(encode(envelope)) == envelope


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode(data)


@given(st.lists(plain, min_size=0, max_size=8))
def test_arbitrary_cbor_arrays_raise_only_wire_error(items: list[Any]) -> None:
    with contextlib.suppress(WireError):
        decode(cbor2.dumps(items))


@given(envelopes(), st.integers(0, 200), st.binary(min_size=1, max_size=4))
def test_corrupted_valid_message_raises_only_wire_error(envelope: Envelope, at: int, junk: bytes) -> None:
    data = bytearray(encode(envelope))
    at = at % len(data)
    data[at : at + len(junk)] = junk
    with contextlib.suppress(WireError):
        decode(bytes(data))


def _raw(*items: Any) -> bytes:
    return cbor2.dumps(list(items))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (_raw(API_LEVEL, "hello", 1, "shell", "hub"), "array of 6"),
        (_raw(API_LEVEL + 1, "app.list", 1, "shell", "hub", {}), "API level"),
        (_raw(API_LEVEL, "no.such.type", 1, "shell", "hub", {}), "unknown message type"),
        (_raw(API_LEVEL, "app.launch", 1, "shell", "hub", {}), "missing field 'app_id'"),
        (_raw(API_LEVEL, "app.launch", 1, "shell", "hub", {"app_id": 5}), "must be str"),
        (_raw(API_LEVEL, "app.launch", 1, "shell", "hub", {"app_id": "a", "x": 1}), "unexpected field"),
        (_raw(API_LEVEL, "app.launch", -1, "shell", "hub", {"app_id": "a"}), "message id"),
        (_raw(API_LEVEL, "app.launch", 1, "", "hub", {"app_id": "a"}), "source"),
        (_raw(API_LEVEL, "hello", 1, "x", "hub", {"role": "root", "api_level": 1}), "must be one of"),
        (_raw(API_LEVEL, "page.event", 1, "x", "hub", {"page_id": True, "handler": "h", "event": {}}), "int"),
        (cbor2.dumps([API_LEVEL, "app.list", 1, "s", "hub", {}]) + b"\x00", "trailing"),
        (
            _raw(API_LEVEL, "page.render", 1, "s", "t", {"page_id": 1, "data": {"d": cbor2.CBORTag(1, 0)}}),
            "not allowed",
        ),
        (
            _raw(API_LEVEL, "page.render", 1, "s", "t", {"page_id": 1, "data": {"d": cbor2.CBORTag(999, 0)}}),
            "tag",
        ),
        (_raw(API_LEVEL, "page.render", 1, "s", "hub", {"page_id": 1, "data": {"k": {1: 2}}}), "keys"),
        (b"\x9f" * 5000, "malformed"),
    ],
)
def test_malformed_messages_name_the_problem(data: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        decode(data)


def test_size_limit_applies_to_encode_and_decode() -> None:
    big = Envelope("page.render", 1, "app:x", "shell", {"page_id": 1, "data": {"s": "x" * 700_000}})
    assert len(encode(big)) < MAX_MESSAGE_BYTES
    with pytest.raises(WireError, match="exceeds the limit"):
        encode(big, max_bytes=1000)
    with pytest.raises(WireError, match="exceeds the limit"):
        decode(b"\x00" * (MAX_MESSAGE_BYTES + 1))


def test_deep_nesting_is_refused() -> None:
    nested: Any = "leaf"
    for _ in range(40):
        nested = {"n": nested}
    with pytest.raises(WireError, match="nests deeper"):
        decode(_raw(API_LEVEL, "page.render", 1, "s", "t", {"page_id": 1, "data": nested}))


def test_reply_swaps_addresses_and_keeps_id() -> None:
    request = Envelope("app.list", 7, "shell", "hub", {})
    reply = request.reply("app.list.result", {"apps": []})
    assert (reply.id, reply.source, reply.target) == (7, "hub", "shell")


@pytest.mark.parametrize(
    ("diff", "options"),
    [
        ({"s": ["x" * 1000] * 500}, {"string_referencing": True}),
        ({"m": [{"k" * 1000: i} for i in range(500)]}, {"string_referencing": True}),
        ({"s": [["x" * 1000]] * 500}, {"value_sharing": True}),
    ],
    ids=["string-values", "map-keys", "shared-values"],
)
def test_values_repeated_by_reference_are_refused(diff: dict[str, Any], options: dict[str, bool]) -> None:
    # a few KB on the wire, 500 KB once forwarded (re-encoded without references): refused whole
    envelope = [API_LEVEL, "page.setData", 1, "app:a", "shell", {"page_id": 1, "diff": diff}]
    data = cbor2.dumps(envelope, **options)
    assert len(data) < 20_000
    with pytest.raises(WireError, match="by reference"):
        decode(data)
    assert decode(cbor2.dumps(envelope)).payload["diff"] == diff  # the same values sent plainly pass
