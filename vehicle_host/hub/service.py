"""The hub's message handling: who may send what to whom, and app launch/close.

It owns routing and policy only; bundles are read through ``vehicle_host.bundles`` and apps run
in workers through the supervisor.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
from pathlib import Path
from typing import Any

from vehicle_host import __version__
from vehicle_host.bundles import catalog
from vehicle_host.errors import BundleError
from vehicle_host.hub.broker import Broker, Origin
from vehicle_host.hub.supervisor import Supervisor
from vehicle_host.wire import API_LEVEL, Envelope

log = logging.getLogger("vehicle_host.hub")

#: Message types each kind of peer may send.
FROM_FRONT = frozenset({"hello", "app.list", "app.launch", "app.close", "hub.stats", "page.event"})
FROM_WORKER = frozenset({"hello", "page.render", "page.setData", "log", "script.error"})
WORKER_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


class Hub:
    def __init__(self, apps_dir: Path, runtime_dir: Path) -> None:
        self.apps_dir = apps_dir
        self.broker = Broker(runtime_dir, self.handle)
        self.supervisor = Supervisor(self._worker_exited)
        self._shell: bytes | None = None
        self._apps: dict[str, catalog.InstalledApp] = {}
        self._pages: dict[int, str] = {}  # page id -> app id
        self._pending_start: dict[str, Envelope] = {}  # app id -> worker.start to send on its hello
        self._page_ids = itertools.count(1)
        self._push_ids = itertools.count(1 << 40)  # pushes never collide with a peer's request ids
        self._slots = itertools.count(1)
        self.stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        self.broker.start()
        try:
            self.rescan()
        except Exception:  # the hub serves even when the apps directory is unusable
            log.exception("could not scan the installed apps")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopped.set)
        log.info("hub ready", extra={"endpoint": self.broker.front_endpoint, "apps": len(self._apps)})
        await self.stopped.wait()
        log.info("hub stopping")
        await self.supervisor.stop_all()
        await self.broker.close()
        log.info("hub stopped")

    def rescan(self) -> list[dict[str, Any]]:
        apps, broken = catalog.scan(self.apps_dir)
        self._apps = {a.manifest.app_id: a for a in apps}
        for item in broken:
            log.warning("bundle not loaded", extra={"path": str(item.path), "error": item.error})
        return catalog.listing(apps)

    # -- routing --------------------------------------------------------------------------------
    async def handle(self, message: Envelope, origin: Origin) -> None:
        if origin.kind == "worker":
            await self._from_worker(message, origin.app_id, origin.peer)
        else:
            await self._from_front(message, origin.peer)

    async def _from_front(self, message: Envelope, peer: bytes) -> None:
        if message.type not in FROM_FRONT:
            self.broker.counters["dropped_forbidden"] += 1
            return
        p = message.payload
        if message.type == "hello":
            if p["role"] == "shell":
                self._shell = peer
            reply = message.reply("hello.ok", {"api_level": API_LEVEL, "hub_version": __version__})
            await self.broker.send_front(peer, reply)
        elif message.type == "app.list":
            await self.broker.send_front(peer, message.reply("app.list.result", {"apps": self.rescan()}))
        elif message.type == "hub.stats":
            await self.broker.send_front(peer, message.reply("hub.stats.result", {"stats": self.stats()}))
        elif message.type == "app.launch":
            await self._launch(p["app_id"])
        elif message.type == "app.close":
            await self.supervisor.stop(p["app_id"])
            await self._push("app.closed", {"app_id": p["app_id"], "reason": "closed"})
        elif message.type == "page.event":
            app_id = message.target.removeprefix("app:")
            if self._pages.get(p["page_id"]) != app_id:
                self.broker.counters["dropped_forbidden"] += 1
                return
            await self.broker.send_worker(
                app_id, Envelope("page.event", message.id, "shell", message.target, p)
            )

    async def _from_worker(self, message: Envelope, app_id: str, peer: bytes) -> None:
        if message.type not in FROM_WORKER:
            self.broker.counters["dropped_forbidden"] += 1
            return
        p = message.payload
        source = f"app:{app_id}"  # stamped from the socket, whatever the worker claimed
        if message.type == "hello":
            if not self.broker.learn_worker_peer(app_id, peer):
                self.broker.counters["dropped_forbidden"] += 1  # a second hello: someone else on the socket
                return
            start = self._pending_start.pop(app_id, None)
            if start is not None:
                await self.broker.send_worker(app_id, start)
        elif message.type in ("page.render", "page.setData"):
            if self._pages.get(p["page_id"]) != app_id:
                self.broker.counters["dropped_forbidden"] += 1
                return
            await self._push(message.type, p, source=source, message_id=message.id)
        elif message.type == "log":
            log.log(WORKER_LOG_LEVELS[p["level"]], p["message"], extra={"app_id": app_id})
        elif message.type == "script.error":
            log.error(
                "script error",
                extra={"app_id": app_id, "file": p["file"], "line": p["line"], "error": p["message"]},
            )
            payload = {"app_id": app_id, "kind": "script", "message": p["message"]}
            if p["file"]:
                payload |= {"file": p["file"], "line": p["line"]}
            await self._push("app.error", payload)

    async def _push(
        self, type_: str, payload: dict[str, Any], *, source: str = "hub", message_id: int | None = None
    ) -> bool:
        if self._shell is None:
            self.broker.counters["dropped_no_shell"] += 1
            return False
        mid = next(self._push_ids) if message_id is None else message_id
        return await self.broker.send_front(self._shell, Envelope(type_, mid, source, "shell", payload))

    # -- apps -----------------------------------------------------------------------------------
    async def _launch(self, app_id: str) -> None:
        if app_id not in self._apps:
            self.rescan()  # installed since the last listing?
        app = self._apps.get(app_id)
        if app is None:
            await self._push(
                "app.error",
                {
                    "app_id": app_id,
                    "kind": "unavailable",
                    "message": "This app is not installed on this vehicle.",
                },
            )
            return
        if not app.manifest.supports_api_level():
            await self._push(
                "app.error",
                {
                    "app_id": app_id,
                    "kind": "incompatible",
                    "message": (
                        f"{app.manifest.name} needs runtime API "
                        f"{app.manifest.runtime_min}-{app.manifest.runtime_max}; "
                        f"this head unit provides {API_LEVEL}. Ask the publisher for an update."
                    ),
                },
            )
            return
        route = app.manifest.entry
        try:
            page = catalog.compile_page(app, route)
        except BundleError as exc:
            await self._push("app.error", {"app_id": app_id, "kind": "invalid", "message": str(exc)[:8000]})
            return
        await self.supervisor.stop(app_id)
        self._forget_pages(app_id)
        page_id = next(self._page_ids)
        self._pages[page_id] = app_id
        endpoint = self.broker.open_worker_socket(app_id, str(next(self._slots)))
        self._pending_start[app_id] = Envelope(
            "worker.start",
            next(self._push_ids),
            "hub",
            f"app:{app_id}",
            {"bundle_dir": str(app.path.resolve()), "route": route, "page_id": page_id, "query": {}},
        )
        opened = await self._push(
            "page.open",
            {
                "app_id": app_id,
                "page_id": page_id,
                "route": route,
                "title": page.title,
                "tree": page.tree,
                "css": page.css,
            },
        )
        if not opened:
            self._forget_pages(app_id)
            self._pending_start.pop(app_id, None)
            self.broker.close_worker_socket(app_id)
            message = "The page's compiled template or styles exceed the host's message limit."
            await self._push("app.error", {"app_id": app_id, "kind": "invalid", "message": message})
            return
        await self.supervisor.start(app_id, endpoint)

    def _forget_pages(self, app_id: str) -> None:
        for page_id in [pid for pid, owner in self._pages.items() if owner == app_id]:
            del self._pages[page_id]

    def _worker_exited(self, app_id: str, code: int, expected: bool) -> None:
        if self.supervisor.workers.get(app_id) is not None:
            return  # an older process of an app that has already been restarted
        self._pending_start.pop(app_id, None)
        self._forget_pages(app_id)
        self.broker.close_worker_socket(app_id)
        if not expected:
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            task = asyncio.get_running_loop().create_task(
                self._push(
                    "app.error",
                    {
                        "app_id": app_id,
                        "kind": "crashed",
                        "message": f"The app stopped unexpectedly ({how}). "
                        "Restart it, or go back to the launcher.",
                    },
                )
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def stats(self) -> dict[str, Any]:
        counters: dict[str, Any] = dict(self.broker.counters)
        counters["workers"] = {app_id: w.pid for app_id, w in self.supervisor.workers.items()}
        counters["open_pages"] = len(self._pages)
        return counters
