"""The ``vhbus`` broker: one ZeroMQ XPUB socket that relays every participant's frames to all of them.

Participants connect an XSUB socket, subscribe to everything and send their frames upstream on a
second XSUB socket; the broker relays each well-formed frame to every subscriber (the sender too; a
bus drops its own frames unless asked to receive them). XSUB sockets re-subscribe by themselves when
a broker restarts, so participants survive a broker restart.

Only one broker may serve an endpoint: for ``ipc://`` a lock file next to the socket decides (ZeroMQ
would otherwise silently take the socket path over), for ``tcp://`` the bind itself does.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import zmq

from vehicle_host.canbus import frames
from vehicle_host.errors import DeviceError

LOG = logging.getLogger(__name__)

#: Frames the broker queues per slow participant before it drops (like a full receive buffer).
BROKER_HWM = 20_000
_POLL_MS = 100


class EndpointError(DeviceError):
    """A vhbus channel is not a usable ZeroMQ endpoint."""


class BrokerBusyError(DeviceError):
    """Another broker already serves the endpoint."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A validated bus endpoint: ``ipc:///path`` or ``tcp://127.0.0.1:PORT`` (loopback only)."""

    url: str
    ipc_path: Path | None


def parse_endpoint(channel: object) -> Endpoint:
    """Validate a vhbus channel string; raises :class:`EndpointError` saying what is wrong."""
    if not isinstance(channel, str) or not channel or len(channel) > 200:
        raise EndpointError(
            f"vhbus channel must be 'ipc:///path/bus.sock' or 'tcp://127.0.0.1:PORT', not {channel!r}"
        )
    if channel.startswith("ipc://"):
        path = channel[len("ipc://") :]
        if not path.startswith("/"):
            raise EndpointError(f"vhbus ipc channel needs an absolute path: {channel!r}")
        if len(path.encode()) > 100:
            raise EndpointError(f"vhbus socket path is too long for a unix socket (max 100 bytes): {path}")
        return Endpoint(channel, Path(path))
    if channel.startswith("tcp://"):
        parts = urlsplit(channel)
        try:
            port = parts.port
        except ValueError:
            port = None
        host = parts.hostname or ""
        if port is None or not 0 < port < 65536:
            raise EndpointError(f"vhbus tcp channel needs a port: {channel!r} (e.g. tcp://127.0.0.1:29536)")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise EndpointError(f"vhbus only listens on loopback addresses (127.0.0.1, ::1), not {host!r}")
        return Endpoint(channel, None)
    raise EndpointError(
        f"vhbus channel must start with ipc:// or tcp:// (got {channel!r}); "
        "e.g. ipc:///run/vehicle-host/can0.sock"
    )


class Broker:
    """A bound broker socket plus its lock; :meth:`run` relays until :meth:`stop` is called."""

    def __init__(self, endpoint: str | Endpoint) -> None:
        self.endpoint = endpoint if isinstance(endpoint, Endpoint) else parse_endpoint(endpoint)
        self.relayed = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._lock_file: IO[bytes] | None = None
        self._context = zmq.Context(io_threads=1)
        self._socket: zmq.Socket[bytes] | None = None
        try:
            self._lock()
            sock: zmq.Socket[bytes] = self._context.socket(zmq.XPUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, BROKER_HWM)
            sock.setsockopt(zmq.RCVHWM, BROKER_HWM)
            sock.setsockopt(zmq.MAXMSGSIZE, frames.MAX_MESSAGE)
            self._socket = sock
            try:
                sock.bind(self.endpoint.url)
            except zmq.ZMQError as exc:
                if exc.errno == zmq.EADDRINUSE:
                    raise BrokerBusyError(f"another process already serves {self.endpoint.url}") from exc
                raise EndpointError(f"cannot listen on {self.endpoint.url}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        path = self.endpoint.ipc_path
        if path is None:
            return
        if not path.parent.is_dir():
            raise EndpointError(f"directory for the vhbus socket does not exist: {path.parent}")
        lock_path = path.with_name(path.name + ".lock")
        handle = lock_path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise BrokerBusyError(f"another process already serves {self.endpoint.url}") from exc
        self._lock_file = handle

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Relay frames until :meth:`stop`; the socket is closed on return."""
        sock = self._socket
        if sock is None:
            raise EndpointError("broker is closed")
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(_POLL_MS):
                    continue
                while True:
                    try:
                        raw = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if raw[:1] in (b"\x00", b"\x01"):
                        continue  # a (un)subscription, handled by the socket itself
                    if not frames.is_relayable(raw):
                        self.dropped += 1
                        continue
                    try:
                        sock.send(raw, zmq.NOBLOCK)
                        self.relayed += 1
                    except zmq.Again:
                        self.dropped += 1
        finally:
            self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        self._context.term()
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None


class BrokerThread:
    """A broker running in a daemon thread of the current process."""

    def __init__(self, endpoint: str | Endpoint) -> None:
        self.broker = Broker(endpoint)
        self._thread = threading.Thread(target=self.broker.run, name="vhbus-broker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.broker.stop()
        self._thread.join(2.0)


def try_start_broker(endpoint: Endpoint) -> BrokerThread | None:
    """Start a broker for ``endpoint`` unless another one serves it already."""
    try:
        return BrokerThread(endpoint)
    except BrokerBusyError:
        return None


def serve_bus(endpoint: str, stop: threading.Event | None = None) -> None:
    """Run a broker in the calling thread until ``stop`` is set (or forever)."""
    broker = Broker(endpoint)
    LOG.info("vhbus broker serving %s (pid %d)", broker.endpoint.url, os.getpid())
    if stop is not None:

        def watch() -> None:
            stop.wait()
            broker.stop()

        threading.Thread(target=watch, daemon=True).start()
    broker.run()
