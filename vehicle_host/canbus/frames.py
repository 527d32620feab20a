"""Wire format of the ``vhbus`` virtual CAN bus (pure: bytes in, bytes out, no I/O).

Every ZeroMQ message on the bus is one of:

- a data frame: ``b"VF"`` + header (flags, arbitration id, timestamp, sender id, dlc) + 0..64 data bytes;
- a ping: ``b"VP"`` + sender id, which a bus sends to itself to learn that its subscription is live.

The first byte is never 0x00 or 0x01, which ZeroMQ's XPUB/XSUB sockets reserve for subscriptions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import can

MAGIC_FRAME = b"VF"
MAGIC_PING = b"VP"
_HEADER = struct.Struct("<2sBIdQB")  # magic, flags, arbitration id, timestamp, sender, dlc
_PING = struct.Struct("<2sQ")
HEADER_SIZE = _HEADER.size
MAX_DATA = 64
MAX_MESSAGE = HEADER_SIZE + MAX_DATA

_EXTENDED = 0x01
_FD = 0x02
_REMOTE = 0x04
_ERROR = 0x08
_BRS = 0x10
_ESI = 0x20
_KNOWN_FLAGS = _EXTENDED | _FD | _REMOTE | _ERROR | _BRS | _ESI
_FD_LENGTHS = frozenset([*range(9), 12, 16, 20, 24, 32, 48, 64])


class FrameError(ValueError):
    """A message is not a valid vhbus frame."""


@dataclass(frozen=True, slots=True)
class Received:
    """A decoded data frame and the id of the bus instance that sent it."""

    sender: int
    message: can.Message


def encode_frame(msg: can.Message, sender: int) -> bytes:
    """Encode ``msg`` for the bus; raises :class:`FrameError` when it could not exist on a real bus."""
    data = bytes(msg.data or b"")
    _check(msg.arbitration_id, msg.is_extended_id, msg.is_fd, msg.is_remote_frame, msg.dlc, data)
    flags = (
        (_EXTENDED if msg.is_extended_id else 0)
        | (_FD if msg.is_fd else 0)
        | (_REMOTE if msg.is_remote_frame else 0)
        | (_ERROR if msg.is_error_frame else 0)
        | (_BRS if msg.bitrate_switch else 0)
        | (_ESI if msg.error_state_indicator else 0)
    )
    header = _HEADER.pack(MAGIC_FRAME, flags, msg.arbitration_id, float(msg.timestamp), sender, msg.dlc)
    return header + data


def encode_ping(sender: int) -> bytes:
    return _PING.pack(MAGIC_PING, sender)


def decode_ping(raw: bytes) -> int | None:
    """The sender id of a ping, or None when ``raw`` is not a ping."""
    if len(raw) != _PING.size or not raw.startswith(MAGIC_PING):
        return None
    return int(_PING.unpack(raw)[1])


def is_relayable(raw: bytes) -> bool:
    """Cheap check the broker makes before relaying a message to every participant."""
    if raw.startswith(MAGIC_FRAME):
        return HEADER_SIZE <= len(raw) <= MAX_MESSAGE
    return raw.startswith(MAGIC_PING) and len(raw) == _PING.size


def decode_frame(raw: bytes, channel: str | None = None) -> Received:
    """Decode a data frame; raises :class:`FrameError` on anything malformed."""
    if len(raw) < HEADER_SIZE or len(raw) > MAX_MESSAGE:
        raise FrameError(f"frame of {len(raw)} bytes (expected {HEADER_SIZE}..{MAX_MESSAGE})")
    magic, flags, arbitration_id, timestamp, sender, dlc = _HEADER.unpack_from(raw)
    if magic != MAGIC_FRAME:
        raise FrameError("not a data frame")
    if flags & ~_KNOWN_FLAGS:
        raise FrameError(f"unknown flags {flags:#x}")
    if timestamp != timestamp or timestamp < 0:  # NaN or negative
        raise FrameError("bad timestamp")
    data = raw[HEADER_SIZE:]
    extended, fd, remote = bool(flags & _EXTENDED), bool(flags & _FD), bool(flags & _REMOTE)
    _check(arbitration_id, extended, fd, remote, dlc, data)
    message = can.Message(
        timestamp=timestamp,
        arbitration_id=arbitration_id,
        is_extended_id=extended,
        is_remote_frame=remote,
        is_error_frame=bool(flags & _ERROR),
        is_fd=fd,
        bitrate_switch=bool(flags & _BRS),
        error_state_indicator=bool(flags & _ESI),
        dlc=dlc,
        data=data,
        channel=channel,
        check=False,
    )
    return Received(sender, message)


def _check(arbitration_id: int, extended: bool, fd: bool, remote: bool, dlc: int, data: bytes) -> None:
    limit = 0x1FFFFFFF if extended else 0x7FF
    if not 0 <= arbitration_id <= limit:
        raise FrameError(f"arbitration id {arbitration_id:#x} out of range (max {limit:#x})")
    if fd:
        if remote:
            raise FrameError("CAN FD has no remote frames")
        if len(data) not in _FD_LENGTHS or dlc != len(data):
            raise FrameError(f"CAN FD frame with {len(data)} data bytes and dlc {dlc}")
        return
    if len(data) > 8 or dlc > 8:
        raise FrameError(f"classic CAN frame with {len(data)} data bytes and dlc {dlc}")
    if remote and data:
        raise FrameError("remote frame with data")
    if not remote and dlc != len(data):
        raise FrameError(f"dlc {dlc} does not match {len(data)} data bytes")
