"""The hub's message handling: who may send what to whom; app launch, navigation and close.

It owns routing and policy only: bundles are read through ``vehicle_host.bundles``, apps run in
workers through the supervisor, ``fc.*`` calls go through the gateway to the shell or a plugin.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from vehicle_host import __version__
from vehicle_host.bundles import catalog
from vehicle_host.config import HostConfig
from vehicle_host.errors import BundleError, VehicleHostError
from vehicle_host.hub import gateway
from vehicle_host.hub.broker import Broker, Origin
from vehicle_host.hub.calls import CONSENT_TIMEOUT_S, CallRouter
from vehicle_host.hub.grants import GrantStore
from vehicle_host.hub.navigation import NavigationError
from vehicle_host.hub.plugins import PluginManager, Relay
from vehicle_host.hub.sessions import Sessions, nav_failure, nav_result, page_open_payload
from vehicle_host.hub.supervisor import Supervisor, WorkerExit, WorkerRestartBlocked
from vehicle_host.sandbox.config import SandboxConfig
from vehicle_host.updates.health import HealthLog
from vehicle_host.wire import API_LEVEL, Envelope

log = logging.getLogger("vehicle_host.hub")

#: Message types each kind of peer may send.
FROM_FRONT = frozenset(
    {
        "hello",
        "app.list",
        "app.launch",
        "app.close",
        "app.back",
        "app.visibility",
        "hub.stats",
        "app.info",
        "grant.set",
        "page.event",
        "page.painted",
        "ui.response",
    }
)
FROM_PLUGIN = frozenset({"plugin.declare", "plugin.result", "plugin.event", "state.publish", "log"})
FROM_WORKER = frozenset(
    {
        "hello",
        "heartbeat",
        "page.render",
        "page.setData",
        "nav.request",
        "api.call",
        "api.cancel",
        "log",
        "script.error",
    }
)
WORKER_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
MAX_STATE_KEYS = 32
MAX_PENDING = 256  # messages held for a worker that is still starting
PLUGIN_START_S = 15.0
STORAGE_SNAPSHOT_BYTES = 640 * 1024
#: script errors of one run that go to the run log: an app throwing in a loop must not become a
#: disk write per throw on the hub's loop (each is still logged and shown)
MAX_RECORDED_ERRORS = 5
DEALER_STATE = "profile.dealer"  # published by the profile plugin: {active, until (Unix ms)}


class Hub:
    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.apps_dir = config.apps_dir
        self.broker = Broker(config.runtime_dir, self.handle)
        self.supervisor = Supervisor(self.broker, self._worker_exited, SandboxConfig.resolve(config.sandbox))
        config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.grants = GrantStore(config.state_dir / "grants.sqlite3")
        # launches, crashes and errors per app version, which the updater reports for gray releases
        self.runs = HealthLog(config.state_dir / "app-runs.db")
        self.plugins = PluginManager(
            self.broker.front_endpoint,
            config.state_dir / "plugins",
            send=self.broker.send_front,
            deliver=self._deliver,
            enabled=config.enabled_plugins,
            config=config.plugins,
        )
        self.state: dict[str, dict[str, Any]] = {}
        self.calls = CallRouter(
            plugins=self.plugins,
            grants=self.grants,
            push_ui=self._push_ui,
            send_worker=self._send_worker,
            state=self.state,
        )
        self.sessions = Sessions()
        self._shell: bytes | None = None
        self._apps: dict[str, catalog.InstalledApp] = {}
        # app id -> messages for a worker that has not said hello yet (worker.start first)
        self._pending: dict[str, list[Envelope]] = {}
        self._push_ids = itertools.count(1 << 40)  # pushes never collide with a peer's request ids
        self.stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._launch_locks: dict[str, asyncio.Lock] = {}
        self._plugins_ready = asyncio.Event()
        self._front: dict[str, Callable[[Envelope, bytes], Awaitable[None]]] = {
            "hello": self._on_hello,
            "app.list": self._on_app_list,
            "hub.stats": self._on_stats,
            "app.launch": self._on_launch,
            "app.close": lambda m, _: self._close(m.payload["app_id"]),
            "app.back": lambda m, _: self._back(m.payload["app_id"]),
            "app.visibility": self._on_visibility,
            "page.event": self._on_page_event,
            "page.painted": self._on_painted,
            "ui.response": self._on_ui_response,
            "app.info": self._on_app_info,
            "grant.set": self._on_grant_set,
        }

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        self.broker.start()
        try:
            self.rescan()
        except Exception:  # the hub serves even when the apps directory is unusable
            log.exception("could not scan the installed apps")
        try:
            await self.plugins.start()
        except (OSError, VehicleHostError):
            log.exception("could not start the plugins")
        self._spawn(self._await_plugins())
        try:
            await self.supervisor.start_pool()
        except (OSError, VehicleHostError):
            log.exception("could not pre-start workers; launches will start them")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopped.set)
        log.info(
            "hub ready",
            extra={
                "endpoint": self.broker.front_endpoint,
                "apps": len(self._apps),
                "plugins": self.plugins.enabled(),
            },
        )
        await self.stopped.wait()
        log.info("hub stopping")
        await self.supervisor.stop_all()
        await self.plugins.stop_all()
        await self.calls.close()
        await self.broker.close()
        self.grants.close()
        log.info("hub stopped")

    async def _await_plugins(self) -> None:
        """Launches wait until every enabled plugin has declared its methods (at most
        PLUGIN_START_S): an app started before the storage plugin would see no stored data."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PLUGIN_START_S
        wanted = set(self.plugins.enabled())
        while loop.time() < deadline:
            if wanted <= {rule.owner for rule in self.plugins.rules().values()}:
                break
            await asyncio.sleep(0.05)
        else:
            missing = sorted(wanted - {rule.owner for rule in self.plugins.rules().values()})
            log.error("plugins did not come up; launching without them", extra={"plugins": missing})
        self._plugins_ready.set()

    def rescan(self) -> list[dict[str, Any]]:
        apps, broken = catalog.scan(self.apps_dir)
        self._apps = {a.manifest.app_id: a for a in apps}
        for item in broken:
            log.warning("bundle not loaded", extra={"path": str(item.path), "error": item.error})
        return catalog.listing(apps)

    # -- routing --------------------------------------------------------------------------------
    async def handle(self, message: Envelope, origin: Origin) -> None:
        if origin.kind == "worker":
            await self._from_worker_socket(message, origin)
        elif self.plugins.plugin_of(origin.peer) is not None:
            await self._from_plugin(message, origin.peer)
        elif message.type in FROM_FRONT:
            await self._front[message.type](message, origin.peer)
        else:
            self._refuse(f"refused {message.type}: the shell and clients may not send it")

    async def _on_hello(self, message: Envelope, peer: bytes) -> None:
        p = message.payload
        if p["role"] == "plugin":
            if not self.plugins.on_hello(peer, p):
                refusal = {"code": "denied", "message": "unknown plugin or wrong token"}
                await self.broker.send_front(peer, message.reply("error", refusal))
                return
        elif p["role"] == "worker":
            self._refuse("refused a worker hello on the front socket: workers have sockets of their own")
            return
        elif p["role"] == "shell":
            self._shell = peer
        reply = message.reply("hello.ok", {"api_level": API_LEVEL, "hub_version": __version__})
        await self.broker.send_front(peer, reply)
        if p["role"] == "shell":
            for key, value in self.state.items():
                await self._push("state.changed", {"key": key, "value": value})

    async def _on_launch(self, message: Envelope, peer: bytes) -> None:
        # a launch waits for the storage plugin, whose answer comes in on the front socket that
        # is busy with this very message: run it beside the broker, one launch per app at a time
        app_id = message.payload["app_id"]
        lock = self._launch_locks.setdefault(app_id, asyncio.Lock())

        async def launch() -> None:
            await self._plugins_ready.wait()
            async with lock:
                await self._launch(app_id)

        self._spawn(launch())

    async def _on_app_info(self, message: Envelope, peer: bytes) -> None:
        # it asks the storage plugin, whose answer comes in on the socket this message came in on
        self._spawn(self._app_info(message, peer))

    async def _app_info(self, message: Envelope, peer: bytes) -> None:
        await self._plugins_ready.wait()
        app_id = message.payload["app_id"]
        self.rescan()  # the version it would start now
        app = self._apps.get(app_id)
        if app is None:
            info: dict[str, Any] = {"app_id": app_id, "error": "This app is not installed on this vehicle."}
        else:
            m = app.manifest
            answers = self.grants.grants(app_id)
            storage = await self.calls.internal(app_id, "storage.info", {})
            info = {
                "app_id": app_id,
                "name": m.name,
                "version": m.version,
                "publisher": m.publisher,
                "group": m.group,
                "drivingSafe": m.driving_safe,
                "permissions": [{"name": p, "granted": answers.get(p)} for p in m.permissions],
                "network": list(m.allow_list),
                "storage": storage if isinstance(storage, dict) else None,
            }
        await self.broker.send_front(peer, message.reply("app.info.result", {"info": info}))

    async def _on_grant_set(self, message: Envelope, peer: bytes) -> None:
        p = message.payload
        app = self._apps.get(p["app_id"])
        result: dict[str, Any] = {"ok": True}
        if peer != self._shell:
            result = {"ok": False, "error": "only the shell may change the driver's answers"}
        elif app is None or p["permission"] not in app.manifest.permissions:
            result = {"ok": False, "error": "the app does not declare this permission"}
        elif p["granted"] is None:
            self.grants.revoke(p["app_id"], p["permission"])
        elif isinstance(p["granted"], bool):
            self.grants.set(p["app_id"], p["permission"], p["granted"], by="driver")
        else:
            result = {"ok": False, "error": "granted must be true, false or null"}
        await self.broker.send_front(peer, message.reply("grant.set.result", result))

    async def _on_app_list(self, message: Envelope, peer: bytes) -> None:
        await self.broker.send_front(peer, message.reply("app.list.result", {"apps": self.rescan()}))

    async def _on_stats(self, message: Envelope, peer: bytes) -> None:
        await self.broker.send_front(peer, message.reply("hub.stats.result", {"stats": self.stats()}))

    def _from_shell(self, peer: bytes, type_: str) -> bool:
        if peer != self._shell:
            self._refuse(f"refused {type_}: only the shell may send it")
            return False
        return True

    def _refuse(self, why: str, **fields: object) -> None:
        """A message that breaks the protocol: counted as ``dropped_forbidden`` and logged (rate limited)."""
        self.broker.refuse("dropped_forbidden", why, **fields)

    async def _on_page_event(self, message: Envelope, peer: bytes) -> None:
        app_id = message.target.removeprefix("app:")
        if self.sessions.owner_of(message.payload["page_id"]) != app_id:
            self._refuse("refused page.event: the page is not one of the target app's pages", app_id=app_id)
            return
        await self._to_worker(
            app_id, Envelope("page.event", message.id, "shell", message.target, message.payload)
        )

    async def _on_painted(self, message: Envelope, peer: bytes) -> None:
        app_id = self.sessions.owner_of(message.payload["page_id"])
        if app_id is not None and self._from_shell(peer, message.type):
            await self._send_worker(app_id, "page.painted", dict(message.payload))

    async def _on_visibility(self, message: Envelope, peer: bytes) -> None:
        session = self.sessions.get(message.payload["app_id"])
        if session is not None and self._from_shell(peer, message.type):
            session.visible = message.payload["visible"]
            await self._send_worker(session.app_id, "app.visibility", dict(message.payload))

    async def _on_ui_response(self, message: Envelope, peer: bytes) -> None:
        if self._from_shell(peer, message.type) and not self.calls.on_ui_response(message.payload):
            self.broker.counters["dropped_unroutable"] += 1

    async def _from_plugin(self, message: Envelope, peer: bytes) -> None:
        if message.type not in FROM_PLUGIN:
            self._refuse(f"refused {message.type} from a plugin", plugin=self.plugins.plugin_of(peer))
            return
        p = message.payload
        if message.type == "plugin.declare":
            self.plugins.on_declare(peer, p)
        elif message.type in ("plugin.result", "plugin.event"):
            relay = (self.plugins.on_result if message.type == "plugin.result" else self.plugins.on_event)(
                peer, p
            )
            if relay is not None:
                await self._deliver(relay)
        elif message.type == "state.publish":
            if p["key"] not in self.state and len(self.state) >= MAX_STATE_KEYS:
                self._refuse(f"refused state.publish: at most {MAX_STATE_KEYS} state keys", key=p["key"][:64])
                return
            self.state[p["key"]] = dict(p["value"])
            await self._push("state.changed", {"key": p["key"], "value": p["value"]})
        elif message.type == "log":
            plugin = self.plugins.plugin_of(peer)
            log.log(WORKER_LOG_LEVELS[p["level"]], p["message"], extra={"plugin": plugin})

    async def _from_worker_socket(self, message: Envelope, origin: Origin) -> None:
        self.supervisor.on_message(origin.slot)  # liveness, whatever it says
        if message.type == "hello":
            if not self.supervisor.on_hello(origin.slot, origin.peer):
                # a second hello: the worker cannot become someone else (a plugin, another app)
                self._refuse("refused a second hello from a worker", app_id=origin.app_id, slot=origin.slot)
                return
            # the answer tells the worker its hub is there (one started as the hub died waits for none)
            await self.broker.send_slot(
                origin.slot, message.reply("hello.ok", {"api_level": API_LEVEL, "hub_version": __version__})
            )
            for waiting in self._pending.pop(origin.app_id, []) if origin.app_id else []:
                await self.broker.send_worker(origin.app_id, waiting)
            return
        if message.type == "heartbeat":
            return
        if not origin.app_id:  # an idle pooled worker has no say
            self._refuse(f"refused {message.type} from a worker that serves no app", slot=origin.slot)
            return
        if message.type not in FROM_WORKER:
            self._refuse(f"refused {message.type}: workers may not send it", app_id=origin.app_id)
            return
        await self._from_worker(message, origin.app_id)

    async def _from_worker(self, message: Envelope, app_id: str) -> None:
        p = message.payload
        source = f"app:{app_id}"  # stamped from the socket, whatever the worker claimed
        if message.type in ("page.render", "page.setData"):
            if self.sessions.owner_of(p["page_id"]) != app_id:
                self._refuse(
                    f"refused {message.type}: the page is not one of the app's pages",
                    app_id=app_id,
                    page_id=p["page_id"],
                    claimed_source=message.source[:128],
                )
                return
            await self._push(message.type, p, source=source, message_id=message.id)
        elif message.type == "nav.request":
            await self._navigate(app_id, p)
        elif message.type == "api.call":
            session = self.sessions.get(app_id)  # the version it was launched with, not a newer install
            if session is None:
                return
            m = session.app.manifest
            policy = gateway.AppPolicy(m.app_id, m.name, frozenset(m.permissions), m.allow_list)
            self.calls.on_call(policy, p)
        elif message.type == "api.cancel":
            self.calls.on_cancel(app_id, p["call_id"])
        elif message.type == "log":
            log.log(WORKER_LOG_LEVELS[p["level"]], p["message"], extra={"app_id": app_id})
        elif message.type == "script.error":
            log.error(
                "script error",
                extra={"app_id": app_id, "file": p["file"], "line": p["line"], "error": p["message"]},
            )
            session = self.sessions.get(app_id)
            if session is not None and session.errors_recorded < MAX_RECORDED_ERRORS:
                session.errors_recorded += 1
                self._record_run(app_id, "error")
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

    async def _push_ui(self, request_id: int, app_id: str, kind: str, params: dict[str, Any]) -> bool:
        payload = {"request_id": request_id, "app_id": app_id, "kind": kind, "params": params}
        return await self._push("ui.request", payload)

    async def _send_worker(self, app_id: str, type_: str, payload: dict[str, Any]) -> None:
        envelope = Envelope(type_, next(self._push_ids), "hub", f"app:{app_id}", payload)
        await self._to_worker(app_id, envelope)

    async def _to_worker(self, app_id: str, envelope: Envelope) -> None:
        waiting = self._pending.get(app_id)
        if waiting is None:
            await self.broker.send_worker(app_id, envelope)
        elif len(waiting) < MAX_PENDING:
            waiting.append(envelope)
        else:
            self.broker.counters["dropped_unroutable"] += 1

    async def _deliver(self, relay: Relay) -> None:
        await self.calls.deliver(relay)

    # -- apps -----------------------------------------------------------------------------------
    async def _app_error(self, app_id: str, kind: str, message: str) -> None:
        await self._push("app.error", {"app_id": app_id, "kind": kind, "message": message[:8000]})

    async def _launch(self, app_id: str) -> None:
        self.rescan()  # installed, updated or rolled back since the last listing? (links move)
        app = self._apps.get(app_id)
        if app is None:
            await self._app_error(app_id, "unavailable", "This app is not installed on this vehicle.")
            return
        manifest = app.manifest
        if not manifest.supports_api_level():
            await self._app_error(
                app_id,
                "incompatible",
                f"{manifest.name} needs runtime API {manifest.runtime_min}-{manifest.runtime_max}; "
                f"this head unit provides {API_LEVEL}. Ask the publisher for an update.",
            )
            return
        if self.config.dealer_apps_need_role and manifest.group == "dealer" and not self._dealer_unlocked():
            await self._app_error(
                app_id,
                "denied",
                f"{manifest.name} is for dealer staff. Unlock the dealer role with the workshop PIN or key "
                "(profile plugin) while parked, then open it again.",
            )
            return
        try:
            page = catalog.compile_page(app, manifest.entry)
            sources = catalog.bundle_sources(app)
            config = catalog.page_config(app)
        except BundleError as exc:
            await self._app_error(app_id, "invalid", str(exc))
            return
        await self._stop_app(app_id)
        storage = await self._storage_snapshot(app_id)
        if storage is None:
            await self._app_error(
                app_id,
                "unavailable",
                f"{manifest.name}'s stored data could not be read right now, so it was not started "
                "(starting it without its data could overwrite it). Try again in a moment.",
            )
            return
        try:
            assignment = await self.supervisor.assign(app_id)
        except WorkerRestartBlocked as exc:
            await self._app_error(app_id, "crashed", str(exc))
            return
        except (OSError, VehicleHostError) as exc:
            await self._app_error(app_id, "unavailable", f"The app could not be started: {exc}")
            return
        session = self.sessions.begin(app)
        self._record_run(app_id, "launch")
        entry = self.sessions.new_entry(manifest.entry, {})
        session.stack.launch(entry)
        start = Envelope(
            "worker.start",
            next(self._push_ids),
            "hub",
            f"app:{app_id}",
            {
                "app_id": app_id,
                "sources": sources,
                "config": config,
                "route": entry.route,
                "page_id": entry.page_id,
                "query": entry.query,
                "system": self._system_info(),
                "apis": self._api_list(),
                "storage": storage,
                "limits": self.supervisor.config.limits.for_worker_start(),
            },
        )
        if not await self._push("page.open", page_open_payload(app, entry, page, "reset")):
            await self._stop_app(app_id)
            message = "The page's compiled template or styles exceed the host's message limit."
            await self._app_error(app_id, "invalid", message)
            return
        if assignment.ready:
            await self.broker.send_worker(app_id, start)
        else:
            self._pending[app_id] = [start]

    async def _storage_snapshot(self, app_id: str) -> dict[str, str] | None:
        """The app's stored data; None when the storage plugin runs but could not answer."""
        if "storage.snapshot" not in self.plugins.rules():
            # no storage plugin configured: nothing is kept, so nothing can be overwritten; one
            # that is configured but down (crashed, restarting) must not look like empty storage
            return None if "storage" in self.plugins.enabled() else {}
        items: dict[str, str] = {}
        after: Any = None
        size = 0
        while True:
            args = {} if after is None else {"after": after}
            result = await self.calls.internal(app_id, "storage.snapshot", args)
            if not isinstance(result, dict):
                return None
            for key, value in dict(result.get("items") or {}).items():
                size += len(key) + len(value)
                if size > STORAGE_SNAPSHOT_BYTES:
                    log.warning("stored data is larger than a worker start carries", extra={"app_id": app_id})
                    return items
                items[key] = value
            after = result.get("next")
            if not after:
                return items

    def _system_info(self) -> dict[str, Any]:
        return {
            "brand": "vehicle-host",
            "model": "head unit",
            "platform": "linux",
            "system": "Linux",
            "version": __version__,
            "SDKVersion": str(API_LEVEL),
            "language": "en",
            "screenWidth": 800,
            "screenHeight": 480,
            "windowWidth": 800,
            "windowHeight": 480,
            "pixelRatio": 1,
        }

    def _api_list(self) -> list[dict[str, Any]]:
        # a call that may first ask the driver for consent may take that much longer
        return [
            {
                "name": rule.name,
                "streams": rule.streams,
                "timeout_s": rule.timeout_s + (CONSENT_TIMEOUT_S if rule.consent else 0),
            }
            for rule in sorted(self.plugins.rules().values(), key=lambda r: r.name)
        ]

    async def _navigate(self, app_id: str, p: dict[str, Any]) -> None:
        session = self.sessions.get(app_id)
        action, call_id = p["action"], p["call_id"]
        if session is None:
            return
        try:
            step, page = self.sessions.plan(session, action, p.get("url"), p.get("delta", 1))
        except (NavigationError, BundleError) as exc:
            await self._send_worker(app_id, "nav.result", nav_failure(call_id, action, exc))
            return
        if step.opened is not None and page is not None and step.mode is not None:
            payload = page_open_payload(session.app, step.opened, page, step.mode)
            if not await self._push("page.open", payload):
                log.warning("page could not be shown", extra={"app_id": app_id, "route": step.opened.route})
        elif step.closed:
            await self._push(
                "page.close", {"app_id": app_id, "page_ids": list(step.closed), "shown": step.shown}
            )
        await self._send_worker(app_id, "nav.result", nav_result(call_id, step))

    async def _back(self, app_id: str) -> None:
        """The shell's back button: navigateBack on the app's behalf (call id 0: no callbacks)."""
        session = self.sessions.get(app_id)
        if session is None or len(session.stack.pages) <= 1:
            return
        await self._navigate(app_id, {"action": "navigateBack", "call_id": 0, "delta": 1})

    async def _close(self, app_id: str) -> None:
        await self._stop_app(app_id)
        await self._push("app.closed", {"app_id": app_id, "reason": "closed"})

    async def _stop_app(self, app_id: str) -> None:
        await self.supervisor.stop(app_id)
        self._forget(app_id)

    def _forget(self, app_id: str) -> None:
        self._pending.pop(app_id, None)
        if self.sessions.end(app_id) is not None:
            self.calls.forget_app(app_id)

    def _worker_exited(self, ex: WorkerExit) -> None:
        if ex.expected or self.supervisor.workers.get(ex.app_id) is not None:
            return  # stopped on purpose, or an older process of an app already restarted
        self._record_run(ex.app_id, "crash")
        self._forget(ex.app_id)
        kind = ex.reason if ex.reason in ("crashed", "killed") else "crashed"
        self._spawn(self._app_error(ex.app_id, kind, ex.message))

    def _dealer_unlocked(self) -> bool:
        return dealer_unlocked(self.state.get(DEALER_STATE, {}), time.time() * 1000)

    def _record_run(self, app_id: str, event: str) -> None:
        session = self.sessions.get(app_id)
        if session is None:
            return
        try:
            self.runs.record(app_id, session.app.manifest.version, event)
        except (VehicleHostError, sqlite3.Error) as exc:  # a full disk must not stop the app
            log.warning("app run not recorded: %s", exc, extra={"app_id": app_id})

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stats(self) -> dict[str, Any]:
        counters: dict[str, Any] = dict(self.broker.counters)
        counters["workers"] = {app_id: w.pid for app_id, w in self.supervisor.workers.items()}
        counters["supervisor"] = self.supervisor.stats()
        counters["open_pages"] = self.sessions.open_pages()
        counters["plugins"] = self.plugins.stats()
        counters["calls"] = dict(self.calls.counters)
        return counters


def dealer_unlocked(role: Mapping[str, Any], now_ms: float) -> bool:
    """Whether the profile plugin's published role is unlocked and not yet expired."""
    until = role.get("until")
    if not isinstance(until, int | float) or isinstance(until, bool):
        return False
    return role.get("active") is True and until > now_ms
