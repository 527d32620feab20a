"""The broker: ZeroMQ sockets, decoding with limits, counters. No knowledge of what messages mean.

The front socket (ROUTER) serves the shell and local clients. Each worker gets a ROUTER socket of
its own, ``w-<slot>.sock``, so the hub knows which worker a message came from by the socket, never by
what it claims. A slot is bound to an app once the supervisor hands the worker to it; while the
worker idles in the pool its messages carry an empty ``app_id``. Worker messages are counted and
rate limited per slot before they are decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.asyncio

from vehicle_host.config import ensure_private_dir
from vehicle_host.errors import WireError
from vehicle_host.hub.accounting import RateLimiter, RateMeter
from vehicle_host.sandbox.config import WorkerLimits
from vehicle_host.wire import MAX_MESSAGE_BYTES, Envelope, decode, encode

log = logging.getLogger("vehicle_host.hub.broker")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message came in: the front socket (with the peer's routing id) or a worker's slot.

    For a worker, ``slot`` names its socket and ``app_id`` the app the slot is bound to ("" while
    the worker idles in the pool).
    """

    kind: str  # "front" or "worker"
    peer: bytes = b""
    app_id: str = ""
    slot: str = ""


Handler = Callable[[Envelope, Origin], Awaitable[None]]
FloodCallback = Callable[[str], None]  # slot
#: A socket's loop lets the others run after this many messages: pyzmq's recv does not suspend
#: while messages are queued, so a flooding peer would otherwise starve every other socket.
YIELD_EVERY = 32
#: Refusals logged per (reason, sender): a burst of this many, then this many per second; the rest are
#: only counted, so a peer sending garbage in a loop cannot flood the log.
REFUSAL_LOG_BURST = 10
REFUSAL_LOG_RATE = 1.0
MAX_REFUSAL_KEYS = 256


@dataclass
class _Slot:
    slot: str
    path: Path
    sock: zmq.asyncio.Socket
    limiter: RateLimiter
    meter: RateMeter = field(default_factory=RateMeter)
    app_id: str = ""
    peer: bytes | None = None
    task: asyncio.Task[None] | None = None
    flood_reported: bool = False


class Broker:
    def __init__(
        self,
        runtime_dir: Path,
        handler: Handler,
        *,
        max_bytes: int = MAX_MESSAGE_BYTES,
        limits: WorkerLimits | None = None,
        on_flood: FloodCallback | None = None,
    ) -> None:
        self.runtime_dir = runtime_dir
        self.front_endpoint = f"ipc://{runtime_dir / 'hub.sock'}"
        self.counters: Counter[str] = Counter()
        self.limits = limits or WorkerLimits()
        #: called once per slot when a worker keeps flooding past the hard bound (the supervisor kills it)
        self.on_flood = on_flood
        self._handler = handler
        self._max_bytes = max_bytes
        self._ctx = zmq.asyncio.Context()
        self._front = self._socket()
        self._slots: dict[str, _Slot] = {}
        self._apps: dict[str, str] = {}  # app id -> slot
        self._front_task: asyncio.Task[None] | None = None
        self._refusal_logs: dict[tuple[str, str], RateLimiter] = {}

    def refuse(self, counter: str, message: str, **fields: object) -> None:
        """Count a refused message under ``counter`` and log why (rate limited per reason and sender)."""
        self.counters[counter] += 1
        sender = str(fields.get("from") or fields.get("app_id") or "")  # a worker's slot, or the front
        key = (message, sender)
        budget = self._refusal_logs.get(key)
        if budget is None:
            if len(self._refusal_logs) >= MAX_REFUSAL_KEYS:
                self._refusal_logs.clear()
            budget = self._refusal_logs[key] = RateLimiter(REFUSAL_LOG_RATE, REFUSAL_LOG_BURST, 1 << 30)
        if budget.allow(time.monotonic()):
            log.warning(message, extra={"counter": counter, **fields})

    def _refuse_from(
        self, kind: str, entry: _Slot | None, counter: str, message: str, **fields: object
    ) -> None:
        """``refuse`` for a message as it came in: names the socket (and the worker's app)."""
        fields["from"] = kind if entry is None else f"slot {entry.slot}"
        if entry is not None and entry.app_id:
            fields["app_id"] = entry.app_id
        self.refuse(counter, message, **fields)

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
        self._front_task = asyncio.create_task(self._serve_front())

    # -- worker slots -----------------------------------------------------------------------------
    def open_worker_socket(self, slot: str) -> Path:
        """Bind ``w-<slot>.sock`` for one worker; returns the socket file's path on the host."""
        if not slot or not slot.isalnum() or len(slot) > 16:
            raise ValueError(f"bad slot name {slot!r}")
        self.close_worker_socket(slot)
        path = self.runtime_dir / f"w-{slot}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = self._socket()
        sock.bind(f"ipc://{path}")
        limits = self.limits
        entry = _Slot(
            slot, path, sock, RateLimiter(limits.msg_rate, limits.msg_burst, limits.msg_kill_dropped)
        )
        entry.task = asyncio.create_task(self._serve_worker(entry))
        self._slots[slot] = entry
        return path

    def bind_slot(self, slot: str, app_id: str) -> None:
        """Label the slot's messages with ``app_id`` from now on; an app has one slot at a time."""
        entry = self._slots[slot]
        if entry.app_id:
            raise ValueError(f"slot {slot} is already bound to {entry.app_id}")
        old = self._apps.get(app_id)
        if old is not None and old in self._slots:
            self._slots[old].app_id = ""  # an older slot of the same app no longer speaks for it
        entry.app_id = app_id
        self._apps[app_id] = slot

    def close_worker_socket(self, slot: str) -> None:
        entry = self._slots.pop(slot, None)
        if entry is None:
            return
        if entry.app_id and self._apps.get(entry.app_id) == slot:
            del self._apps[entry.app_id]
        if entry.task is not None:
            entry.task.cancel()
        entry.sock.close(0)
        with contextlib.suppress(FileNotFoundError):
            entry.path.unlink()

    def learn_worker_peer(self, slot: str, peer: bytes) -> bool:
        """Remember the worker's routing id from its first hello; any other peer is refused."""
        entry = self._slots.get(slot)
        if entry is None or entry.peer is not None:
            return False
        entry.peer = peer
        return True

    def slot_stats(self, slot: str) -> dict[str, int]:
        entry = self._slots.get(slot)
        if entry is None:
            return {}
        now = time.monotonic()
        return {
            "msg_rate": entry.meter.rate(now),
            "msgs": entry.meter.total,
            "dropped_rate": entry.limiter.dropped,
        }

    # -- receiving --------------------------------------------------------------------------------
    async def _serve_front(self) -> None:
        count = 0
        while True:
            frames = await self._front.recv_multipart(copy=True)
            await self._dispatch(frames, "front", None)
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _serve_worker(self, entry: _Slot) -> None:
        while True:
            frames = await entry.sock.recv_multipart(copy=True)
            if entry.meter.total % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            now = time.monotonic()
            entry.meter.hit(now)
            if not entry.limiter.allow(now):
                self.counters["dropped_rate"] += 1
                if entry.limiter.flooding and not entry.flood_reported:
                    entry.flood_reported = True
                    log.warning(
                        "worker floods the hub",
                        extra={"slot": entry.slot, "app_id": entry.app_id, "dropped": entry.limiter.dropped},
                    )
                    if self.on_flood is not None:
                        self.on_flood(entry.slot)
                continue
            await self._dispatch(frames, "worker", entry)

    async def _dispatch(self, frames: list[bytes], kind: str, entry: _Slot | None) -> None:
        self.counters["received"] += 1
        if len(frames) != 2:
            # ROUTER adds the peer's id: anything but one data frame is a multipart message, refused whole
            self._refuse_from(
                kind,
                entry,
                "dropped_malformed",
                "refused a multipart message: one message is one frame",
                frames=len(frames) - 1,
            )
            return
        peer, data = frames
        if entry is not None and entry.peer is not None and peer != entry.peer:
            # a second connection on a worker's socket: only the worker that said hello is heard
            self._refuse_from(
                kind,
                entry,
                "dropped_foreign_peer",
                "refused a message from a second connection on a worker's socket",
            )
            return
        if len(data) > self._max_bytes:
            self._refuse_from(
                kind,
                entry,
                "dropped_oversized",
                "dropped an oversized message",
                bytes=len(data),
                limit=self._max_bytes,
            )
            return
        try:
            message = decode(data, max_bytes=self._max_bytes)
        except WireError as exc:
            self._refuse_from(kind, entry, "dropped_malformed", "dropped a malformed message", error=str(exc))
            return
        origin = Origin(kind, peer) if entry is None else Origin(kind, peer, entry.app_id, entry.slot)
        try:
            await self._handler(message, origin)
        except Exception:  # one bad message must never stop the broker
            self.counters["handler_errors"] += 1
            log.exception("error while handling %s", message.type)

    # -- sending ----------------------------------------------------------------------------------
    async def send_front(self, peer: bytes, message: Envelope) -> bool:
        return await self._send(self._front, peer, message)

    async def send_worker(self, app_id: str, message: Envelope) -> bool:
        """Send to the worker bound to ``app_id`` (False if there is none or it has not said hello)."""
        slot = self._apps.get(app_id)
        return await self.send_slot(slot, message) if slot is not None else self._unroutable()

    async def send_slot(self, slot: str, message: Envelope) -> bool:
        entry = self._slots.get(slot)
        # the worker's DEALER is the only peer; ROUTER needs its routing id, learnt from its hello
        if entry is None or entry.peer is None:
            return self._unroutable()
        return await self._send(entry.sock, entry.peer, message)

    def _unroutable(self) -> bool:
        self.counters["dropped_unroutable"] += 1
        return False

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
        tasks = [entry.task for entry in self._slots.values() if entry.task is not None]
        if self._front_task is not None:
            tasks.append(self._front_task)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for slot in list(self._slots):
            self.close_worker_socket(slot)
        self._front.close(0)
        self._ctx.term()
