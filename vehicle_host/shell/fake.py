"""A headless stand-in for the shell: speaks the shell's side of the hub protocol, records what the
hub sends it, and answers ``ui.request`` from a script, so hub-side tests need no window.

    async with FakeShell(endpoint, answers={"modal": [{"confirm": True, "cancel": False}]}) as shell:
        await shell.launch("org.example.app")
        opened = await shell.expect("page.open", app_id="org.example.app")

Like the real shell it says hello as ``shell``, lists the apps, sends ``page.painted`` once for each
page it is given a render for, and answers toasts and bar operations with ``{}``. Dialogs (modal,
action sheet, consent) are answered with the next scripted answer for their kind, or cancelled
(``{cancel: true}`` / ``{granted: false, remember: false}``) when the script has none left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from vehicle_host.errors import HostTimeoutError
from vehicle_host.hub.client import HubClient
from vehicle_host.wire import Envelope

DIALOGS = ("modal", "actionSheet", "consent")
MAX_RECORDED = 10_000


def _cancelled(kind: str) -> dict[str, Any]:
    if kind == "consent":
        return {"granted": False, "remember": False}
    if kind == "modal":
        return {"confirm": False, "cancel": True}
    return {"cancel": True}


class FakeShell:
    def __init__(
        self, endpoint: str, *, answers: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
    ) -> None:
        self.endpoint = endpoint
        self.client = HubClient(endpoint, role="shell")
        self.apps: list[dict[str, Any]] = []
        #: every message from the hub, in order (bounded)
        self.received: deque[Envelope] = deque(maxlen=MAX_RECORDED)
        #: (request payload, the answer given) for each ui.request
        self.answered: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self._answers = {kind: deque(dict(a) for a in items) for kind, items in (answers or {}).items()}
        self._changed = asyncio.Condition()
        self._consumed: set[int] = set()
        self._painted: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    def script(self, kind: str, *answers: Mapping[str, Any]) -> None:
        """Queue more answers for dialogs of ``kind``."""
        self._answers.setdefault(kind, deque()).extend(dict(a) for a in answers)

    async def start(self, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """hello, then app.list; returns the listing."""
        await self.client.connect(timeout=timeout)
        self._task = asyncio.create_task(self._pump())
        reply = await self.client.request("app.list", "hub", {}, timeout=timeout)
        self.apps = [dict(a) for a in reply.payload.get("apps", []) if isinstance(a, dict)]
        return self.apps

    async def launch(self, app_id: str) -> None:
        self.client.send("app.launch", "hub", {"app_id": app_id})

    async def close_app(self, app_id: str) -> None:
        self.client.send("app.close", "hub", {"app_id": app_id})

    async def tap(
        self, app_id: str, page_id: int, handler: str, event: Mapping[str, Any] | None = None
    ) -> None:
        """What a tap on a bound element sends: ``page.event`` to the app."""
        payload = {"page_id": page_id, "handler": handler, "event": dict(event or {"type": "tap"})}
        self.client.send("page.event", f"app:{app_id}", payload)

    async def request(self, type_: str, payload: dict[str, Any], *, timeout: float = 10.0) -> Envelope:
        """A shell request with a reply (app.info, grant.set, hub.stats)."""
        return await self.client.request(type_, "hub", payload, timeout=timeout)

    async def expect(self, type_: str, *, timeout: float = 10.0, **fields: Any) -> Envelope:
        """The first message of ``type_`` (not returned before) whose payload has ``fields``."""

        def find() -> Envelope | None:
            for message in self.received:
                if (
                    id(message) not in self._consumed
                    and message.type == type_
                    and all(message.payload.get(k) == v for k, v in fields.items())
                ):
                    self._consumed.add(id(message))
                    return message
            return None

        async def wait() -> Envelope:
            async with self._changed:
                while (found := find()) is None:
                    await self._changed.wait()
                return found

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise HostTimeoutError(f"the hub sent no {type_} {fields or ''} within {timeout:g} s") from None

    async def _pump(self) -> None:
        while True:
            message = await self.client.inbox.get()
            self._react(message)
            async with self._changed:
                self.received.append(message)
                self._changed.notify_all()

    def _react(self, message: Envelope) -> None:
        p = message.payload
        if message.type == "page.render" and message.source.startswith("app:"):
            page_id = p.get("page_id")
            if isinstance(page_id, int) and page_id not in self._painted:
                self._painted.add(page_id)
                self.client.send("page.painted", message.source, {"page_id": page_id})
        elif message.type == "ui.request" and message.source == "hub":
            kind = str(p.get("kind"))
            if kind in DIALOGS:
                queue = self._answers.get(kind)
                answer = queue.popleft() if queue else _cancelled(kind)
            else:
                answer = {}
            self.answered.append((dict(p), answer))
            self.client.send("ui.response", "hub", {"request_id": p.get("request_id"), "result": answer})

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()

    async def __aenter__(self) -> FakeShell:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
