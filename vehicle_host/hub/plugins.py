"""The hub's side of plugins: their processes, their declarations and the calls in flight.

Nothing here knows any particular plugin. The manager starts one process per enabled plugin
(``python -m vehicle_host.plugins.host``) with a fresh secret token, restarts a crashed one with
back-off, checks the token in the plugin's ``hello`` (constant time), keeps the method declarations
of connected plugins for the gateway, and maps each worker call (app id + worker call id) to a
plugin call id. Answers come back through :meth:`on_result` / :meth:`on_event` as a :class:`Relay`
that says which app's worker gets which message. Calls that time out, and calls of a plugin that
died, are answered through the ``deliver`` callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vehicle_host.hub.gateway import DeclarationError, MethodRule, rules_from_declare
from vehicle_host.parent_death import HUB_PID_ENV
from vehicle_host.plugins import registry
from vehicle_host.plugins.contract import ERROR_CODES
from vehicle_host.wire import Envelope

log = logging.getLogger("vehicle_host.hub.plugins")

TOKEN_ENV = "VEHICLE_HOST_PLUGIN_TOKEN"  # noqa: S105 (the name of the variable, not a secret)
EXIT_CONFIG = 78  # the plugin cannot run as configured: restarting will not help
STOP_GRACE_S = 5.0
TIMEOUT_MARGIN_S = 1.0  # the plugin's own timeout fires first; this one catches a hung plugin
CANCEL_GRACE_S = 5.0
MAX_CALLS_PER_APP = 256
MAX_MESSAGE_CHARS = 2000

SendToPlugin = Callable[[bytes, Envelope], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Relay:
    """A message for one app's worker: ``type`` is ``api.result`` or ``api.event``."""

    app_id: str
    type: str
    payload: dict[str, Any]

    @property
    def final(self) -> bool:
        return self.type == "api.result" or bool(self.payload.get("end"))

    @classmethod
    def error(cls, app_id: str, call_id: int, code: str, message: str) -> Relay:
        payload = {"call_id": call_id, "ok": False, "error": {"code": code, "message": message}}
        return cls(app_id, "api.result", payload)


Deliver = Callable[[Relay], Awaitable[None]]


@dataclass
class PluginProcess:
    name: str
    token: str
    process: asyncio.subprocess.Process | None = None
    peer: bytes | None = None
    rules: dict[str, MethodRule] = field(default_factory=dict)
    version: str = ""
    started_at: float = 0.0
    stopping: bool = False
    broken: str = ""  # why it is not restarted
    restarts: int = 0
    delay: float = 0.0
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)
    restarter: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass
class InFlight:
    plugin_call_id: int
    plugin: str
    app_id: str
    call_id: int
    method: str
    streams: bool
    timer: asyncio.TimerHandle | None = None
    cancelling: bool = False


class PluginManager:
    def __init__(
        self,
        endpoint: str,
        state_dir: Path,
        *,
        send: SendToPlugin,
        deliver: Deliver,
        enabled: Iterable[str] | None = None,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        python: str = sys.executable,
        backoff: tuple[float, float] = (0.5, 30.0),
        stable_after_s: float = 10.0,
        max_calls_per_app: int = MAX_CALLS_PER_APP,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """``endpoint``: the hub's front endpoint the plugins connect to; ``state_dir``: each plugin
        gets ``state_dir/<name>``; ``send(peer, envelope)``: the broker's ``send_front``;
        ``deliver(relay)``: sends a relay to the app's worker; ``enabled``: plugin names to run
        (default: every registered one); ``config``: name -> JSON object passed as ``--config``;
        ``on_change``: called when the set of declared methods changes."""
        self.endpoint = endpoint
        self.state_dir = state_dir
        self._send = send
        self._deliver = deliver
        self._enabled = None if enabled is None else list(enabled)
        self._config = dict(config or {})
        self._python = python
        self._backoff = backoff
        self._stable_after_s = stable_after_s
        self._max_calls_per_app = max_calls_per_app
        self._on_change = on_change
        self._procs: dict[str, PluginProcess] = {}
        self._peers: dict[bytes, str] = {}
        self._rules: dict[str, MethodRule] = {}
        self._calls: dict[int, InFlight] = {}
        self._by_worker: dict[tuple[str, int], int] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.counters: dict[str, int] = {"refused_hello": 0, "dropped": 0, "timeouts": 0, "crashes": 0}

    # -- processes ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Registered plugins (entry points), without importing them."""
        return registry.names()

    def enabled(self) -> list[str]:
        registered = self.names()
        if self._enabled is None:
            return registered
        for name in self._enabled:
            if name not in registered:
                log.warning("an enabled plugin is not installed", extra={"plugin": name})
        return [name for name in self._enabled if name in registered]

    async def start(self) -> None:
        """Start every enabled plugin's process (they connect and declare on their own)."""
        for name in self.enabled():
            await self.start_plugin(name)

    async def start_plugin(self, name: str) -> None:
        old = self._procs.get(name)
        if old is not None and old.process is not None and old.process.returncode is None:
            return
        proc = PluginProcess(name, secrets.token_urlsafe(32), delay=old.delay if old else 0.0)
        proc.restarts = old.restarts if old else 0
        self._procs[name] = proc
        state = self.state_dir / name
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        command = [
            self._python,
            "-m",
            "vehicle_host.plugins.host",
            "--name",
            name,
            "--endpoint",
            self.endpoint,
        ]
        command += ["--state-dir", str(state)]
        if self._config.get(name):
            command += ["--config", json.dumps(self._config[name])]
        proc.process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            env={**os.environ, TOKEN_ENV: proc.token, HUB_PID_ENV: str(os.getpid())},
            start_new_session=True,
        )
        proc.started_at = asyncio.get_running_loop().time()
        proc.watcher = asyncio.create_task(self._watch(proc))
        log.info("plugin started", extra={"plugin": name, "pid": proc.process.pid})

    async def _watch(self, proc: PluginProcess) -> None:
        assert proc.process is not None
        code = await proc.process.wait()
        if self._procs.get(proc.name) is not proc:
            return
        self._disconnect(proc, f"{proc.name} stopped")
        if proc.stopping or self._closing:
            log.info("plugin exited", extra={"plugin": proc.name, "code": code})
            return
        self.counters["crashes"] += 1
        if code == EXIT_CONFIG:
            proc.broken = f"exit code {code}: cannot run as configured (see its log)"
            log.error("plugin cannot run; not restarting it", extra={"plugin": proc.name, "code": code})
            return
        lived = asyncio.get_running_loop().time() - proc.started_at
        low, high = self._backoff
        proc.delay = low if lived >= self._stable_after_s or proc.delay <= 0 else min(proc.delay * 2, high)
        proc.restarts += 1
        log.warning(
            "plugin crashed; restarting", extra={"plugin": proc.name, "code": code, "delay_s": proc.delay}
        )
        proc.restarter = asyncio.create_task(self._restart_later(proc))

    async def _restart_later(self, proc: PluginProcess) -> None:
        await asyncio.sleep(proc.delay)
        if self._procs.get(proc.name) is proc and not proc.stopping and not self._closing:
            try:
                await self.start_plugin(proc.name)
            except OSError:
                log.exception("could not restart plugin", extra={"plugin": proc.name})

    def _disconnect(self, proc: PluginProcess, why: str) -> None:
        """Forget the peer and declarations of ``proc``; fail its calls with ``unavailable``."""
        if proc.peer is not None:
            self._peers.pop(proc.peer, None)
            proc.peer = None
        if proc.rules:
            proc.rules = {}
            self._rebuild_rules()
        for inflight in [c for c in self._calls.values() if c.plugin == proc.name]:
            self._forget(inflight)
            message = f"{why} while handling {inflight.method}; try again in a moment."
            self._spawn(self._deliver(Relay.error(inflight.app_id, inflight.call_id, "unavailable", message)))

    async def stop_plugin(self, name: str) -> None:
        proc = self._procs.get(name)
        if proc is None:
            return
        proc.stopping = True
        if proc.restarter is not None:
            proc.restarter.cancel()
        process = proc.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if proc.watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await proc.watcher
        self._disconnect(proc, f"{name} was stopped")

    async def stop_all(self) -> None:
        self._closing = True
        await asyncio.gather(*(self.stop_plugin(name) for name in list(self._procs)))
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)

    def pid(self, name: str) -> int | None:
        proc = self._procs.get(name)
        return proc.process.pid if proc is not None and proc.process is not None else None

    # -- hello and declarations -----------------------------------------------------------------
    def on_hello(self, peer: bytes, payload: Mapping[str, Any]) -> bool:
        """A front peer says ``hello{role: "plugin"}``: True if its name and token are right."""
        name, token = payload.get("plugin"), payload.get("token")
        proc = self._procs.get(name) if isinstance(name, str) else None
        expected = proc.token if proc is not None and not proc.stopping else secrets.token_urlsafe(32)
        given = token if isinstance(token, str) else ""
        token_ok = hmac.compare_digest(given.encode(), expected.encode())
        if proc is None or not token_ok or proc.peer is not None or peer in self._peers:
            self.counters["refused_hello"] += 1
            log.warning("refused a plugin hello", extra={"plugin": str(name)[:64]})
            return False
        proc.peer = peer
        self._peers[peer] = proc.name
        log.info("plugin connected", extra={"plugin": proc.name})
        return True

    def plugin_of(self, peer: bytes) -> str | None:
        """The plugin that said hello on ``peer`` (None: not an authenticated plugin)."""
        return self._peers.get(peer)

    def on_declare(self, peer: bytes, payload: Mapping[str, Any]) -> bool:
        name = self._peers.get(peer)
        proc = self._procs.get(name) if name is not None else None
        if proc is None or payload.get("name") != proc.name:
            self.counters["dropped"] += 1
            return False
        try:
            rules = rules_from_declare(proc.name, payload.get("methods"))
        except DeclarationError as exc:
            log.error("plugin declaration refused", extra={"plugin": proc.name, "error": str(exc)})
            return False
        for method in list(rules):
            owner = self._rules.get(method)
            if owner is not None and owner.owner != proc.name:
                log.error("method declared by two plugins", extra={"method": method, "kept": owner.owner})
                del rules[method]
        proc.rules = rules
        proc.version = str(payload.get("version", ""))[:64]
        self._rebuild_rules()
        log.info("plugin declared", extra={"plugin": proc.name, "methods": len(rules)})
        return True

    def _rebuild_rules(self) -> None:
        merged: dict[str, MethodRule] = {}
        for proc in self._procs.values():
            for name, rule in proc.rules.items():
                merged.setdefault(name, rule)
        self._rules = merged
        if self._on_change is not None:
            self._on_change()

    def rules(self) -> Mapping[str, MethodRule]:
        """Every method declared by a connected plugin: the gateway's ``plugin_rules``."""
        return self._rules

    # -- calls ----------------------------------------------------------------------------------
    async def call(
        self,
        app_id: str,
        call_id: int,
        rule: MethodRule,
        args: Mapping[str, Any],
        *,
        allow: Sequence[str] = (),
    ) -> None:
        """Send an allowed call to its plugin. ``allow`` (the app's network allow-list) goes to
        the plugin as ``args["_allow"]``. Every outcome reaches the worker as a Relay."""
        proc = self._procs.get(rule.owner)
        if proc is None or proc.peer is None or rule.name not in proc.rules:
            message = (
                f"{rule.name} is not available right now ({rule.owner} is not running); try again shortly."
            )
            await self._deliver(Relay.error(app_id, call_id, "unavailable", message))
            return
        if (app_id, call_id) in self._by_worker:
            await self._deliver(
                Relay.error(app_id, call_id, "failed", f"call id {call_id} is already in use")
            )
            return
        if sum(1 for c in self._calls.values() if c.app_id == app_id) >= self._max_calls_per_app:
            message = f"too many calls in flight ({self._max_calls_per_app}); wait for some to finish"
            await self._deliver(Relay.error(app_id, call_id, "busy", message))
            return
        pid = next(self._ids)
        inflight = InFlight(pid, proc.name, app_id, call_id, rule.name, rule.streams)
        if not rule.streams:
            delay = rule.timeout_s + TIMEOUT_MARGIN_S
            inflight.timer = asyncio.get_running_loop().call_later(delay, self._expire, pid)
        self._calls[pid] = inflight
        self._by_worker[(app_id, call_id)] = pid
        payload = {
            "call_id": pid,
            "app_id": app_id,
            "method": rule.name,
            "args": {**args, "_allow": list(allow)},
        }
        sent = await self._send(
            proc.peer, Envelope("plugin.call", pid, "hub", f"plugin:{proc.name}", payload)
        )
        if not sent and pid in self._calls:
            self._forget(inflight)
            message = f"{rule.name}: the arguments cannot be sent to the plugin (too large?)"
            await self._deliver(Relay.error(app_id, call_id, "invalid_args", message))

    async def cancel(self, app_id: str, call_id: int) -> None:
        """The worker sent ``api.cancel``: ask the plugin to stop; its answer is still relayed."""
        pid = self._by_worker.get((app_id, call_id))
        inflight = self._calls.get(pid) if pid is not None else None
        if inflight is None or inflight.cancelling:
            return
        inflight.cancelling = True
        if inflight.timer is not None:
            inflight.timer.cancel()
        inflight.timer = asyncio.get_running_loop().call_later(
            CANCEL_GRACE_S, self._expire, inflight.plugin_call_id
        )
        await self._send_cancel(inflight)

    async def cancel_app(self, app_id: str) -> None:
        """The app stopped: cancel its calls in the plugins and forget them (nobody to answer)."""
        await self.cancel_calls(self.forget_app(app_id))

    def forget_app(self, app_id: str) -> list[InFlight]:
        """Forget the app's calls in flight now (not later ones: a relaunch may already be calling)."""
        calls = [c for c in self._calls.values() if c.app_id == app_id]
        for inflight in calls:
            self._forget(inflight)
        return calls

    async def cancel_calls(self, calls: list[InFlight]) -> None:
        for inflight in calls:
            await self._send_cancel(inflight)

    async def _send_cancel(self, inflight: InFlight) -> None:
        proc = self._procs.get(inflight.plugin)
        if proc is not None and proc.peer is not None:
            pid = inflight.plugin_call_id
            envelope = Envelope(
                "plugin.cancel", next(self._ids), "hub", f"plugin:{proc.name}", {"call_id": pid}
            )
            await self._send(proc.peer, envelope)

    def _expire(self, pid: int) -> None:
        inflight = self._calls.get(pid)
        if inflight is None:
            return
        self._forget(inflight)
        if inflight.cancelling:
            relay = Relay.error(
                inflight.app_id, inflight.call_id, "cancelled", f"{inflight.method} was cancelled"
            )
        else:
            self.counters["timeouts"] += 1
            message = f"{inflight.plugin} did not answer {inflight.method} in time; try again."
            relay = Relay.error(inflight.app_id, inflight.call_id, "timeout", message)
            self._spawn(self._send_cancel(inflight))
        self._spawn(self._deliver(relay))

    def _forget(self, inflight: InFlight) -> None:
        if inflight.timer is not None:
            inflight.timer.cancel()
        self._calls.pop(inflight.plugin_call_id, None)
        self._by_worker.pop((inflight.app_id, inflight.call_id), None)

    def _owned(self, peer: bytes, payload: Mapping[str, Any]) -> InFlight | None:
        inflight = self._calls.get(payload.get("call_id", -1))
        if inflight is None or self._peers.get(peer) != inflight.plugin:
            self.counters["dropped"] += 1
            return None
        return inflight

    def on_result(self, peer: bytes, payload: Mapping[str, Any]) -> Relay | None:
        """``plugin.result`` from ``peer``: the ``api.result`` to send to the app's worker, or None."""
        inflight = self._owned(peer, payload)
        if inflight is None:
            return None
        self._forget(inflight)
        out: dict[str, Any] = {"call_id": inflight.call_id, "ok": bool(payload.get("ok"))}
        if out["ok"]:
            out["result"] = payload.get("result")
        else:
            out["error"] = _clean_error(payload.get("error"), inflight.plugin)
        return Relay(inflight.app_id, "api.result", out)

    def on_event(self, peer: bytes, payload: Mapping[str, Any]) -> Relay | None:
        """``plugin.event`` from ``peer``: the ``api.event`` to send to the app's worker, or None."""
        inflight = self._owned(peer, payload)
        if inflight is None:
            return None
        if not inflight.streams:
            self.counters["dropped"] += 1
            return None
        out: dict[str, Any] = {"call_id": inflight.call_id, "data": payload.get("data")}
        if payload.get("end"):
            out["end"] = True
            self._forget(inflight)
        return Relay(inflight.app_id, "api.event", out)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stats(self) -> dict[str, Any]:
        return {
            "plugins": {
                name: {
                    "pid": p.process.pid if p.process is not None else None,
                    "connected": p.peer is not None,
                    "methods": len(p.rules),
                    "restarts": p.restarts,
                    "broken": p.broken,
                }
                for name, p in self._procs.items()
            },
            "calls_in_flight": len(self._calls),
            **self.counters,
        }


def _clean_error(error: Any, plugin: str) -> dict[str, str]:
    if not isinstance(error, Mapping):
        return {"code": "failed", "message": f"{plugin} failed without saying why"}
    code = error.get("code")
    message = error.get("message")
    return {
        "code": code if code in ERROR_CODES else "failed",
        "message": message[:MAX_MESSAGE_CHARS] if isinstance(message, str) else f"{plugin} failed",
    }
