"""Closes pywebview's GTK JS bridge to everything but the shell's own top-level page.

WebKitGTK exposes ``window.webkit.messageHandlers.jsBridge`` in every frame, sandboxed iframes
included, and does not say which frame posted. So every bridge message must carry a per-run secret
that only the top page knows (it is written into the top page and never sent into a frame), and
must name one of the shell's own API methods. Anything else is dropped and counted before pywebview
sees it, including pywebview's built-in calls (window moves, DOM events), which the shell does not use.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable, Collection
from typing import Any

log = logging.getLogger("vehicle_host.shell.guard")

MAX_BRIDGE_MESSAGE_CHARS = 1024 * 1024


class BridgeGuard:
    def __init__(self, allowed: Collection[str]) -> None:
        self.token = secrets.token_urlsafe(32)
        self.allowed = frozenset(allowed)
        self.rejected = 0
        self._lock = threading.Lock()

    def admits(self, raw: str) -> bool:
        """True if a raw bridge message carries the token and names an allowed method."""
        ok = False
        if len(raw) <= MAX_BRIDGE_MESSAGE_CHARS:
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):
                body = None
            if isinstance(body, dict) and body.get("funcName") in self.allowed:
                params = body.get("params")
                ok = (
                    isinstance(params, list)
                    and bool(params)
                    and isinstance(params[0], str)
                    and hmac.compare_digest(params[0].encode(), self.token.encode())
                )
        if not ok:
            with self._lock:
                self.rejected += 1
            log.warning("dropped a JS bridge message that did not come from the shell page")
        return ok

    def install(self) -> None:
        """Wrap pywebview's GTK bridge handler (pywebview 6.2, WebKit2 4.1)."""
        from webview.platforms import gtk

        original: Callable[..., Any] = gtk.BrowserView.on_js_bridge_call
        guard = self

        def guarded(view: Any, manager: Any, message: Any) -> None:
            try:
                raw = message.get_js_value().to_string()
            except Exception:  # a value that is not a string
                raw = ""
            if guard.admits(raw):
                original(view, manager, message)

        gtk.BrowserView.on_js_bridge_call = guarded  # type: ignore[method-assign]
