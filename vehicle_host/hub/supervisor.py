"""Starts, pools, watches and stops logic worker processes (one per running mini-app).

- A pool of idle pre-started workers (``pool_size``, default 1) makes launches skip the start-up
  cost; ``assign`` hands one to an app and the pool refills in the background. A worker serves one
  app for its whole life and is never reused.
- Every worker runs in bubblewrap (``vehicle_host.sandbox``) and confines itself before any JS runs.
  Without bwrap no worker starts unless sandboxing is explicitly disabled.
- Liveness: a worker must say ``hello`` within ``start_timeout_s`` and then send something (it sends
  ``heartbeat`` every second) at least every ``heartbeat_timeout_s``; otherwise it is killed.
- An app whose worker crashes (or is killed) ``crash_limit`` times within ``crash_window_s`` cannot
  be restarted for a while; the wait doubles each time.
- CPU time and RSS are sampled from /proc every ``sample_interval_s`` and logged; message rates and
  rate-limit drops come from the broker; a worker that floods past the hard bound is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vehicle_host.errors import DeviceError, VehicleHostError
from vehicle_host.hub.accounting import CrashHistory, RateLimiter, Usage, leaf_process, read_usage
from vehicle_host.hub.broker import Broker
from vehicle_host.sandbox import bwrap
from vehicle_host.sandbox.config import SandboxConfig

log = logging.getLogger("vehicle_host.hub.supervisor")

STOP_GRACE_S = 2.0
#: how long stopping a worker that is still starting waits for its hello first
HELLO_GRACE_S = 3.0
MAX_LOG_LINE = 2000
#: exit code of a worker that could not confine itself (see logic_worker/__main__.py)
EXIT_UNCONFINED = 78
#: how a worker is started by the interpreter (tests start a stand-in script instead)
WORKER_ARGS = ("-m", "vehicle_host.logic_worker")


class SandboxUnavailable(DeviceError):
    """bubblewrap is missing while sandboxing is on."""


class WorkerRestartBlocked(VehicleHostError):
    """The app crashed too often; it may be started again after ``retry_after_s`` seconds."""

    def __init__(self, app_id: str, retry_after_s: float, crashes: int) -> None:
        self.app_id = app_id
        self.retry_after_s = retry_after_s
        super().__init__(
            f"This app stopped unexpectedly {crashes} times in a short while; "
            f"it can be opened again in {max(1, round(retry_after_s))} s."
        )


@dataclass(frozen=True, slots=True)
class Assignment:
    """A worker handed to an app. Send ``worker.start`` now if ``ready``, else on its hello."""

    slot: str
    pid: int
    endpoint: str  # the worker's socket on the host (ipc://...)
    ready: bool


@dataclass(frozen=True, slots=True)
class WorkerExit:
    """How an app's worker ended. ``reason``: ``stopped`` (asked to), ``crashed`` or ``killed``."""

    app_id: str
    slot: str
    pid: int
    code: int  # negative: killed by that signal
    reason: str
    message: str  # user-facing, says what to do
    blocked_for_s: float = 0.0

    @property
    def expected(self) -> bool:
        return self.reason == "stopped"


ExitCallback = Callable[[WorkerExit], None]


@dataclass
class WorkerProcess:
    slot: str
    process: asyncio.subprocess.Process
    endpoint: str
    sandboxed: bool
    started: float
    app_id: str = ""
    worker_pid: int | None = None  # the Python process inside the sandbox
    ready: bool = False
    last_seen: float = 0.0
    start_ms: float | None = None
    stopping: bool = False
    kill_reason: str = ""
    usage: Usage | None = None
    cpu_pct: float = 0.0
    hello: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    @property
    def pid(self) -> int:
        """The worker's own process (inside the sandbox when sandboxed), once known."""
        return self.worker_pid if self.worker_pid is not None else self.process.pid


class Supervisor:
    def __init__(
        self,
        broker: Broker,
        on_exit: ExitCallback,
        config: SandboxConfig | None = None,
        *,
        python: str = sys.executable,
        worker_args: tuple[str, ...] = WORKER_ARGS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or SandboxConfig.from_env()
        self._broker = broker
        broker.limits = self.config.limits
        broker.on_flood = self._flooded
        self._on_exit = on_exit
        self._python = python
        self._worker_args = worker_args
        self._clock = clock
        self._slots: dict[str, WorkerProcess] = {}
        self._apps: dict[str, WorkerProcess] = {}
        self._idle: list[WorkerProcess] = []
        self._history: dict[str, CrashHistory] = {}
        self._next_slot = 1
        self._layout: bwrap.PythonLayout | None = None
        self._refill: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._closing = False
        self._last_usage_log = 0.0
        self.start_times_ms: list[float] = []

    # -- public API -------------------------------------------------------------------------------
    @property
    def workers(self) -> dict[str, WorkerProcess]:
        """app id -> its worker (only workers bound to an app)."""
        return dict(self._apps)

    def check(self) -> None:
        """Raise SandboxUnavailable when workers cannot be started as configured."""
        if self.config.enabled and self.config.bwrap_path() is None:
            raise SandboxUnavailable(
                f"bubblewrap ({self.config.bwrap!r}) is not installed, so mini-apps cannot be isolated. "
                "Install the 'bubblewrap' package, or set VEHICLE_HOST_SANDBOX=0 to run them without "
                "a sandbox (development only)."
            )

    async def start_pool(self) -> None:
        """Start the liveness/accounting loop and pre-start the pool in the background."""
        if not self.config.enabled:
            log.warning(
                "WORKER SANDBOX DISABLED: mini-app code runs without bubblewrap isolation "
                "(VEHICLE_HOST_SANDBOX=0); never do this on a vehicle",
                extra={"confine": self.config.confine},
            )
        self._ensure_monitor()
        self._schedule_refill()

    def _ensure_monitor(self) -> None:
        if self._monitor is None and not self._closing:
            self._monitor = asyncio.create_task(self._watch_loop())

    async def assign(self, app_id: str) -> Assignment:
        """Give ``app_id`` a worker: an idle pooled one if any, else a fresh one.

        Raises WorkerRestartBlocked while the app is in crash back-off, SandboxUnavailable when bwrap
        is missing, DeviceError when the process cannot be started.
        """
        self._ensure_monitor()
        history = self._history.get(app_id)
        if history is not None and history.blocked_for(self._clock()) > 0:
            raise WorkerRestartBlocked(app_id, history.blocked_for(self._clock()), history.total)
        if app_id in self._apps:
            await self.stop(app_id)
        live = [w for w in self._idle if w.process.returncode is None and not w.stopping]
        ready = [w for w in live if w.ready]
        candidates = ready or live
        if candidates:
            worker = candidates[0]
            self._idle.remove(worker)
        else:
            worker = await self._spawn()
        worker.app_id = app_id
        self._broker.bind_slot(worker.slot, app_id)
        self._apps[app_id] = worker
        log.info(
            "worker assigned",
            extra={"app_id": app_id, "slot": worker.slot, "pid": worker.pid, "pooled": worker.ready},
        )
        self._schedule_refill()
        return Assignment(worker.slot, worker.pid, worker.endpoint, worker.ready)

    def on_hello(self, slot: str, peer: bytes) -> bool:
        """A worker said hello on its socket. False: unknown slot or a second hello (refuse it)."""
        worker = self._slots.get(slot)
        if worker is None or worker.ready or not self._broker.learn_worker_peer(slot, peer):
            return False
        now = self._clock()
        worker.ready = True
        worker.last_seen = now
        worker.start_ms = round((now - worker.started) * 1000, 1)
        self.start_times_ms = [*self.start_times_ms[-99:], worker.start_ms]
        if worker.sandboxed:
            worker.worker_pid = leaf_process(worker.process.pid, depth=2)
        worker.hello.set()
        log.info(
            "worker ready",
            extra={"slot": slot, "pid": worker.pid, "start_ms": worker.start_ms, "app_id": worker.app_id},
        )
        return True

    def on_message(self, slot: str) -> None:
        """Any valid message from a worker (its 1 s heartbeat in particular) shows it is alive."""
        worker = self._slots.get(slot)
        if worker is not None:
            worker.last_seen = self._clock()

    on_heartbeat = on_message

    async def wait_ready(self, slot: str, timeout: float | None = None) -> bool:
        worker = self._slots.get(slot)
        if worker is None:
            return False
        try:
            await asyncio.wait_for(worker.hello.wait(), timeout or self.config.start_timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self, app_id: str) -> None:
        """Stop the app's worker (expected exit: the callback gets reason ``stopped``)."""
        worker = self._apps.get(app_id)
        if worker is not None:
            await self._terminate(worker)

    async def stop_all(self) -> None:
        self._closing = True
        for task in (self._refill, self._monitor):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await asyncio.gather(*(self._terminate(w) for w in list(self._slots.values())))

    def kill(self, slot: str, reason: str, message: str) -> None:
        """Kill a worker now; its app gets ``reason`` (``killed``) and ``message``."""
        worker = self._slots.get(slot)
        if worker is None or worker.process.returncode is not None:
            return
        if not worker.kill_reason:
            worker.kill_reason = message
            log.warning(
                "killing worker",
                extra={
                    "slot": slot,
                    "app_id": worker.app_id,
                    "pid": worker.pid,
                    "reason": reason,
                    "why": message,
                },
            )
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()

    def blocked_for(self, app_id: str) -> float:
        history = self._history.get(app_id)
        return history.blocked_for(self._clock()) if history is not None else 0.0

    def stats(self) -> dict[str, Any]:
        now = self._clock()
        wall = time.time()
        apps: dict[str, Any] = {}
        for app_id in sorted(set(self._apps) | set(self._history)):
            history = self._history.get(app_id)
            blocked = history.blocked_for(now) if history is not None else 0.0
            entry: dict[str, Any] = {
                "crashes": history.total if history is not None else 0,
                "restarts_blocked_until": round(wall + blocked, 3) if blocked else 0,
            }
            worker = self._apps.get(app_id)
            if worker is not None:
                entry |= self._worker_stats(worker)
            apps[app_id] = entry
        return {
            "sandbox": self.config.enabled,
            "pool": {
                "size": self.config.pool_size,
                "idle": len(self._idle),
                "ready": sum(1 for w in self._idle if w.ready),
            },
            "apps": apps,
            "start_ms": list(self.start_times_ms[-10:]),
        }

    # -- processes --------------------------------------------------------------------------------
    def _command(self, slot: str) -> tuple[list[str], str]:
        """The argv that starts a worker for ``slot`` and the endpoint it connects to."""
        path = self._broker.runtime_dir / f"w-{slot}.sock"
        confine = self.config.confine_spec().to_json() if self.config.confine else None
        if self.config.enabled:
            self.check()
            binary = self.config.bwrap_path()
            assert binary is not None  # check() raised otherwise
            if self._layout is None:
                self._layout = bwrap.discover()
            args = [*self._worker_args, "--endpoint", bwrap.INNER_ENDPOINT]
            args += ["--confine", confine] if confine is not None else []
            return bwrap.build_argv(binary, self._layout, path, args), bwrap.INNER_ENDPOINT
        argv = [self._python, "-s", *self._worker_args, "--endpoint", f"ipc://{path}"]
        if confine is not None:
            argv += ["--confine", confine]
        return argv, f"ipc://{path}"

    async def _spawn(self) -> WorkerProcess:
        slot = str(self._next_slot)
        self._next_slot += 1
        argv, _ = self._command(slot)
        path = self._broker.open_worker_socket(slot)
        spec = self.config.confine_spec()
        if spec.uid is not None and spec.gid is not None:
            os.chown(path, spec.uid, spec.gid)  # the worker user must be able to connect
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                # a pipe, never a file: the worker may not grow files (RLIMIT_FSIZE 0)
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            self._broker.close_worker_socket(slot)
            raise DeviceError(f"could not start a logic worker ({argv[0]}): {exc}") from exc
        worker = WorkerProcess(slot, process, f"ipc://{path}", self.config.enabled, self._clock())
        self._slots[slot] = worker
        worker.tasks.append(asyncio.create_task(self._relay_stderr(worker)))
        worker.tasks.append(asyncio.create_task(self._watch(worker)))
        log.info("worker started", extra={"slot": slot, "pid": process.pid, "sandbox": self.config.enabled})
        return worker

    async def _relay_stderr(self, worker: WorkerProcess) -> None:
        """Worker stderr lines go to the hub's log, bounded in length and rate."""
        stream = worker.process.stderr
        if stream is None:
            return
        budget = RateLimiter(rate=20, burst=200, kill_dropped=1 << 30)
        pending = b""
        while True:
            chunk = await stream.read(4096)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > MAX_LOG_LINE:
                lines.append(pending)
                pending = b""
            for line in lines:
                if line.strip() and budget.allow(self._clock()):
                    text = line[:MAX_LOG_LINE].decode("utf-8", "replace")
                    log.info(text, extra={"worker_slot": worker.slot, "app_id": worker.app_id})

    async def _watch(self, worker: WorkerProcess) -> None:
        code = await worker.process.wait()
        relay = worker.tasks[0]
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(relay, 1.0)
        self._slots.pop(worker.slot, None)
        if worker in self._idle:
            self._idle.remove(worker)
        if self._apps.get(worker.app_id) is worker:
            del self._apps[worker.app_id]
        self._broker.close_worker_socket(worker.slot)
        signum = _signal_of(code, worker.sandboxed)
        if worker.stopping and not worker.kill_reason:
            reason, message = "stopped", "closed"
        elif worker.kill_reason:
            reason, message = "killed", f"The app was stopped because it {worker.kill_reason}."
        else:
            reason, message = "crashed", _crash_message(code, signum)
        fields = {"slot": worker.slot, "app_id": worker.app_id, "pid": worker.pid, "code": code}
        log.log(
            logging.INFO if reason == "stopped" else logging.WARNING,
            "worker exited",
            extra=fields | {"reason": reason},
        )
        if self._closing:
            return
        if not worker.app_id:
            self._schedule_refill()
            return
        blocked = 0.0
        if reason != "stopped":
            history = self._history.setdefault(
                worker.app_id,
                CrashHistory(
                    self.config.crash_limit,
                    self.config.crash_window_s,
                    self.config.backoff_s,
                    self.config.backoff_max_s,
                ),
            )
            now = self._clock()
            until = history.record(now)
            if until:
                blocked = until - now
                message += (
                    f" It stopped {history.total} times in a short while, so it can be opened again "
                    f"in {max(1, round(blocked))} s."
                )
                log.warning(
                    "app restarts blocked", extra={"app_id": worker.app_id, "seconds": round(blocked, 1)}
                )
            else:
                message += " Restart it, or go back to the launcher."
        code_out = -signum if signum else code
        self._on_exit(WorkerExit(worker.app_id, worker.slot, worker.pid, code_out, reason, message, blocked))

    async def _terminate(self, worker: WorkerProcess) -> None:
        worker.stopping = True
        if worker.process.returncode is None and not worker.hello.is_set():
            # bubblewrap arranges for its sandbox to die with it only once it is running: a signal
            # in its first milliseconds can leave the sandboxed worker running (and holding the
            # stderr pipe this process waits on), so let a starting worker get that far first
            hello = asyncio.ensure_future(worker.hello.wait())
            await asyncio.wait({hello, worker.tasks[1]}, timeout=HELLO_GRACE_S)
            hello.cancel()
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(worker.process.wait()), STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
        watcher = worker.tasks[1]
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    # -- pool, liveness, accounting ---------------------------------------------------------------
    def _schedule_refill(self) -> None:
        if self._closing or (self._refill is not None and not self._refill.done()):
            return
        if len(self._idle) < self.config.pool_size:
            self._refill = asyncio.create_task(self._fill_pool())

    async def _fill_pool(self) -> None:
        failures = 0
        while not self._closing and len(self._idle) < self.config.pool_size:
            try:
                worker = await self._spawn()
            except VehicleHostError as exc:
                failures += 1
                log.error("could not pre-start a worker: %s", exc)
                await asyncio.sleep(min(60.0, 2.0**failures))
                continue
            self._idle.append(worker)
            await self.wait_ready(worker.slot)  # one at a time: start-up is CPU heavy

    def _flooded(self, slot: str) -> None:
        self.kill(slot, "killed", "sent too many messages")

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sample_interval_s)
            try:
                self._check_workers()
            except Exception:  # the loop must outlive any single odd /proc read
                log.exception("worker check failed")

    def _check_workers(self) -> None:
        now = self._clock()
        log_now = now - self._last_usage_log >= self.config.usage_log_every_s
        if log_now:
            self._last_usage_log = now
        for worker in list(self._slots.values()):
            if worker.process.returncode is not None or worker.stopping:
                continue
            if not worker.ready:
                if now - worker.started > self.config.start_timeout_s:
                    self.kill(
                        worker.slot, "killed", f"did not start within {self.config.start_timeout_s:g} s"
                    )
                continue
            silent = now - worker.last_seen
            if silent > self.config.heartbeat_timeout_s:
                self.kill(worker.slot, "killed", f"stopped responding (no heartbeat for {silent:.0f} s)")
                continue
            self._sample(worker, now, log_now)

    def _sample(self, worker: WorkerProcess, now: float, log_now: bool) -> None:
        usage = read_usage(worker.pid)
        if usage is None:
            return
        if worker.usage is not None:
            worker.cpu_pct = round(
                100 * (usage.cpu_s - worker.usage.cpu_s) / self.config.sample_interval_s, 1
            )
        worker.usage = usage
        if worker.app_id:
            log.log(
                logging.INFO if log_now else logging.DEBUG,
                "worker usage",
                extra={"app_id": worker.app_id} | self._worker_stats(worker),
            )

    def _worker_stats(self, worker: WorkerProcess) -> dict[str, Any]:
        usage = worker.usage
        return {
            "slot": worker.slot,
            "pid": worker.pid,
            "cpu_s": usage.cpu_s if usage else 0.0,
            "cpu_pct": worker.cpu_pct,
            "rss_mb": usage.rss_mb if usage else 0.0,
            "start_ms": worker.start_ms,
        } | self._broker.slot_stats(worker.slot)


def _signal_of(code: int, sandboxed: bool) -> int:
    if code < 0:
        return -code
    # bubblewrap exits with 128 + N when the process inside died of signal N
    if sandboxed and 128 < code <= 128 + 64:
        return code - 128
    return 0


def _crash_message(code: int, signum: int) -> str:
    if signum == signal.SIGXCPU:
        return "The app used up its CPU time."
    if code == EXIT_UNCONFINED:
        return "The app could not be started safely (the worker sandbox failed)."
    how = f"signal {signum}" if signum else f"exit code {code}"
    return f"The app stopped unexpectedly ({how})."
