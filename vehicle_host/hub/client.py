"""An asyncio client of the hub (DEALER socket): the shell uses it, and so do the tests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import zmq
import zmq.asyncio

from vehicle_host.errors import HostTimeoutError, WireError
from vehicle_host.wire import API_LEVEL, Envelope, decode, encode


class HubClient:
    """Connects as ``role`` ("shell" or "client"); replies go to ``request``, the rest to ``inbox``."""

    def __init__(self, endpoint: str, *, role: str = "client") -> None:
        self.endpoint = endpoint
        self.role = role
        self.address = role
        self.inbox: asyncio.Queue[Envelope] = asyncio.Queue(maxsize=10_000)
        self._ctx = zmq.asyncio.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Envelope]] = {}
        self._reader: asyncio.Task[None] | None = None

    def open(self) -> None:
        """Connect the socket and start reading (ZeroMQ reconnects by itself if the hub restarts)."""
        self._sock.connect(self.endpoint)
        self._reader = asyncio.create_task(self._read())

    async def connect(self, *, timeout: float = 10.0) -> Envelope:
        self.open()
        return await self.hello(timeout=timeout)

    async def hello(self, *, timeout: float = 10.0) -> Envelope:
        return await self.request(
            "hello", "hub", {"role": self.role, "api_level": API_LEVEL}, timeout=timeout
        )

    def send(self, type_: str, target: str, payload: dict[str, Any]) -> int:
        message_id = next(self._ids)
        self._sock.send(encode(Envelope(type_, message_id, self.address, target, payload)))
        return message_id

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (tests use it to send garbage)."""
        self._sock.send(data)

    async def request(
        self, type_: str, target: str, payload: dict[str, Any], *, timeout: float = 10.0
    ) -> Envelope:
        message_id = next(self._ids)
        future: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        try:
            self._sock.send(encode(Envelope(type_, message_id, self.address, target, payload)))
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise HostTimeoutError(f"the hub did not answer {type_} within {timeout:g} s") from None
        finally:
            self._waiting.pop(message_id, None)

    async def expect(self, type_: str, *, timeout: float = 10.0, **fields: Any) -> Envelope:
        """Wait for the next inbox message of ``type_`` whose payload has ``fields``; skip others."""

        async def _wait() -> Envelope:
            while True:
                message = await self.inbox.get()
                if message.type == type_ and all(message.payload.get(k) == v for k, v in fields.items()):
                    return message

        try:
            return await asyncio.wait_for(_wait(), timeout)
        except TimeoutError:
            raise HostTimeoutError(f"no {type_} {fields or ''} within {timeout:g} s") from None

    async def _read(self) -> None:
        while True:
            data = await self._sock.recv()
            try:
                message = decode(data)
            except WireError:
                continue
            future = self._waiting.get(message.id)
            if future is not None and not future.done() and message.source == "hub":
                future.set_result(message)
            elif self.inbox.full():
                self.inbox.get_nowait()  # keep the newest; a stuck consumer must not grow memory
                self.inbox.put_nowait(message)
            else:
                self.inbox.put_nowait(message)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._sock.close(0)
