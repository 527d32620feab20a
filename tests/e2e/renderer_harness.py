"""A page renderer in the real shell window: a sandboxed frame like the page frames, driven from the test.

The frame is made exactly like the shell makes page frames (sandbox="allow-scripts", the same CSP with
the renderer's sha256), placed over the window at (0, 0) so real X clicks land in it.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.window import shell_process
from vehicle_host.bundles.wxml import compile_wxml
from vehicle_host.shell import page
from vehicle_host.shell.driver import ShellDriver
from vehicle_host.shell.xvfb import VirtualDisplay

Message = dict[str, Any]


def frame_document() -> str:
    script = page.renderer_source()
    csp = (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src '{page.csp_hash(script)}'"
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"</head><body><script>{script}</script></body></html>"
    )


class RendererFrame:
    def __init__(self, driver: ShellDriver) -> None:
        self.driver = driver
        self.seq = 0
        self.seen: list[Message] = []  # messages wait_message passed over, for events

    def load(self) -> None:
        doc = json.dumps(frame_document()).replace("</", "<\\/")
        self.driver.eval(
            "(function(){var old=window.__rt&&window.__rt.frame; if(old) old.remove();"
            "window.__rt={msgs:[]};"
            "if(!window.__rtListen){window.__rtListen=true;window.addEventListener('message',function(e){"
            "if(window.__rt.frame&&e.source===window.__rt.frame.contentWindow)window.__rt.msgs.push(e.data);});}"
            "var f=document.createElement('iframe');f.setAttribute('sandbox','allow-scripts');"
            "f.setAttribute('style','position:fixed;left:0;top:0;width:800px;height:480px;z-index:9999;"
            "border:0;background:#fff');"
            f"f.srcdoc={doc};document.body.appendChild(f);window.__rt.frame=f;"
            "f.addEventListener('load',function(){window.__rt.loaded=true;});return true;})()"
        )
        self.wait(
            lambda: bool(self.driver.eval("!!(window.__rt && window.__rt.loaded)")), "the frame to load"
        )
        self.seq = 0

    def post(self, message: Message) -> None:
        payload = json.dumps(message).replace("</", "<\\/")
        self.driver.eval(f"window.__rt.frame.contentWindow.postMessage({payload}, '*'); true")

    def take(self) -> list[Message]:
        """Messages the frame posted since the last call."""
        return list(self.driver.eval("window.__rt.msgs.splice(0)") or [])

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def wait_message(self, match: Callable[[Message], bool], what: str, timeout: float = 10.0) -> Message:
        """The first new message matching; the others are kept in ``self.seen`` for ``events``."""
        found: list[Message] = []

        def check() -> bool:
            for m in self.take():
                if not found and match(m):
                    found.append(m)
                else:
                    self.seen.append(m)
            return bool(found)

        self.wait(check, what, timeout)
        return found[0]

    def render(
        self,
        wxml: str,
        data: dict[str, Any] | None = None,
        *,
        using: dict[str, str] | None = None,
        **extra: Any,
    ) -> list[Message]:
        tree = compile_wxml(wxml, filename="test.wxml", components=using)
        return self.render_tree(tree, data or {}, **extra)

    def render_tree(self, tree: dict[str, Any], data: dict[str, Any], **extra: Any) -> list[Message]:
        self.events(0)
        self.post({"type": "render", "tree": tree, "data": data, "css": extra.pop("css", ""), **extra})
        return self._painted()

    def patch(self, diff: dict[str, Any], component: str = "") -> list[Message]:
        self.events(0)
        message: Message = {"type": "patch", "diff": diff}
        if component:
            message["component"] = component
        self.post(message)
        return self._painted()

    def _painted(self) -> list[Message]:
        self.seq += 1
        seq = self.seq
        painted = self.wait_message(lambda m: m.get("type") == "painted" and m.get("seq") == seq, "painted")
        assert "error" not in painted, painted
        return self.events(0)

    def inspect(self) -> Message:
        self.post({"type": "inspect", "id": 7})
        return self.wait_message(lambda m: m.get("type") == "inspect.result", "inspect.result")

    def node(self, node_id: str) -> Message:
        for n in self.inspect()["nodes"]:
            if n["id"] == node_id:
                return dict(n)
        raise AssertionError(f"no #{node_id} in the frame")

    def click(self, node_id: str) -> None:
        n = self.node(node_id)
        self.driver.click(n["x"] + n["w"] / 2, n["y"] + n["h"] / 2)

    def events(self, timeout: float = 0.6) -> list[Message]:
        """Messages not yet returned, after waiting ``timeout`` seconds for more."""
        time.sleep(timeout)
        out = [*self.seen, *self.take()]
        self.seen = []
        return [m for m in out if m.get("type") != "inspect.result"]


@contextmanager
def shell_window() -> Iterator[ShellDriver]:
    """The real shell under Xvfb with its control channel (no hub is needed for a frame of our own)."""
    root = Path(tempfile.mkdtemp(prefix="vh-rt-"))
    with VirtualDisplay(800, 480) as display, shell_process(root, root / "run", display.display) as driver:
        driver.wait_for(lambda s: "view" in s, what="the shell page")
        yield driver
