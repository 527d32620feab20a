"""Drives a running shell from outside: its control channel, real X input, real screenshots.

Used by ``vehicle-host run``'s tour and by the end-to-end tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import zmq

from vehicle_host.errors import DeviceError, HostTimeoutError

Snapshot = dict[str, Any]


class ShellDriver:
    def __init__(self, endpoint: str, display: str, *, timeout: float = 10.0) -> None:
        self.display = display
        self._timeout_ms = int(timeout * 1000)
        self._endpoint = endpoint
        self._sock = self._connect()

    def _connect(self) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, self._timeout_ms)
        sock.connect(self._endpoint)
        return sock

    def call(self, request: dict[str, Any]) -> Any:
        self._sock.send(cbor2.dumps(request))
        try:
            reply = cbor2.loads(self._sock.recv())
        except zmq.Again:
            self._sock.close(0)
            self._sock = self._connect()  # a REQ socket is stuck after a lost reply
            raise HostTimeoutError("the shell did not answer on its control channel") from None
        if not reply.get("ok"):
            raise DeviceError(f"shell control: {reply.get('error')}")
        return reply.get("value")

    def eval(self, js: str) -> Any:
        return self.call({"op": "eval", "js": js})

    def stats(self) -> dict[str, Any]:
        return dict(self.call({"op": "stats"}))

    def snapshot(self) -> Snapshot:
        return dict(self.eval("vh.snapshot()"))

    def wait_for(
        self, predicate: Callable[[Snapshot], bool], *, timeout: float = 20.0, what: str = "the shell"
    ) -> Snapshot:
        deadline = time.monotonic() + timeout
        last: Snapshot = {}
        while time.monotonic() < deadline:
            try:
                last = self.snapshot()
                if predicate(last):
                    return last
            except (HostTimeoutError, DeviceError):
                pass
            time.sleep(0.1)
        raise HostTimeoutError(f"timed out waiting for {what}; last state: {last}")

    def inspect(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """Text and bound elements of the open page, as the renderer in the iframe sees them."""
        self.eval("vh.inspect()")
        return dict(
            self.wait_for(
                lambda s: s.get("inspect") is not None, timeout=timeout, what="the page to answer inspect"
            )["inspect"]
        )

    def click(self, x: float, y: float) -> None:
        """A real pointer click on the X display (the window sits at 0,0)."""
        if shutil.which("xdotool") is None:
            raise DeviceError("xdotool is needed for real input: install the 'xdotool' package")
        subprocess.run(
            ["xdotool", "mousemove", str(round(x)), str(round(y)), "click", "1"],
            env={**os.environ, "DISPLAY": self.display},
            check=True,
            timeout=10,
        )

    def tap_page_node(self, node_id: str) -> None:
        """Click the centre of an element inside the page's iframe, found by its id."""
        snap = self.snapshot()
        frame = snap.get("frame")
        nodes = self.inspect()["nodes"]
        node = next((n for n in nodes if n.get("id") == node_id), None)
        if frame is None or node is None:
            raise DeviceError(f"no element #{node_id} on the open page")
        self.click(frame["x"] + node["x"] + node["w"] / 2, frame["y"] + node["y"] + node["h"] / 2)

    def tap_selector(self, selector: str) -> None:
        """Click the centre of an element of the shell's own page (launcher tile, back button)."""
        rect = self.eval(
            "(function(){var r=document.querySelector(" + json.dumps(selector) + ");"
            "if(!r)return null;r=r.getBoundingClientRect();"
            "return {x:r.left,y:r.top,w:r.width,h:r.height};})()"
        )
        if not rect:
            raise DeviceError(f"nothing matches {selector}")
        self.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)

    def button_rect(self, scope: str, text: str) -> dict[str, float] | None:
        """Where the visible button under ``scope`` whose own label is ``text`` is (None if none)."""
        found = self.eval(
            "(function(){var all=document.querySelectorAll(" + json.dumps(scope + " button") + ");"
            "for(var i=0;i<all.length;i++){var b=all[i];"
            "var t=(b.firstChild&&b.firstChild.nodeType===3?b.firstChild.nodeValue:b.textContent).trim();"
            "var r=b.getBoundingClientRect();"
            "if(t===" + json.dumps(text) + "&&r.width>0&&r.height>0)"
            "return {x:r.left,y:r.top,w:r.width,h:r.height};}"
            "return null;})()"
        )
        return dict(found) if found else None

    def tap_button(self, scope: str, text: str, *, timeout: float = 10.0) -> None:
        """Click the centre of the button labelled ``text`` under ``scope``, once it is on screen."""
        deadline = time.monotonic() + timeout
        while (rect := self.button_rect(scope, text)) is None:
            if time.monotonic() > deadline:
                raise HostTimeoutError(f"no button {text!r} under {scope} within {timeout:g} s")
            time.sleep(0.1)
        self.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)

    def wait_for_dialog(self, kind: str | None = None, *, timeout: float = 10.0) -> dict[str, Any]:
        """The dialog on screen (``{kind, title, buttons, app_id, request_id}``), once there is one."""
        snap = self.wait_for(
            lambda s: s.get("dialog") is not None and (kind is None or s["dialog"]["kind"] == kind),
            timeout=timeout,
            what=f"a {kind or 'dialog'} on screen",
        )
        return dict(snap["dialog"])

    def tap_dialog_button(self, text: str, *, timeout: float = 10.0) -> None:
        """Tap a button of the shell's modal, action sheet or consent dialog by its label."""
        self.wait_for(
            lambda s: s.get("dialog") is not None and text in s["dialog"]["buttons"],
            timeout=timeout,
            what=f"a dialog with a {text!r} button",
        )
        self.tap_button("#dialog-layer", text, timeout=timeout)

    def tap_tab(self, text: str, *, timeout: float = 10.0) -> None:
        """Tap the tab bar item labelled ``text``."""
        self.tap_button("#tabbar", text, timeout=timeout)

    def tap_back(self) -> None:
        """Tap the navigation bar's back button (one page deep: home)."""
        self.tap_selector("#back")

    def screenshot(self, path: Path, *, timeout: float = 10.0) -> Path:
        """Save the display as PNG once it is painted and settled.

        GTK paints late: a capture right after a DOM change can be blank or show the previous frame,
        so this captures until the picture is not uniform and two captures in a row are the same.
        """
        if shutil.which("import") is None:
            raise DeviceError("ImageMagick's 'import' is needed for screenshots: install 'imagemagick'")
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        previous = b""
        while True:
            subprocess.run(
                ["import", "-display", self.display, "-window", "root", str(path)],
                check=True,
                timeout=30,
                capture_output=True,
            )
            pixels = _pixels(path)
            if (not is_uniform(path) and pixels == previous) or time.monotonic() > deadline:
                return path
            previous = pixels
            time.sleep(0.15)

    def close(self) -> None:
        self._sock.close(0)


def _pixels(path: Path) -> bytes:
    import gi

    gi.require_version("GdkPixbuf", "2.0")
    from gi.repository import GdkPixbuf

    return bytes(GdkPixbuf.Pixbuf.new_from_file(str(path)).get_pixels())


def is_uniform(path: Path) -> bool:
    """True if every sampled pixel of the PNG has the same colour (a blank screen)."""
    import gi

    gi.require_version("GdkPixbuf", "2.0")
    from gi.repository import GdkPixbuf

    pixbuf = GdkPixbuf.Pixbuf.new_from_file(str(path))
    data = pixbuf.get_pixels()
    step = pixbuf.get_n_channels()
    first = data[:step]
    stride = max(step, (len(data) // 5000) // step * step)
    return all(data[i : i + step] == first for i in range(0, len(data) - step, stride))
