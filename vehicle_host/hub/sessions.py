"""Running apps as the hub sees them: which worker slot, which pages, in which order.

Pure bookkeeping plus the message payloads the hub sends for a launch or a navigation; sending is
the service's job. Pages are compiled through ``vehicle_host.bundles.catalog``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from vehicle_host.bundles import catalog
from vehicle_host.hub.navigation import NavigationError, PageEntry, PageStack, Step, resolve_url


@dataclass
class Session:
    app: catalog.InstalledApp
    stack: PageStack = field(default_factory=PageStack)
    visible: bool = True
    #: script errors written to the run log in this run (at most MAX_RECORDED_ERRORS)
    errors_recorded: int = 0

    @property
    def app_id(self) -> str:
        return self.app.manifest.app_id


class Sessions:
    """Every running app's page stack, and the page-id space they share."""

    def __init__(self) -> None:
        self._by_app: dict[str, Session] = {}
        self._page_ids = itertools.count(1)

    def __contains__(self, app_id: str) -> bool:
        return app_id in self._by_app

    def get(self, app_id: str) -> Session | None:
        return self._by_app.get(app_id)

    def begin(self, app: catalog.InstalledApp) -> Session:
        session = Session(app)
        self._by_app[app.manifest.app_id] = session
        return session

    def end(self, app_id: str) -> Session | None:
        return self._by_app.pop(app_id, None)

    def owner_of(self, page_id: int) -> str | None:
        for app_id, session in self._by_app.items():
            if session.stack.owns(page_id):
                return app_id
        return None

    def open_pages(self) -> int:
        return sum(len(s.stack.pages) for s in self._by_app.values())

    def new_entry(self, route: str, query: dict[str, str]) -> PageEntry:
        return PageEntry(next(self._page_ids), route, query)

    def plan(
        self, session: Session, action: str, url: str | None, delta: int
    ) -> tuple[Step, catalog.CompiledPage | None]:
        """Resolve, compile and apply one navigation to ``session``'s stack.

        Raises NavigationError for a refused navigation and BundleError for a page that does not
        compile; in both cases the stack is unchanged."""
        manifest = session.app.manifest
        if action == "navigateBack":
            return session.stack.apply("navigateBack", delta=delta), None
        top = session.stack.top
        route, query = resolve_url(url or "", top.route if top else None, manifest.pages)
        page = catalog.compile_page(session.app, route)
        step = session.stack.apply(
            action, new_page=self.new_entry(route, query), tab_routes=manifest.tab_routes
        )
        return step, page


def page_open_payload(
    app: catalog.InstalledApp, entry: PageEntry, page: catalog.CompiledPage, mode: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "app_id": app.manifest.app_id,
        "page_id": entry.page_id,
        "route": entry.route,
        "title": page.title,
        "tree": page.tree,
        "css": page.css,
        "mode": mode,
    }
    for name in ("templates", "components", "window", "tab_bar"):
        value = getattr(page, name, None)
        if value:
            payload[name] = value
    return payload


def nav_result(call_id: int, step: Step) -> dict[str, Any]:
    payload: dict[str, Any] = {"call_id": call_id, "ok": True, "closed": list(step.closed)}
    if step.opened is not None:
        payload["opened"] = {
            "page_id": step.opened.page_id,
            "route": step.opened.route,
            "query": step.opened.query,
        }
    if step.shown is not None:
        payload["shown"] = step.shown
    return payload


def nav_failure(call_id: int, action: str, error: Exception) -> dict[str, Any]:
    message = str(error) if isinstance(error, NavigationError) else f"the page could not be opened: {error}"
    return {"call_id": call_id, "ok": False, "error": f"{action}:fail {message}"[:8000]}
