"""An app's page stack as a small state machine: no I/O, no ids of its own.

The hub keeps the authoritative stack of every running app; the worker mirrors it from the
``nav.result`` the hub sends. Behaviour follows WeChat's route APIs: navigateTo pushes (at most 10
pages), redirectTo replaces the top, navigateBack pops ``delta`` pages but never the last one,
reLaunch and switchTab start over (switchTab only to a tabBar page and without a query).
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from vehicle_host.errors import VehicleHostError

MAX_DEPTH = 10
MAX_QUERY_KEYS = 32
MAX_QUERY_VALUE = 1024
ACTIONS = ("navigateTo", "redirectTo", "navigateBack", "switchTab", "reLaunch")


class NavigationError(VehicleHostError):
    """A navigation the app asked for and cannot have; the message goes to its ``fail``."""


@dataclass(frozen=True, slots=True)
class PageEntry:
    page_id: int
    route: str
    query: dict[str, str]


@dataclass(frozen=True, slots=True)
class Step:
    """What one navigation does: the shell's mode for the opened page, pages closed, page uncovered."""

    mode: str | None = None  # push | replace | reset, when a page is opened
    opened: PageEntry | None = None
    closed: tuple[int, ...] = ()
    shown: int | None = None


def resolve_url(url: str, current_route: str | None, pages: Collection[str]) -> tuple[str, dict[str, str]]:
    """``'/pages/a/a?x=1'`` or ``'../b/b'`` (relative to the current page) -> (route, query)."""
    if not isinstance(url, str) or not url.strip():
        raise NavigationError("url is required, e.g. '/pages/detail/detail?id=1'")
    if len(url) > 1024:
        raise NavigationError("url is longer than 1024 characters")
    path, _, qs = url.strip().partition("?")
    if path.startswith("/"):
        route = posixpath.normpath(path.lstrip("/"))
    else:
        base = posixpath.dirname(current_route or "")
        route = posixpath.normpath(posixpath.join(base, path))
    route = route.removesuffix(".html")
    if route.startswith("..") or route.startswith("/") or route == ".":
        raise NavigationError(f"url {url!r} points outside the app")
    if route not in pages:
        raise NavigationError(f"page {route!r} is not listed in app.json pages")
    query: dict[str, str] = {}
    for key, value in parse_qsl(qs, keep_blank_values=True):
        if len(query) >= MAX_QUERY_KEYS:
            raise NavigationError(f"url has more than {MAX_QUERY_KEYS} query parameters")
        if len(value) > MAX_QUERY_VALUE or len(key) > 128:
            raise NavigationError("a query parameter is too long")
        query[unquote(key)] = value
    return route, query


@dataclass
class PageStack:
    """The open pages of one app, bottom first."""

    pages: list[PageEntry] = field(default_factory=list)

    @property
    def top(self) -> PageEntry | None:
        return self.pages[-1] if self.pages else None

    def ids(self) -> list[int]:
        return [p.page_id for p in self.pages]

    def owns(self, page_id: int) -> bool:
        return any(p.page_id == page_id for p in self.pages)

    def launch(self, entry: PageEntry) -> Step:
        closed = tuple(self.ids())
        self.pages = [entry]
        return Step(mode="reset", opened=entry, closed=closed)

    def apply(
        self,
        action: str,
        *,
        new_page: PageEntry | None = None,
        delta: int = 1,
        tab_routes: Collection[str] = (),
    ) -> Step:
        """Apply a checked navigation. ``new_page`` carries the resolved route and a fresh id."""
        if action == "navigateBack":
            return self._back(delta)
        if new_page is None:
            raise NavigationError(f"{action} needs a url")
        if action == "navigateTo":
            if new_page.route in tab_routes:
                raise NavigationError("navigateTo cannot open a tabBar page; use switchTab")
            if len(self.pages) >= MAX_DEPTH:
                raise NavigationError(f"the page stack is full ({MAX_DEPTH} pages); use redirectTo")
            self.pages.append(new_page)
            return Step(mode="push", opened=new_page)
        if action == "redirectTo":
            if new_page.route in tab_routes:
                raise NavigationError("redirectTo cannot open a tabBar page; use switchTab")
            closed = (self.pages.pop().page_id,) if self.pages else ()
            self.pages.append(new_page)
            return Step(mode="replace", opened=new_page, closed=closed)
        if action == "switchTab":
            if new_page.route not in tab_routes:
                raise NavigationError(f"switchTab needs a tabBar page; {new_page.route!r} is not one")
            if new_page.query:
                raise NavigationError("switchTab does not take query parameters")
            return self.launch(new_page)
        if action == "reLaunch":
            return self.launch(new_page)
        raise NavigationError(f"unknown navigation {action!r}")

    def _back(self, delta: int) -> Step:
        if len(self.pages) <= 1:
            raise NavigationError("navigateBack: already on the first page")
        count = max(1, min(int(delta), len(self.pages) - 1))
        closed = tuple(p.page_id for p in reversed(self.pages[-count:]))
        del self.pages[-count:]
        top = self.pages[-1]
        return Step(closed=closed, shown=top.page_id)
