"""The vhbus python-can interface: real ZeroMQ sockets, and a second process on the same bus."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import can
import pytest
import zmq

from vehicle_host.canbus import frames


@pytest.fixture
def endpoint(short_dir: Path) -> str:
    return f"ipc://{short_dir / 'can0.sock'}"


@pytest.fixture
def pair(endpoint: str) -> Iterator[tuple[can.BusABC, can.BusABC]]:
    a = can.Bus(interface="vhbus", channel=endpoint)
    b = can.Bus(interface="vhbus", channel=endpoint)
    yield a, b
    b.shutdown()
    a.shutdown()


def _msg(can_id: int, data: bytes = b"\x01") -> can.Message:
    return can.Message(arbitration_id=can_id, is_extended_id=False, data=data)


def test_frames_reach_others_but_not_the_sender(pair: tuple[can.BusABC, can.BusABC]) -> None:
    a, b = pair
    a.send(_msg(0x123, b"\x11\x22"))
    got = b.recv(2.0)
    assert got is not None and got.arbitration_id == 0x123 and bytes(got.data) == b"\x11\x22"
    assert not got.is_extended_id and got.timestamp > 0
    assert a.recv(0.1) is None  # like a real controller: no echo of its own frames


def test_receive_own_messages(endpoint: str) -> None:
    with can.Bus(interface="vhbus", channel=endpoint, receive_own_messages=True) as bus:
        bus.send(_msg(0x42))
        got = bus.recv(2.0)
    assert got is not None and got.arbitration_id == 0x42


def test_filters_and_timeouts(endpoint: str) -> None:
    with (
        can.Bus(interface="vhbus", channel=endpoint) as sender,
        can.Bus(
            interface="vhbus", channel=endpoint, can_filters=[{"can_id": 0x7E8, "can_mask": 0x7F8}]
        ) as receiver,
    ):
        for can_id in (0x100, 0x7E9, 0x1A0, 0x7EA):
            sender.send(_msg(can_id))
        got = [receiver.recv(1.0), receiver.recv(1.0)]
        assert [m.arbitration_id for m in got if m is not None] == [0x7E9, 0x7EA]
        start = time.monotonic()
        assert receiver.recv(0.2) is None
        assert time.monotonic() - start >= 0.19
        assert receiver.recv(0) is None
        receiver.set_filters(None)
        sender.send(_msg(0x100))
        after = receiver.recv(1.0)
        assert after is not None and after.arbitration_id == 0x100


def test_malformed_messages_are_dropped_and_counted(
    pair: tuple[can.BusABC, can.BusABC], endpoint: str
) -> None:
    a, b = pair
    ctx = zmq.Context()
    rogue = ctx.socket(zmq.XSUB)
    rogue.connect(endpoint)
    try:
        good = frames.encode_frame(_msg(0x10), sender=5)
        bad_id = good[:3] + (0x900).to_bytes(4, "little") + good[7:]  # 11-bit id out of range
        rogue.send(b"no magic here")  # the broker drops it
        rogue.send(bad_id)  # relayed (cheap check passes), refused by the receiver
        rogue.send(frames.MAGIC_FRAME + b"\xff" * 10)  # too short to relay
        rogue.send(good)
        got = b.recv(2.0)
        assert got is not None and got.arbitration_id == 0x10
        assert b.dropped_malformed == 1  # type: ignore[attr-defined]
        broker = a._broker or b._broker  # type: ignore[attr-defined]
        assert broker is not None and broker.broker.dropped == 2
        a.send(_msg(0x11))  # the bus still works
        again = b.recv(2.0)
        assert again is not None and again.arbitration_id == 0x11
    finally:
        rogue.close(linger=0)
        ctx.term()


def test_send_refuses_frames_a_bus_cannot_carry(pair: tuple[can.BusABC, can.BusABC]) -> None:
    a, _ = pair
    with pytest.raises(can.CanOperationError):
        a.send(can.Message(arbitration_id=0x123, is_extended_id=False, data=bytes(12), check=False))


@pytest.mark.parametrize(
    "channel", ["can0", "ipc://relative/path", "tcp://10.1.2.3:29536", "tcp://127.0.0.1", None]
)
def test_bad_channels_are_refused_with_a_hint(channel: str | None) -> None:
    with pytest.raises(can.CanInitializationError, match="vhbus"):
        can.Bus(interface="vhbus", channel=channel)


def test_no_broker_gives_a_clear_error(endpoint: str) -> None:
    with pytest.raises(can.CanInitializationError, match=r"python -m vehicle_host\.canbus"):
        can.Bus(interface="vhbus", channel=endpoint, broker="never", connect_timeout=0.3)


ECHO = textwrap.dedent(
    """
    import sys, can
    with can.Bus(interface="vhbus", channel=sys.argv[1], broker="never") as bus:
        print("ready", flush=True)
        while True:
            msg = bus.recv(5.0)
            if msg is None or msg.arbitration_id == 0x7FF:
                break
            bus.send(can.Message(arbitration_id=msg.arbitration_id + 1, is_extended_id=False,
                                 data=bytes(reversed(msg.data))))
    """
)


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_two_processes_share_a_bus_through_a_broker_process(short_dir: Path, transport: str) -> None:
    if transport == "ipc":
        endpoint = f"ipc://{short_dir / 'can1.sock'}"
    else:
        with zmq.Context() as ctx, ctx.socket(zmq.REP) as probe:
            port = probe.bind_to_random_port("tcp://127.0.0.1")
        endpoint = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen(
        [sys.executable, "-m", "vehicle_host.canbus", "--endpoint", endpoint], stderr=subprocess.PIPE
    )
    echo = None
    try:
        with can.Bus(interface="vhbus", channel=endpoint, broker="never", connect_timeout=10) as bus:
            echo = subprocess.Popen([sys.executable, "-c", ECHO, endpoint], stdout=subprocess.PIPE, text=True)
            assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
            for i in range(20):
                bus.send(_msg(0x200 + i, bytes([i, 1, 2])))
                reply = bus.recv(5.0)
                assert reply is not None
                assert (reply.arbitration_id, bytes(reply.data)) == (0x201 + i, bytes([2, 1, i]))
            bus.send(_msg(0x7FF))
            assert echo.wait(10) == 0
            second = subprocess.run(
                [sys.executable, "-m", "vehicle_host.canbus", "--endpoint", endpoint],
                capture_output=True,
                text=True,
                timeout=20,
            )
            assert second.returncode == 2 and "already serves" in second.stderr
    finally:
        if echo is not None and echo.poll() is None:
            echo.kill()
        broker.terminate()
        assert broker.wait(10) == 0
