"""A fake hub for an :class:`AppSession`: a manual clock and a list of what the worker sent.

Shipped with the package so tests (and tools) can drive a mini-app's logic without sockets or
processes: ``FakeHub().start({...sources...})``, then ``event()``, ``advance()``, ``answer()``.
"""

from __future__ import annotations

from typing import Any

from vehicle_host.logic_worker.session import AppSession
from vehicle_host.wire import Envelope, encode

ENTRY = "pages/index/index"


class FakeHub:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.session = AppSession(self._record, clock=lambda: self.now)
        self._ids = 0

    def _record(self, type_: str, target: str, payload: dict[str, Any]) -> None:
        encode(Envelope(type_, 1, "app:test", target, payload))  # the checks the real socket applies
        self.sent.append((type_, payload))

    # -- driving -----------------------------------------------------------------------------------
    def deliver(self, type_: str, payload: dict[str, Any]) -> None:
        self._ids += 1
        self.session.handle(Envelope(type_, self._ids, "hub", "app:test", payload))

    def start(
        self,
        sources: dict[str, str],
        *,
        pages: list[str] | None = None,
        route: str = ENTRY,
        page_id: int = 1,
        query: dict[str, Any] | None = None,
        system: dict[str, Any] | None = None,
        apis: list[Any] | None = None,
        storage: dict[str, str] | None = None,
        limits: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        cfg = dict(config or {})
        cfg.setdefault("pages", pages or [route])
        self.deliver(
            "worker.start",
            {
                "app_id": "org.test.app",
                "sources": sources,
                "config": cfg,
                "route": route,
                "page_id": page_id,
                "query": query or {},
                "system": system or {},
                "apis": apis or [],
                "storage": storage or {},
                "limits": limits or {},
            },
        )

    def event(
        self, handler: str, event: dict[str, Any] | None = None, *, page_id: int = 1, component: str = ""
    ) -> None:
        payload: dict[str, Any] = {"page_id": page_id, "handler": handler, "event": event or {}}
        if component:
            payload["component"] = component
        self.deliver("page.event", payload)

    def advance(self, seconds: float) -> None:
        """Move the clock and let the session fire what became due (in small steps)."""
        end = self.now + seconds
        while True:
            due = self.session.next_deadline()
            if due is None or due > end:
                break
            self.now = max(self.now, due)
            self.session.tick()
        self.now = end
        self.session.tick()

    def answer(self, call_id: int, result: Any = None, *, error: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"call_id": call_id, "ok": error is None}
        if error is None:
            payload["result"] = result if result is not None else {}
        else:
            payload["error"] = error
        self.deliver("api.result", payload)

    # -- reading -----------------------------------------------------------------------------------
    def take(self) -> list[tuple[str, dict[str, Any]]]:
        out, self.sent = self.sent, []
        return out

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [p for t, p in self.sent if t == type_]

    def logs(self, level: str | None = None) -> list[str]:
        return [p["message"] for p in self.of("log") if level is None or p["level"] == level]

    def errors(self) -> list[dict[str, Any]]:
        return self.of("script.error")

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.of("api.call") if method is None or p["method"] == method]

    def diffs(self, page_id: int = 1, component: str = "") -> list[dict[str, Any]]:
        return [
            p["diff"]
            for p in self.of("page.setData")
            if p["page_id"] == page_id and p.get("component", "") == component
        ]
