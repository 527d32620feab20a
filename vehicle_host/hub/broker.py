"""The broker: ZeroMQ sockets, decoding with limits, counters. No knowledge of what messages mean.

The front socket (ROUTER) serves the shell and local clients. Each worker gets a ROUTER socket of
its own, so the hub knows which app a message came from by the socket, never by what it claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.asyncio

from vehicle_host.config import ensure_private_dir
from vehicle_host.errors import WireError
from vehicle_host.wire import MAX_MESSAGE_BYTES, Envelope, decode, encode

log = logging.getLogger("vehicle_host.hub.broker")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message came in: the front socket (with the peer's routing id) or a worker's socket."""

    kind: str  # "front" or "worker"
    peer: bytes = b""
    app_id: str = ""


Handler = Callable[[Envelope, Origin], Awaitable[None]]


class Broker:
    def __init__(self, runtime_dir: Path, handler: Handler, *, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.runtime_dir = runtime_dir
        self.front_endpoint = f"ipc://{runtime_dir / 'hub.sock'}"
        self.counters: Counter[str] = Counter()
        self._handler = handler
        self._max_bytes = max_bytes
        self._ctx = zmq.asyncio.Context()
        self._front = self._socket()
        self._workers: dict[str, zmq.asyncio.Socket] = {}
        self._worker_peers: dict[str, bytes] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def _socket(self) -> zmq.asyncio.Socket:
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        # anything far beyond the message limit is cut off by libzmq before it is buffered whole
        sock.setsockopt(zmq.MAXMSGSIZE, self._max_bytes * 2)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        return sock

    def start(self) -> None:
        ensure_private_dir(self.runtime_dir)
        self._front.bind(self.front_endpoint)
        self._tasks["front"] = asyncio.create_task(self._serve(self._front, "front", ""))

    def open_worker_socket(self, app_id: str, slot: str) -> str:
        """Bind a socket for one worker; returns the endpoint the worker must connect to."""
        self.close_worker_socket(app_id)
        path = self.runtime_dir / f"w-{slot}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = self._socket()
        sock.bind(f"ipc://{path}")
        self._workers[app_id] = sock
        self._tasks[f"worker:{app_id}"] = asyncio.create_task(self._serve(sock, "worker", app_id))
        return f"ipc://{path}"

    def close_worker_socket(self, app_id: str) -> None:
        task = self._tasks.pop(f"worker:{app_id}", None)
        if task is not None:
            task.cancel()
        self._worker_peers.pop(app_id, None)
        sock = self._workers.pop(app_id, None)
        if sock is not None:
            endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            sock.close(0)
            with contextlib.suppress(FileNotFoundError):
                Path(endpoint.removeprefix("ipc://")).unlink()

    async def _serve(self, sock: zmq.asyncio.Socket, kind: str, app_id: str) -> None:
        while True:
            frames = await sock.recv_multipart(copy=True)
            self.counters["received"] += 1
            if len(frames) != 2:
                self.counters["dropped_malformed"] += 1
                continue
            peer, data = frames
            if len(data) > self._max_bytes:
                self.counters["dropped_oversized"] += 1
                log.warning(
                    "dropped an oversized message", extra={"bytes": len(data), "from": app_id or kind}
                )
                continue
            try:
                message = decode(data, max_bytes=self._max_bytes)
            except WireError as exc:
                self.counters["dropped_malformed"] += 1
                log.warning("dropped a malformed message", extra={"error": str(exc), "from": app_id or kind})
                continue
            try:
                await self._handler(message, Origin(kind, peer, app_id))
            except Exception:  # one bad message must never stop the broker
                self.counters["handler_errors"] += 1
                log.exception("error while handling %s", message.type)

    async def send_front(self, peer: bytes, message: Envelope) -> bool:
        return await self._send(self._front, peer, message)

    async def send_worker(self, app_id: str, message: Envelope) -> bool:
        sock = self._workers.get(app_id)
        if sock is None:
            self.counters["dropped_unroutable"] += 1
            return False
        # the worker's DEALER is the only peer; ROUTER needs its routing id, learnt from its hello
        peer = self._worker_peers.get(app_id)
        if peer is None:
            self.counters["dropped_unroutable"] += 1
            return False
        return await self._send(sock, peer, message)

    def learn_worker_peer(self, app_id: str, peer: bytes) -> bool:
        """Remember the worker's routing id from its first hello; later hellos are refused."""
        if app_id in self._worker_peers:
            return False
        self._worker_peers[app_id] = peer
        return True

    async def _send(self, sock: zmq.asyncio.Socket, peer: bytes, message: Envelope) -> bool:
        try:
            data = encode(message, max_bytes=self._max_bytes)
        except WireError as exc:
            self.counters["dropped_unencodable"] += 1
            log.warning("refused to send %s: %s", message.type, exc)
            return False
        await sock.send_multipart([peer, data])
        self.counters["sent"] += 1
        return True

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for app_id in list(self._workers):
            self.close_worker_socket(app_id)
        self._front.close(0)
        self._ctx.term()
