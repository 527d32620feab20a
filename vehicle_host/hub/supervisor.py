"""Starts, watches and stops logic worker processes: one per running mini-app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("vehicle_host.hub.supervisor")

STOP_GRACE_S = 2.0

ExitCallback = Callable[[str, int, bool], None]  # app_id, return code, expected


@dataclass
class WorkerProcess:
    app_id: str
    process: asyncio.subprocess.Process
    stopping: bool = False
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    def __init__(self, on_exit: ExitCallback, *, python: str = sys.executable) -> None:
        self._on_exit = on_exit
        self._python = python
        self.workers: dict[str, WorkerProcess] = {}

    async def start(self, app_id: str, endpoint: str) -> WorkerProcess:
        if app_id in self.workers:
            await self.stop(app_id)
        process = await asyncio.create_subprocess_exec(
            self._python,
            "-m",
            "vehicle_host.logic_worker",
            "--endpoint",
            endpoint,
            "--app-id",
            app_id,
            stdin=asyncio.subprocess.DEVNULL,
        )
        worker = WorkerProcess(app_id, process)
        worker.watcher = asyncio.create_task(self._watch(worker))
        self.workers[app_id] = worker
        log.info("worker started", extra={"app_id": app_id, "pid": process.pid})
        return worker

    async def _watch(self, worker: WorkerProcess) -> None:
        code = await worker.process.wait()
        if self.workers.get(worker.app_id) is worker:
            del self.workers[worker.app_id]
        log.log(
            logging.INFO if worker.stopping else logging.WARNING,
            "worker exited",
            extra={"app_id": worker.app_id, "pid": worker.pid, "code": code, "expected": worker.stopping},
        )
        self._on_exit(worker.app_id, code, worker.stopping)

    async def stop(self, app_id: str) -> None:
        worker = self.workers.get(app_id)
        if worker is None:
            return
        worker.stopping = True
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(worker.process.wait()), STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            await worker.process.wait()
        if worker.watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await worker.watcher

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(app_id) for app_id in list(self.workers)))
