"""A real hub whose worker sockets a test can speak on raw, as a compromised worker would.

``python -m tests.hostile.runtime_helpers hub ARGS`` runs the real :class:`~vehicle_host.hub.service.Hub`
(the same as ``vehicle-host hub ARGS``) with one difference: its workers are
``python -m tests.hostile.runtime_helpers worker``, the real logic worker plus a control socket. Every
app runs its real JS; once a worker has its app it also connects a DEALER (routing id = the app id) to
``<root>/ctl.sock``, where the test's :class:`Controller` can make it send any frames on its own hub
socket (what a worker whose JS engine was taken over could send) and sees what the hub sends it.

Control frames: test -> worker ``[b"raw", frame, ...]`` (sent as one multipart message) and
``[b"flood", b"<count>", data]`` (``data`` sent ``count`` times); worker -> test ``[b"recv", data]``
for each message from the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import zmq

from vehicle_host.wire import Envelope, decode, encode

WORKER_MODULE = "tests.hostile.runtime_helpers"
CTL_NAME = "ctl.sock"
ROGUE = "org.vehiclehost.hostile.rogue"
VICTIM = "org.vehiclehost.hostile.victim"


# ---------------------------------------------------------------------------------------- processes
def _ctl_endpoint(worker_endpoint: str) -> str:
    """``ipc://<root>/run/w-N.sock`` -> ``ipc://<root>/ctl.sock``."""
    run_dir = Path(worker_endpoint.removeprefix("ipc://")).parent
    return f"ipc://{run_dir.parent / CTL_NAME}"


def worker_main(argv: list[str]) -> int:
    """The real worker loop, plus the control socket (see the module docstring)."""
    import argparse

    from vehicle_host.logic_worker import worker as real
    from vehicle_host.parent_death import die_with_parent

    parser = argparse.ArgumentParser(prog="rogue-worker")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--confine", default=None)  # ignored: the hub runs these unconfined
    args = parser.parse_args(argv)
    die_with_parent()

    class RogueWorker(real.Worker):
        ctl: zmq.Socket[bytes] | None = None

        def receive(self, data: bytes) -> None:
            super().receive(data)
            if self.ctl is None and self._app_id:
                self.ctl = zmq.Context.instance().socket(zmq.DEALER)
                self.ctl.setsockopt(zmq.LINGER, 0)
                self.ctl.setsockopt(zmq.ROUTING_ID, self._app_id.encode())
                self.ctl.setsockopt(zmq.SNDHWM, 10_000)
                self.ctl.connect(_ctl_endpoint(args.endpoint))
            if self.ctl is not None:
                with contextlib.suppress(zmq.Again):
                    self.ctl.send_multipart([b"recv", data], zmq.NOBLOCK)

        def serve(self) -> int:
            self.send("hello", "hub", {"role": "worker", "api_level": 1})
            while not self.session.broken:
                poller = zmq.Poller()
                poller.register(self._sock, zmq.POLLIN)
                if self.ctl is not None:
                    poller.register(self.ctl, zmq.POLLIN)
                ready = dict(poller.poll(min(self._poll_timeout_ms(), 50)))
                if self._sock in ready:
                    for _ in range(real.MAX_BURST):
                        try:
                            self.receive(self._sock.recv(zmq.NOBLOCK))
                        except zmq.Again:
                            break
                if self.ctl is not None and self.ctl in ready:
                    while True:
                        try:
                            frames = self.ctl.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        if frames and frames[0] == b"raw" and len(frames) > 1:
                            self._sock.send_multipart(frames[1:])
                        elif frames and frames[0] == b"flood" and len(frames) == 3:
                            for _ in range(int(frames[1])):
                                self._sock.send(frames[2])
                self.session.tick()
                self._heartbeat_if_due()
            return real.EXIT_REALM_BROKEN

    return RogueWorker(args.endpoint).serve()


def hub_main(argv: list[str]) -> int:
    """``vehicle-host hub`` with the workers of :func:`worker_main`."""
    import argparse

    from vehicle_host import config, logs
    from vehicle_host.hub.service import Hub
    from vehicle_host.hub.supervisor import Supervisor
    from vehicle_host.sandbox.config import SandboxConfig

    parser = argparse.ArgumentParser(prog="rogue-hub")
    for name in ("--apps", "--runtime-dir", "--state-dir"):
        parser.add_argument(name, required=True)
    args = parser.parse_args(argv)
    logs.setup("INFO")
    hub = Hub(config.resolve(args.apps, args.runtime_dir, state_dir=args.state_dir, config_file=None))
    hub.supervisor = Supervisor(
        hub.broker,
        hub._worker_exited,
        SandboxConfig.resolve(hub.config.sandbox),
        worker_args=("-m", WORKER_MODULE, "worker"),
    )
    asyncio.run(hub.run())
    return 0


def start_rogue_hub(root: Path, apps_dir: Path, *, plugins: str = "storage") -> Any:
    """Like ``tests.conftest.start_hub``, but with :func:`hub_main`; returns a ``HubProcess``."""
    from tests.conftest import REPO, HubProcess

    log_path = root / "hub.log"
    env = {
        **os.environ,
        "VEHICLE_HOST_PLUGINS": plugins,
        "VEHICLE_HOST_SANDBOX": "0",  # the stand-in worker is this file, run from the repository
        "VEHICLE_HOST_CONFINE": "0",
        "VEHICLE_HOST_POOL_SIZE": "2",
    }
    argv = [sys.executable, "-m", WORKER_MODULE, "hub", "--apps", str(apps_dir)]
    argv += ["--runtime-dir", str(root / "run"), "--state-dir", str(root / "state")]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
        )
    hub = HubProcess(process, root / "run", apps_dir, log_path)
    deadline = time.monotonic() + 20
    while not (hub.runtime_dir / "hub.sock").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            hub.stop()  # a hub that is still starting would outlive the test
            raise RuntimeError(f"hub did not start:\n{hub.log()}")
        time.sleep(0.05)
    return hub


# ---------------------------------------------------------------------------------------- test side
class Controller:
    """The test's end of ``ctl.sock``: make an app's worker send raw frames, see what it is sent."""

    def __init__(self, root: Path) -> None:
        import zmq.asyncio

        path = root / CTL_NAME
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.sock = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unknown worker is an error, not a drop
        self.sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a relaunched app's new worker takes over
        self.sock.bind(f"ipc://{path}")
        self.received: dict[str, list[Envelope]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            who, kind, data = await self.sock.recv_multipart()
            if kind == b"recv":
                with contextlib.suppress(Exception):
                    self.received.setdefault(who.decode(), []).append(decode(data))

    async def send(self, app_id: str, *frames: bytes, timeout: float = 10.0) -> None:
        """Make ``app_id``'s worker send ``frames`` as one message on its hub socket."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.sock.send_multipart([app_id.encode(), b"raw", *frames])
                return
            except zmq.ZMQError:  # its worker has not connected (yet)
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the worker of {app_id} never connected to the controller"
                    ) from None
                await asyncio.sleep(0.05)

    async def flood(self, app_id: str, count: int, data: bytes) -> None:
        """Make ``app_id``'s worker send ``data`` ``count`` times, as fast as its socket takes them."""
        await self.send(app_id, data)  # waits until the worker is connected
        await self.sock.send_multipart([app_id.encode(), b"flood", str(count).encode(), data])

    async def forge(self, app_id: str, type_: str, payload: dict[str, Any], *, source: str = "") -> None:
        """A well-formed message of ``type_`` from ``app_id``'s worker (``source`` as it claims)."""
        envelope = Envelope(type_, 7, source or f"app:{app_id}", "hub", payload)
        await self.send(app_id, encode(envelope))

    async def expect(
        self, app_id: str, type_: str, match: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> Envelope:
        """The first message of ``type_`` the hub sent ``app_id``'s worker whose payload ``match``es."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.received.get(app_id, []):
                if message.type == type_ and match(message.payload):
                    return message
            await asyncio.sleep(0.02)
        raise AssertionError(f"the hub sent {app_id} no matching {type_} within {timeout:g} s")

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self.sock.close(0)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true (polling), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    role, rest = sys.argv[1], sys.argv[2:]
    sys.exit(worker_main(rest) if role == "worker" else hub_main(rest))
