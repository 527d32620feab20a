"""The window the shell page runs in, behind a small interface.

``ShellBackend`` is what the shell needs from a window toolkit: show the page with a JS API object,
run scripts in it (fire and forget, or evaluate and return the value), close it. ``WebviewBackend``
is the pywebview GTK/WebKit window of the head unit; everything pywebview-specific lives here.
A headless stand-in that speaks the shell's hub protocol is ``vehicle_host.shell.fake.FakeShell``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from vehicle_host.errors import VehicleHostError
from vehicle_host.shell.bridge_guard import BridgeGuard

BACKGROUND = "#0c1117"


class ShellBackend(Protocol):
    def start(self, html: str, api: object, on_ready: Callable[[], None]) -> None:
        """Show ``html`` with ``api`` callable from its JS; call ``on_ready`` (on another thread) once
        the page has loaded; return when the window is closed."""

    def run_js(self, code: str) -> None:
        """Run ``code`` in the page without waiting for a value (any thread)."""

    def evaluate(self, code: str) -> Any:
        """Run ``code`` in the page and return its value (blocks; never on the GUI thread)."""

    def close(self) -> None:
        """Close the window; ``start`` returns."""


class WebviewBackend:
    """pywebview with its GTK backend (WebKitGTK), the bridge closed to all but the top page."""

    def __init__(self, guard: BridgeGuard, *, width: int, height: int, fullscreen: bool = False) -> None:
        self._guard = guard
        self._size = (width, height)
        self._fullscreen = fullscreen
        self._window: Any = None
        self._ready = threading.Event()

    def start(self, html: str, api: object, on_ready: Callable[[], None]) -> None:
        import webview

        self._guard.install()
        width, height = self._size
        window = webview.create_window(
            "vehicle-host",
            html=html,
            js_api=api,
            width=width,
            height=height,
            x=0,
            y=0,
            fullscreen=self._fullscreen,
            background_color=BACKGROUND,
        )
        if window is None:
            raise VehicleHostError("pywebview could not create the shell window")
        self._window = window

        def started() -> None:
            window.events.loaded.wait()
            self._ready.set()
            on_ready()

        webview.start(started, gui="gtk", private_mode=True)

    def run_js(self, code: str) -> None:
        if self._window is not None and self._ready.is_set():
            self._window.run_js(code)

    def evaluate(self, code: str) -> Any:
        if self._window is None:
            raise VehicleHostError("the shell window is not open yet")
        return self._window.evaluate_js(code)

    def close(self) -> None:
        if self._window is not None:
            self._window.destroy()
