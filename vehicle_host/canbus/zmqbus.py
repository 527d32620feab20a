"""python-can interface ``vhbus``: a virtual CAN bus shared by processes over ZeroMQ.

Unlike python-can's ``virtual`` bus it works across processes; like a real bus every participant
sees every frame except its own (unless ``receive_own_messages=True``). See ``broker.py`` for the
relay; this module is the participant side.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from typing import Any

import can
import zmq

from vehicle_host.canbus import frames
from vehicle_host.canbus.broker import (
    BrokerThread,
    Endpoint,
    EndpointError,
    parse_endpoint,
    try_start_broker,
)

#: Frames queued per direction before a sender blocks (send timeout) or the receiver side drops.
QUEUE_FRAMES = 20_000
_IDLE_SLICE = 0.2  # seconds; recv(timeout=None) wakes this often to notice shutdown


class ZmqBus(can.BusABC):
    """A participant on a vhbus virtual CAN bus.

    :param channel: ``ipc:///path/bus.sock`` or ``tcp://127.0.0.1:PORT``.
    :param receive_own_messages: also deliver the frames this instance sends.
    :param broker: ``"auto"`` (default) starts a broker in this process when none serves the
        endpoint yet; it lives as long as this bus instance, so a long-lived bus should run its own
        broker (``python -m vehicle_host.canbus --endpoint E``) and connect with ``"never"``.
    :param connect_timeout: seconds to wait for the broker to confirm the subscription.
    """

    def __init__(
        self,
        channel: Any = None,
        can_filters: Any = None,
        receive_own_messages: bool = False,
        fd: bool = True,
        broker: str = "auto",
        connect_timeout: float = 5.0,
        **kwargs: object,
    ) -> None:
        try:
            endpoint: Endpoint = parse_endpoint(channel)
        except EndpointError as exc:
            raise can.CanInitializationError(str(exc)) from exc
        if broker not in ("auto", "never"):
            raise can.CanInitializationError(f"vhbus broker must be 'auto' or 'never', not {broker!r}")
        self.channel = endpoint.url
        self.channel_info = f"vhbus {endpoint.url}"
        self.receive_own_messages = bool(receive_own_messages)
        self._can_protocol = can.CanProtocol.CAN_FD if fd else can.CanProtocol.CAN_20
        self.dropped_malformed = 0
        self.sender_id = random.getrandbits(63) | 1
        self._closed = False
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._broker: BrokerThread | None = try_start_broker(endpoint) if broker == "auto" else None
        self._context = zmq.Context(io_threads=1)
        try:
            self._rx: zmq.Socket[bytes] = self._socket(zmq.XSUB)
            self._tx: zmq.Socket[bytes] = self._socket(zmq.XSUB)
            self._rx.connect(endpoint.url)
            self._tx.connect(endpoint.url)
            self._rx.send(b"\x01")  # subscribe to every frame
            self._await_subscription(connect_timeout)
        except BaseException:
            self._close_sockets()
            raise
        super().__init__(channel=endpoint.url, can_filters=can_filters, **kwargs)

    def _socket(self, kind: int) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = self._context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, QUEUE_FRAMES)
        sock.setsockopt(zmq.RCVHWM, QUEUE_FRAMES)
        sock.setsockopt(zmq.MAXMSGSIZE, frames.MAX_MESSAGE)
        return sock

    def _await_subscription(self, timeout: float) -> None:
        """Ping ourselves through the broker until the ping comes back (no frame is lost after this)."""
        deadline = time.monotonic() + timeout
        ping = frames.encode_ping(self.sender_id)
        while time.monotonic() < deadline:
            self._tx.send(ping, zmq.NOBLOCK)
            until = min(deadline, time.monotonic() + 0.05)
            while (left := until - time.monotonic()) > 0:
                if not self._rx.poll(max(1, int(left * 1000))):
                    break
                if frames.decode_ping(self._rx.recv()) == self.sender_id:
                    return
        raise can.CanInitializationError(
            f"no vhbus broker answered on {self.channel} within {timeout:g} s; "
            f"start one with `python -m vehicle_host.canbus --endpoint {self.channel}`"
        )

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        if self._closed:
            raise can.CanOperationError("vhbus is shut down")
        if not msg.timestamp:
            msg = _stamped(msg)
        try:
            raw = frames.encode_frame(msg, self.sender_id)
        except frames.FrameError as exc:
            raise can.CanOperationError(f"cannot send {msg}: {exc}") from exc
        with self._send_lock:
            try:
                self._tx.send(raw, zmq.NOBLOCK)
                return
            except zmq.Again:
                pass
            except zmq.ZMQError as exc:
                raise can.CanOperationError(f"vhbus send failed: {exc}") from exc
            wait_ms = -1 if timeout is None else max(0, int(timeout * 1000))
            if wait_ms and self._tx.poll(wait_ms, zmq.POLLOUT):
                self._tx.send(raw, zmq.NOBLOCK)
                return
        raise can.CanOperationError("vhbus transmit queue is full (nobody reads the bus?)")

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._recv_lock:
            while True:
                if self._closed:
                    raise can.CanOperationError("vhbus is shut down")
                try:
                    raw = self._rx.recv(zmq.NOBLOCK)
                except zmq.Again:
                    left = _IDLE_SLICE if deadline is None else deadline - time.monotonic()
                    if left <= 0:
                        return None, False
                    if not self._rx.poll(max(1, int(min(left, _IDLE_SLICE) * 1000))) and deadline is None:
                        return None, False  # lets BusABC.recv loop (and notice a shutdown)
                    continue
                except zmq.ZMQError as exc:
                    raise can.CanOperationError(f"vhbus receive failed: {exc}") from exc
                message = self._decode(raw)
                if message is not None:
                    return message, False

    def _decode(self, raw: bytes) -> can.Message | None:
        if raw.startswith(frames.MAGIC_PING) and frames.decode_ping(raw) is not None:
            return None
        try:
            received = frames.decode_frame(raw, self.channel)
        except frames.FrameError:
            self.dropped_malformed += 1
            return None
        if received.sender == self.sender_id and not self.receive_own_messages:
            return None
        return received.message

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        super().shutdown()
        with self._send_lock, self._recv_lock:
            self._close_sockets()

    def _close_sockets(self) -> None:
        for name in ("_rx", "_tx"):
            sock = getattr(self, name, None)
            if sock is not None:
                sock.close(linger=0)
        with contextlib.suppress(zmq.ZMQError):
            self._context.term()
        if self._broker is not None:
            self._broker.stop()
            self._broker = None


def _stamped(msg: can.Message) -> can.Message:
    copy = can.Message(
        timestamp=time.time(),
        arbitration_id=msg.arbitration_id,
        is_extended_id=msg.is_extended_id,
        is_remote_frame=msg.is_remote_frame,
        is_error_frame=msg.is_error_frame,
        channel=msg.channel,
        dlc=msg.dlc,
        data=msg.data,
        is_fd=msg.is_fd,
        bitrate_switch=msg.bitrate_switch,
        error_state_indicator=msg.error_state_indicator,
        check=False,
    )
    return copy
