"""The shell's connection to the hub: an asyncio thread with a HubClient, and a UI dispatcher.

Messages from the hub are batched into one JS call (``vh.receive([...])``) by a dispatcher thread,
so a slow repaint never stalls the socket. Messages from the page go out in order through the loop.

A page message may carry ``ref`` (an integer of the page's choosing): it is then sent as a request and
the hub's reply (same envelope id) reaches the page with that ``ref`` (``link.noreply`` if none came).

Reconnecting: the link says hello every 2 s and watches the socket (ZeroMQ reconnects by itself);
a dropped connection or an unanswered hello makes it offline at once (``link.offline``); the next
answered hello makes it online again (``link.online{workers}``, with the apps the hub runs now, so
the page can relaunch what a restarted hub lost). While online, every answered hello repeats
``link.online{again: true}``: a page that missed the first one (and the app list after it) catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from vehicle_host.errors import HostTimeoutError, VehicleHostError
from vehicle_host.hub.client import HubClient
from vehicle_host.wire import Envelope

log = logging.getLogger("vehicle_host.shell.link")

#: Message types the page may ask the shell to send, and the address each must go to: the hub
#: itself, or an app (``app:<id>``, routed by the hub to that app's worker after its own checks).
FROM_PAGE: dict[str, str] = {
    "app.list": "hub",
    "app.launch": "hub",
    "app.close": "hub",
    "app.back": "hub",
    "app.visibility": "hub",
    "ui.response": "hub",
    "app.info": "hub",
    "grant.set": "hub",
    "page.event": "app:",
    "page.painted": "app:",
}
#: Message types the hub may push to the page (anything else is dropped and counted here).
TO_PAGE = frozenset(
    {
        "app.list.result",
        "app.info.result",
        "grant.set.result",
        "app.closed",
        "app.error",
        "page.open",
        "page.close",
        "page.render",
        "page.setData",
        "ui.request",
        "state.changed",
    }
)
MAX_BATCH = 200
HELLO_INTERVAL_S = 2.0
REQUEST_TIMEOUT_S = 15.0
MAX_PENDING_REQUESTS = 64


def _allowed(type_: object, target: object) -> bool:
    where = FROM_PAGE.get(type_) if isinstance(type_, str) else None
    if where is None or not isinstance(target, str):
        return False
    return target == where if where == "hub" else target.startswith(where) and len(target) > len(where)


class HubLink:
    def __init__(self, endpoint: str, run_js: Callable[[str], object]) -> None:
        self.endpoint = endpoint
        self._run_js = run_js
        self._loop = asyncio.new_event_loop()
        self._ui: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=10_000)
        self._client: HubClient | None = None
        self._forward_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self.online = False
        self.reconnects = 0
        self.dropped_from_hub = 0
        self._threads = [
            threading.Thread(target=self._loop_main, name="hub-link", daemon=True),
            threading.Thread(target=self._dispatch_main, name="ui-dispatch", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    # -- page -> hub ------------------------------------------------------------------------------
    def send_from_page(self, raw: str) -> bool:
        """Called on pywebview's bridge threads with the page's JSON {type, target, payload}.

        Returns whether the message was queued for the hub (the wire codec checks its payload).
        """
        try:
            item = json.loads(raw)
            type_, target, payload = item["type"], item["target"], item["payload"]
            ref = item.get("ref")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            log.warning("the shell page sent a malformed message")
            return False
        if not _allowed(type_, target) or not isinstance(payload, dict):
            log.warning("the shell page may not send %r to %r", type_, target)
            return False
        if ref is not None and (type(ref) is not int or not 0 < ref < 2**31):
            log.warning("the shell page sent a bad request ref")
            return False
        self._loop.call_soon_threadsafe(self._send, type_, target, payload, ref)
        return True

    def _send(self, type_: str, target: str, payload: dict[str, Any], ref: int | None = None) -> None:
        client = self._client
        if client is None or (ref is not None and len(self._tasks) >= MAX_PENDING_REQUESTS):
            self._to_ui({"type": "link.dropped", "ref": ref, "payload": {"type": type_}})
            return
        if ref is not None:
            task = self._loop.create_task(self._request(client, type_, target, payload, ref))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        try:
            client.send(type_, target, payload)
        except VehicleHostError as exc:
            log.warning("not sent to the hub: %s", exc)

    async def _request(
        self, client: HubClient, type_: str, target: str, payload: dict[str, Any], ref: int
    ) -> None:
        try:
            reply = await client.request(type_, target, payload, timeout=REQUEST_TIMEOUT_S)
        except VehicleHostError as exc:
            log.warning("no answer to %s: %s", type_, exc)
            self._to_ui({"type": "link.noreply", "ref": ref, "payload": {"type": type_}})
            return
        if reply.type in TO_PAGE:
            self._to_ui({"type": reply.type, "ref": ref, "source": reply.source, "payload": reply.payload})

    # -- hub -> page ------------------------------------------------------------------------------
    def _to_ui(self, item: dict[str, Any]) -> None:
        try:
            self._ui.put_nowait(item)
        except queue.Full:
            log.error("the page is not keeping up; dropped a %s", item.get("type"))

    def _loop_main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._run())

    async def _run(self) -> None:
        client = self._client = HubClient(self.endpoint, role="shell")
        client.open()
        self._forward_task = asyncio.create_task(self._forward(client))
        monitor = asyncio.create_task(self._watch(client))
        try:
            while True:  # say hello until the hub answers, and again whenever it stops answering
                try:
                    await client.hello(timeout=HELLO_INTERVAL_S)
                    if not self.online:
                        workers = await self._workers(client)
                        self.online = True
                        log.info("the hub answers", extra={"workers": workers})
                        self._to_ui({"type": "link.online", "payload": {"workers": workers}})
                        client.send("app.list", "hub", {})
                    else:  # said again in case the page missed it (it ignores this while it knows)
                        self._to_ui({"type": "link.online", "payload": {"workers": None, "again": True}})
                except HostTimeoutError:
                    self._offline()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), HELLO_INTERVAL_S)
        finally:
            monitor.cancel()

    def _offline(self) -> None:
        if self.online:
            log.warning("the hub stopped answering")
            self.online = False
            self.reconnects += 1
            self._to_ui({"type": "link.offline", "payload": {}})

    async def _workers(self, client: HubClient) -> list[str] | None:
        """The apps the hub runs now (None if it would not say): a restarted hub runs none."""
        try:
            reply = await client.request("hub.stats", "hub", {}, timeout=HELLO_INTERVAL_S)
            workers = reply.payload["stats"].get("workers", {})
        except (VehicleHostError, KeyError, AttributeError):
            return None
        if not isinstance(workers, dict):
            return None
        return [app_id for app_id in workers if isinstance(app_id, str)]

    async def _watch(self, client: HubClient) -> None:
        """Socket events: a lost connection means offline now; a new one means say hello now."""
        sock: zmq.asyncio.Socket = client._sock  # the client's own DEALER (monitoring only reads events)
        monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        try:
            while True:
                event = parse_monitor_message(await monitor.recv_multipart())
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    self._offline()
                self._wake.set()
        except (zmq.ZMQError, asyncio.CancelledError):
            pass
        finally:
            monitor.close(0)

    async def _forward(self, client: HubClient) -> None:
        while True:
            message: Envelope = await client.inbox.get()
            if message.type not in TO_PAGE:
                self.dropped_from_hub += 1
                continue
            self._to_ui({"type": message.type, "source": message.source, "payload": message.payload})

    def _dispatch_main(self) -> None:
        while True:
            first = self._ui.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._ui.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    return
                batch.append(item)
            # app.list.result is a reply; the page treats it like any push
            try:
                # bytes (allowed on the wire) have no JSON form: they reach the page as null
                script = "window.vh && window.vh.receive(" + json.dumps(batch, default=lambda _: None) + ")"
                self._run_js(script)
            except Exception:
                log.exception("could not deliver %d messages to the page", len(batch))

    def stop(self) -> None:
        self._to_ui(None)  # type: ignore[arg-type]
