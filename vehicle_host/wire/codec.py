"""CBOR encoding of envelopes. Bytes in, bytes out; anything malformed raises WireError only."""

from __future__ import annotations

import io
import math
from typing import Any

import cbor2

from vehicle_host.errors import WireError
from vehicle_host.wire.envelope import (
    API_LEVEL,
    MAX_ADDRESS_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_TYPE_CHARS,
    Envelope,
)
from vehicle_host.wire.schema import validate_payload

#: Bounds on the shape of decoded values, so a small message cannot expand into a huge structure.
MAX_DEPTH = 32
MAX_ITEMS = 100_000


def encode(envelope: Envelope, *, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """Validate and encode ``envelope``; raise WireError if it breaks the contract or the size limit."""
    _check_header(envelope.type, envelope.id, envelope.source, envelope.target)
    _check_values(envelope.payload)
    validate_payload(envelope.type, envelope.payload)
    try:
        data = cbor2.dumps(
            [API_LEVEL, envelope.type, envelope.id, envelope.source, envelope.target, envelope.payload]
        )
    except (cbor2.CBOREncodeError, TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"{envelope.type}: payload cannot be encoded: {exc}") from exc
    if len(data) > max_bytes:
        raise WireError(f"{envelope.type}: message of {len(data)} bytes exceeds the limit of {max_bytes}")
    return data


def decode(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Envelope:
    """Decode and validate one message; raise WireError (and nothing else) for any bad input."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError("message must be bytes")
    if len(data) > max_bytes:
        raise WireError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    if not data:
        raise WireError("empty message")
    try:
        stream = io.BytesIO(bytes(data))
        item = cbor2.CBORDecoder(stream, tag_hook=_refuse_tag, str_errors="strict").decode()
        trailing = stream.read(1)
    except WireError:
        raise
    except Exception as exc:  # cbor2 raises many kinds (decode, value, recursion, memory errors)
        if isinstance(exc.__cause__, WireError):  # our tag hook's refusal, wrapped by cbor2
            raise exc.__cause__ from None
        raise WireError(f"malformed CBOR: {type(exc).__name__}: {exc}"[:300]) from None
    if trailing:
        raise WireError("trailing bytes after the message")
    if isinstance(item, tuple):  # cbor2 makes arrays immutable only inside a semantic tag
        raise WireError(TAGS_REFUSED)
    if not isinstance(item, list) or len(item) != 6:
        raise WireError("envelope must be an array of 6 items")
    level, type_, id_, source, target, payload = item
    if type(level) is not int or not 1 <= level <= API_LEVEL:
        raise WireError(f"unsupported API level {level!r} (this host speaks 1..{API_LEVEL})")
    _check_header(type_, id_, source, target)
    if not isinstance(payload, dict):
        raise WireError("payload must be a map")
    _check_values(payload, wire_bytes=len(data))
    validate_payload(type_, payload)
    return Envelope(type=type_, id=id_, source=source, target=target, payload=payload)


TAGS_REFUSED = "CBOR tags are not allowed"


def _refuse_tag(decoder: object, tag: object) -> Any:
    # only tags cbor2 does not know come here; the ones it decodes itself are refused afterwards:
    # dates, sets, regular expressions ... by their type, shared values and string references
    # (which decode to plain lists and strings) by the text budget of _check_values
    raise WireError(TAGS_REFUSED)


def _check_header(type_: object, id_: object, source: object, target: object) -> None:
    if not isinstance(type_, str) or not 0 < len(type_) <= MAX_TYPE_CHARS:
        raise WireError("message type must be a non-empty short string")
    if type(id_) is not int or not 0 <= id_ < 2**63:
        raise WireError("message id must be an integer in 0..2**63-1")
    for name, value in (("source", source), ("target", target)):
        if not isinstance(value, str) or not 0 < len(value) <= MAX_ADDRESS_CHARS:
            raise WireError(f"{name} must be a non-empty string of at most {MAX_ADDRESS_CHARS} characters")


def _check_values(value: Any, *, wire_bytes: int | None = None) -> None:
    """Only plain data (str, bytes, int, float, bool, None, lists, maps with str keys), bounded.

    ``wire_bytes``: the value came off the wire in a message of this size. There only a semantic tag
    makes a tuple or a frozen map, and only a reference (CBOR tags 25/256, 28/29) makes more text
    than the message holds: 300 KB repeating one string by reference would be 1 GB re-encoded."""
    decoded = wire_bytes is not None
    text_left = wire_bytes if wire_bytes is not None else math.inf  # characters of keys and values
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_ITEMS:
            raise WireError(f"message holds more than {MAX_ITEMS} values")
        if depth > MAX_DEPTH:
            raise WireError(f"message nests deeper than {MAX_DEPTH}")
        if isinstance(item, str | bytes):
            text_left -= len(item)
        elif item is None or isinstance(item, bool | float):
            continue
        elif isinstance(item, int):
            if not -(2**64) <= item < 2**64:
                raise WireError("integer out of range")
            continue
        elif decoded and type(item) not in (list, dict):  # a date, Decimal, set, tuple ... from a tag
            raise WireError(f"values of type {type(item).__name__} are not allowed ({TAGS_REFUSED})")
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise WireError("map keys must be strings")
                text_left -= len(key)
                stack.append((child, depth + 1))
        else:
            raise WireError(f"values of type {type(item).__name__} are not allowed")
        if text_left < 0:
            raise WireError(f"message repeats values by reference ({TAGS_REFUSED})")
