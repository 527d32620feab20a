"""The vhbus wire format: round trips, and every malformed message is rejected with FrameError."""

from __future__ import annotations

import can
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vehicle_host.canbus import frames


@pytest.mark.parametrize(
    "msg",
    [
        can.Message(arbitration_id=0x7E0, is_extended_id=False, data=b"\x02\x10\x03", timestamp=1.5),
        can.Message(arbitration_id=0x18DAF110, is_extended_id=True, data=bytes(8), timestamp=2.0),
        can.Message(
            arbitration_id=0x123, is_extended_id=False, is_fd=True, bitrate_switch=True, data=bytes(64)
        ),
        can.Message(arbitration_id=0x321, is_extended_id=False, is_remote_frame=True, dlc=4),
        can.Message(arbitration_id=0x1A0, is_extended_id=False, data=b""),
    ],
)
def test_round_trip(msg: can.Message) -> None:
    received = frames.decode_frame(frames.encode_frame(msg, sender=42), channel="ipc:///x")
    assert received.sender == 42
    assert received.message.equals(msg, timestamp_delta=None, check_channel=False)
    assert received.message.channel == "ipc:///x"


@pytest.mark.parametrize(
    "msg",
    [
        can.Message(arbitration_id=0x800, is_extended_id=False, data=b"", check=False),
        can.Message(arbitration_id=0x123, is_extended_id=False, data=bytes(9), check=False),
        can.Message(arbitration_id=0x123, is_extended_id=False, is_fd=True, data=bytes(10), check=False),
    ],
)
def test_frames_a_real_bus_cannot_carry_are_refused(msg: can.Message) -> None:
    with pytest.raises(frames.FrameError):
        frames.encode_frame(msg, sender=1)


def test_bad_headers_are_rejected() -> None:
    good = frames.encode_frame(can.Message(arbitration_id=0x10, is_extended_id=False, data=b"ab"), 7)
    for bad in (
        good[:-1],  # dlc says 2, one byte left
        b"XF" + good[2:],  # wrong magic
        good[:2] + b"\xc0" + good[3:],  # unknown flags
        good + bytes(70),  # too long
        b"",
    ):
        with pytest.raises(frames.FrameError):
            frames.decode_frame(bad)
    assert frames.decode_ping(frames.encode_ping(99)) == 99
    assert frames.decode_ping(good) is None
    assert frames.is_relayable(good) and not frames.is_relayable(b"junk")


@given(st.binary(max_size=120))
def test_decoding_any_bytes_never_raises_anything_else(raw: bytes) -> None:
    try:
        received = frames.decode_frame(raw)
    except frames.FrameError:
        return
    assert len(received.message.data) <= frames.MAX_DATA


@given(st.binary(min_size=frames.HEADER_SIZE - 2, max_size=frames.MAX_MESSAGE - 2))
def test_decoding_anything_with_the_magic_never_raises_anything_else(tail: bytes) -> None:
    try:
        received = frames.decode_frame(frames.MAGIC_FRAME + tail)
    except frames.FrameError:
        return
    assert frames.encode_frame(received.message, received.sender) == frames.MAGIC_FRAME + tail
