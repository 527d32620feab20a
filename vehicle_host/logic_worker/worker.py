"""The worker's message loop: one DEALER socket to the hub, nothing else.

The worker may be started before it knows its app (a pre-started pool): it says ``hello``, then
waits for ``worker.start``, which brings the app id, the bundle's JS sources and everything else it
needs. The loop polls the socket with a timeout that is the time to the next timer, call deadline or
heartbeat; what to do with each message is :class:`~vehicle_host.logic_worker.session.AppSession`'s
business.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq

from vehicle_host.errors import WireError
from vehicle_host.logic_worker.runtime import ScriptError
from vehicle_host.logic_worker.session import AppSession
from vehicle_host.parent_death import die_with_parent
from vehicle_host.wire import API_LEVEL, MAX_MESSAGE_BYTES, Envelope, decode, encode

log = logging.getLogger("vehicle_host.worker")

HEARTBEAT_S = 1.0
#: Exit code when the realm can no longer run code (the hub then shows an error page).
EXIT_REALM_BROKEN = 70
#: Messages handled in a row before timers and heartbeats get their turn.
MAX_BURST = 64
#: A worker that hears nothing from its hub this long after its hello exits: the hub died as it was
#: being started (a live hub answers at once, and kills a worker silent past its start timeout).
HUB_SILENCE_S = 30.0
EXIT_NO_HUB = 75

#: Message types the hub may send a worker; anything else is dropped.
ACCEPTED = frozenset(
    {
        "hello.ok",
        "worker.start",
        "page.event",
        "page.painted",
        "nav.result",
        "api.result",
        "api.event",
        "app.visibility",
    }
)


class Worker:
    def __init__(self, endpoint: str, app_id: str = "") -> None:
        self.address = f"app:{app_id}" if app_id else "worker"
        self._app_id = app_id
        self._sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 1000)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES * 2)
        # the hub's end closes when the hub dies: then nobody will ever send us work
        self._gone: zmq.Socket[bytes] = self._sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._sock.connect(endpoint)
        self._next_id = 1
        self._last_heartbeat = time.monotonic()
        self._hello_at = self._last_heartbeat
        self._heard = False  # any valid message from the hub since our hello
        self.session = AppSession(self.send)

    def send(self, type_: str, target: str, payload: dict[str, Any]) -> None:
        self._next_id += 1
        self._sock.send(encode(Envelope(type_, self._next_id, self.address, target, payload)))

    def serve(self) -> int:
        """Run until the realm breaks (returns the exit code); the hub stops us with SIGTERM."""
        hello: dict[str, Any] = {"role": "worker", "api_level": API_LEVEL}
        if self._app_id:
            hello["app_id"] = self._app_id
        self.send("hello", "hub", hello)
        self._hello_at = time.monotonic()
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._gone, zmq.POLLIN)
        while not self.session.broken:
            if not self._heard and time.monotonic() - self._hello_at > HUB_SILENCE_S:
                log.error("the hub has not answered for %.0f s since hello; the worker exits", HUB_SILENCE_S)
                return EXIT_NO_HUB
            ready = dict(poller.poll(self._poll_timeout_ms()))
            if self._gone in ready:
                log.error("the connection to the hub closed (the hub is gone); the worker exits")
                return EXIT_NO_HUB
            if self._sock in ready:
                for _ in range(MAX_BURST):
                    try:
                        data = self._sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self.receive(data)
                    self._heartbeat_if_due()
                    if self.session.broken:
                        break
            self.session.tick()
            self._heartbeat_if_due()
        log.error("the app's JS realm can no longer run code; the worker exits")
        return EXIT_REALM_BROKEN

    def _poll_timeout_ms(self) -> int:
        now = time.monotonic()
        wake = self._last_heartbeat + HEARTBEAT_S
        deadline = self.session.next_deadline()
        if deadline is not None:
            wake = min(wake, deadline)
        if not self._heard:
            wake = min(wake, self._hello_at + HUB_SILENCE_S)
        return max(0, int((wake - now) * 1000 + 0.999))

    def _heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_S:
            self._last_heartbeat = now
            self.send("heartbeat", "hub", {})

    def receive(self, data: bytes) -> None:
        try:
            message = decode(data)
        except WireError as exc:
            log.warning("dropped a malformed message from the hub: %s", exc)
            return
        if message.type not in ACCEPTED:
            log.warning("dropped a %s message: not for workers", message.type)
            return
        self._heard = True
        if message.type == "hello.ok":
            return
        if message.type == "worker.start":
            self._app_id = message.payload["app_id"]
            self.address = f"app:{self._app_id}"
        try:
            self.session.handle(message)
        except (WireError, KeyError, TypeError, ValueError) as exc:
            # a message the session could not use costs that message, never the worker
            self.session.report(ScriptError(f"the worker could not handle {message.type}: {exc}"[:2000]))


def serve(endpoint: str, app_id: str = "") -> int:
    """Connect to the hub at ``endpoint`` and run the worker loop; returns the process exit code."""
    return Worker(endpoint, app_id).serve()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="vehicle-host-worker")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--app-id", default="", help="optional: a pooled worker learns it from worker.start")
    args = parser.parse_args(argv)
    die_with_parent()
    logging.basicConfig(level=logging.INFO, format="worker %(levelname)s %(message)s")
    return serve(args.endpoint, args.app_id)
