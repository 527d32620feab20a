"""Routes a mini-app's ``api.call`` through the gateway to the shell (``ui.*``) or to a plugin.

It knows no method by name: the gateway's rules say who serves a call and what it needs; the
user's answers to consent questions are kept in the grant store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vehicle_host.errors import VehicleHostError
from vehicle_host.hub import gateway
from vehicle_host.hub.grants import GrantStore
from vehicle_host.hub.plugins import PluginManager, Relay

log = logging.getLogger("vehicle_host.hub.calls")

#: How long the hub waits for the driver to answer a consent question.
CONSENT_TIMEOUT_S = 120.0
#: How long hub-internal plugin calls (e.g. the storage snapshot at launch) may take.
INTERNAL_TIMEOUT_S = 3.0
#: ui.* calls that wait for the driver, held at most this many per app.
MAX_UI_WAITING_PER_APP = 16

HUB_OWNER = "hub"


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": False}


_TEXT = {"type": "string", "maxLength": 1024}
#: Methods the host itself serves: app switching (drawn by the shell) and the app's own settings
#: (from the grant store). Plugins cannot take these names.
HOST_RULES: Mapping[str, gateway.MethodRule] = {
    "app.exit": gateway.MethodRule("app.exit", gateway.UI_OWNER, args=_obj(), ui_kind="app"),
    "app.restart": gateway.MethodRule("app.restart", gateway.UI_OWNER, args=_obj(path=_TEXT), ui_kind="app"),
    "app.open": gateway.MethodRule(
        "app.open",
        gateway.UI_OWNER,
        args={
            **_obj(
                appId={"type": "string", "minLength": 1, "maxLength": 64},
                path=_TEXT,
                extraData={"type": "object", "maxProperties": 64},
                envVersion={"enum": ["develop", "trial", "release"]},
            ),
            "required": ["appId"],
        },
        ui_kind="app",
    ),
    "app.back": gateway.MethodRule(
        "app.back",
        gateway.UI_OWNER,
        args=_obj(extraData={"type": "object", "maxProperties": 64}),
        ui_kind="app",
    ),
    "settings.get": gateway.MethodRule(
        "settings.get", HUB_OWNER, args=_obj(withSubscriptions={"type": "boolean"})
    ),
    "settings.authorize": gateway.MethodRule(
        "settings.authorize",
        HUB_OWNER,
        args={**_obj(scope={"type": "string", "minLength": 1, "maxLength": 128}), "required": ["scope"]},
    ),
}

PushUi = Callable[[int, str, str, dict[str, Any]], Awaitable[bool]]  # request id, app id, kind, params
SendWorker = Callable[[str, str, dict[str, Any]], Awaitable[None]]  # app id, type, payload


@dataclass
class Waiting:
    app_id: str
    call_id: int  # the worker's call id; 0 for a consent question
    future: asyncio.Future[dict[str, Any]] | None = None


class CallRouter:
    def __init__(
        self,
        *,
        plugins: PluginManager,
        grants: GrantStore,
        push_ui: PushUi,
        send_worker: SendWorker,
        state: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.plugins = plugins
        self.grants = grants
        self._push_ui = push_ui
        self._send_worker = send_worker
        self._state = state
        self._request_ids = itertools.count(1)
        self._waiting: dict[int, Waiting] = {}
        self._internal: dict[tuple[str, int], asyncio.Future[Relay]] = {}
        self._internal_ids = itertools.count(-1, -1)  # never collides with a worker's call ids
        self._tasks: set[asyncio.Task[Any]] = set()
        self.counters: dict[str, int] = {"calls": 0, "denied": 0, "consent_asked": 0}

    # -- from workers ----------------------------------------------------------------------------
    def on_call(self, app: gateway.AppPolicy, payload: Mapping[str, Any]) -> None:
        """Judge and dispatch one call without blocking the hub (consent may take a while)."""
        self.counters["calls"] += 1
        if payload["call_id"] <= 0:  # negative ids are the hub's own calls, 0 means "no callback"
            self.counters["denied"] += 1
            return
        task = asyncio.get_running_loop().create_task(self._call(app, dict(payload)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, app: gateway.AppPolicy, payload: dict[str, Any]) -> None:
        call_id, method, args = payload["call_id"], payload["method"], payload["args"]
        decision = self._decide(app, method, args)
        permission = decision.permission
        if decision.verdict == "ask" and permission is not None:
            answer = await self._ask_consent(app, decision)
            if answer is None:  # no answer (no screen, timeout): refuse this call, remember nothing
                message = f"{app.name} asked for {permission} and got no answer; try again."
                decision = gateway.Decision("deny", "denied", message)
            elif answer[1]:  # "always allow" or "don't allow": remembered
                decision = self._remember(app, permission, answer[0]) or self._decide(app, method, args)
            elif answer[0]:  # "allow once": this call goes ahead, the next one asks again
                decision = self._decide(app, method, args, once=permission)
            else:  # refused without being remembered (e.g. the dialog went away with its app)
                message = f"The driver did not allow {app.name} to use {permission} this time."
                decision = gateway.Decision("deny", "denied", message)
        if not decision.allowed or decision.rule is None:
            self.counters["denied"] += 1
            log.info(
                "call refused",
                extra={"app_id": app.app_id, "method": method[:128], "code": decision.code},
            )
            error = decision.error() if decision.code else {"code": "denied", "message": "not allowed"}
            await self._result(app.app_id, {"call_id": call_id, "ok": False, "error": error})
            return
        rule = decision.rule
        if rule.owner == gateway.UI_OWNER:
            await self._to_shell(app.app_id, call_id, rule, args)
        elif rule.owner == HUB_OWNER:
            await self._result(app.app_id, await self._settings(app, call_id, rule.name, args))
        else:
            await self.plugins.call(app.app_id, call_id, rule, args, allow=app.network)

    def _decide(
        self, app: gateway.AppPolicy, method: str, args: Mapping[str, Any], *, once: str | None = None
    ) -> gateway.Decision:
        grants = self.grants.grants(app.app_id)
        if once is not None:
            grants[once] = True
        return gateway.decide(
            app,
            method,
            args,
            plugin_rules={**self.plugins.rules(), **HOST_RULES},
            grants=grants,
            vehicle=self._state.get("vehicle"),
        )

    def _remember(self, app: gateway.AppPolicy, permission: str, granted: bool) -> gateway.Decision | None:
        """Store the driver's answer; a refusal if it cannot be stored (the caller still gets one)."""
        try:
            self.grants.set(app.app_id, permission, granted, by="driver")
        except (VehicleHostError, sqlite3.Error):
            log.exception("could not store a consent answer", extra={"app_id": app.app_id})
            return gateway.Decision("deny", "failed", "The answer could not be saved; try again.")
        return None

    async def _settings(
        self, app: gateway.AppPolicy, call_id: int, name: str, args: Mapping[str, Any]
    ) -> dict[str, Any]:
        """getSetting / authorize: the app's own permissions and the driver's answers about them."""
        answers = self.grants.grants(app.app_id)
        if name == "settings.get":
            decided = {perm: answers[perm] for perm in sorted(app.permissions) if perm in answers}
            return {"call_id": call_id, "ok": True, "result": {"authSetting": decided}}
        scope = str(args["scope"])
        if scope not in app.permissions:
            message = f"{app.name} did not declare permission {scope} in app.json"
            return {"call_id": call_id, "ok": False, "error": {"code": "denied", "message": message}}
        granted = answers.get(scope)
        if granted is None:
            params = {
                "app_id": app.app_id,
                "app_name": app.name,
                "permission": scope,
                "method": "settings.authorize",
                "message": f"{app.name} asks for permission {scope}. Allow it?",
            }
            answer = await self._ask_shell(app.app_id, 0, "consent", params, CONSENT_TIMEOUT_S)
            if answer is None:
                error = {"code": "denied", "message": "auth deny (no answer)"}
                return {"call_id": call_id, "ok": False, "error": error}
            granted = answer.get("granted") is True or answer.get("allow") is True
            if answer.get("remember") is not False:  # "allow once" (or a dismissed dialog) is not kept
                failed = self._remember(app, scope, granted)
                if failed is not None:
                    return {"call_id": call_id, "ok": False, "error": failed.error()}
        if not granted:
            return {"call_id": call_id, "ok": False, "error": {"code": "denied", "message": "auth deny"}}
        return {"call_id": call_id, "ok": True, "result": {}}

    async def _ask_consent(
        self, app: gateway.AppPolicy, decision: gateway.Decision
    ) -> tuple[bool, bool] | None:
        """(granted, remember): the shell answers {granted: bool, remember?: bool}; remember
        defaults to true ("always"); {allow: bool} is accepted for granted as well."""
        self.counters["consent_asked"] += 1
        answer = await self._ask_shell(app.app_id, 0, "consent", dict(decision.consent), CONSENT_TIMEOUT_S)
        if answer is None:
            return None
        granted = answer.get("granted") is True or answer.get("allow") is True
        return granted, answer.get("remember") is not False

    async def _to_shell(
        self, app_id: str, call_id: int, rule: gateway.MethodRule, args: Mapping[str, Any]
    ) -> None:
        params = gateway.ui_request_params(rule, args)
        answer = await self._ask_shell(app_id, call_id, rule.ui_kind, params, None)
        if answer is None:
            error = {"code": "unavailable", "message": "the screen could not show this; try again"}
            await self._result(app_id, {"call_id": call_id, "ok": False, "error": error})
        elif isinstance(answer.get("error"), str):  # the shell could not do it, and says why
            error = {"code": "failed", "message": answer["error"][:500]}
            await self._result(app_id, {"call_id": call_id, "ok": False, "error": error})
        else:
            await self._result(app_id, {"call_id": call_id, "ok": True, "result": answer})

    async def _ask_shell(
        self, app_id: str, call_id: int, kind: str, params: dict[str, Any], timeout: float | None
    ) -> dict[str, Any] | None:
        if sum(1 for w in self._waiting.values() if w.app_id == app_id) >= MAX_UI_WAITING_PER_APP:
            return None
        request_id = next(self._request_ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = Waiting(app_id, call_id, future)
        try:
            if not await self._push_ui(request_id, app_id, kind, params):
                return None
            return await asyncio.wait_for(future, timeout)
        except (TimeoutError, asyncio.CancelledError):
            return None
        finally:
            self._waiting.pop(request_id, None)

    def on_cancel(self, app_id: str, call_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self.plugins.cancel(app_id, call_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- from the shell and plugins ----------------------------------------------------------------
    def on_ui_response(self, payload: Mapping[str, Any]) -> bool:
        waiting = self._waiting.get(payload["request_id"])
        if waiting is None or waiting.future is None or waiting.future.done():
            return False
        waiting.future.set_result(dict(payload["result"]))
        return True

    async def deliver(self, relay: Relay) -> None:
        """The plugin manager's answer for a worker (or for one of the hub's own calls)."""
        call_id = relay.payload.get("call_id", 0)
        future = self._internal.get((relay.app_id, call_id)) if call_id < 0 else None
        if future is not None:
            if not future.done():
                future.set_result(relay)
            return
        await self._send_worker(relay.app_id, relay.type, relay.payload)

    async def internal(self, app_id: str, method: str, args: dict[str, Any]) -> Any:
        """Call a plugin method on an app's behalf from the hub itself (no gateway: the hub is
        trusted); returns the result or None when it fails."""
        rule = self.plugins.rules().get(method)
        if rule is None:
            return None
        call_id = next(self._internal_ids)
        future: asyncio.Future[Relay] = asyncio.get_running_loop().create_future()
        self._internal[(app_id, call_id)] = future
        try:
            await self.plugins.call(app_id, call_id, rule, args)
            relay = await asyncio.wait_for(future, INTERNAL_TIMEOUT_S)
        except TimeoutError:
            log.warning("internal plugin call timed out", extra={"app_id": app_id, "method": method})
            return None
        finally:
            self._internal.pop((app_id, call_id), None)
        if not relay.payload.get("ok"):
            log.warning(
                "internal plugin call failed",
                extra={"app_id": app_id, "method": method, "error": relay.payload.get("error")},
            )
            return None
        return relay.payload.get("result")

    def forget_app(self, app_id: str) -> None:
        """The app stopped: its open questions go away (the shell closes its dialogs)."""
        for waiting in [w for w in self._waiting.values() if w.app_id == app_id]:
            if waiting.future is not None and not waiting.future.done():
                waiting.future.cancel()
        # forget them now: the cancels go out later, and must not catch a relaunch's first calls
        stale = self.plugins.forget_app(app_id)
        task = asyncio.get_running_loop().create_task(self.plugins.cancel_calls(stale))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _result(self, app_id: str, payload: dict[str, Any]) -> None:
        await self._send_worker(app_id, "api.result", payload)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
