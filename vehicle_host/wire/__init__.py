"""The wire contract: CBOR envelopes, payload schemas, limits and the runtime API level (no I/O)."""

from vehicle_host.wire.codec import decode, encode
from vehicle_host.wire.envelope import API_LEVEL, MAX_MESSAGE_BYTES, Envelope
from vehicle_host.wire.schema import MESSAGE_TYPES

__all__ = ["API_LEVEL", "MAX_MESSAGE_BYTES", "MESSAGE_TYPES", "Envelope", "decode", "encode"]
