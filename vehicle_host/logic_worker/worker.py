"""The worker's message loop: one DEALER socket to the hub, nothing else.

It speaks only the wire contract: ``worker.start`` loads the bundle and opens the first page,
``page.event`` calls a page handler; what the JS emitted goes back as ``page.render``,
``page.setData``, ``log`` and ``script.error``.
"""

from __future__ import annotations

import ctypes
import json
import logging
import signal
from pathlib import Path
from typing import Any

import zmq

from vehicle_host.errors import BundleError, WireError
from vehicle_host.logic_worker.runtime import JsRealm, ScriptError
from vehicle_host.wire import API_LEVEL, Envelope, decode, encode
from vehicle_host.wire.schema import LOG_LEVELS

log = logging.getLogger("vehicle_host.worker")

#: setData refuses a change bigger than this (as WeChat does), with a console error naming the page.
MAX_SETDATA_BYTES = 256 * 1024
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when the hub that started it goes away."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the hub's SIGTERM handling still covers us
        pass


class Worker:
    def __init__(self, endpoint: str, app_id: str) -> None:
        self.app_id = app_id
        self.address = f"app:{app_id}"
        self._sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 1000)
        self._sock.connect(endpoint)
        self._realm: JsRealm | None = None
        self._routes: dict[int, str] = {}
        self._next_id = 1

    def send(self, type_: str, target: str, payload: dict[str, Any]) -> None:
        self._next_id += 1
        self._sock.send(encode(Envelope(type_, self._next_id, self.address, target, payload)))

    def serve(self) -> None:
        self.send("hello", "hub", {"role": "worker", "api_level": API_LEVEL, "app_id": self.app_id})
        while True:
            data = self._sock.recv()
            try:
                message = decode(data)
            except WireError as exc:
                log.warning("dropped a malformed message from the hub: %s", exc)
                continue
            self.handle(message)

    def handle(self, message: Envelope) -> None:
        payload = message.payload
        try:
            if message.type == "worker.start":
                self._start(
                    Path(payload["bundle_dir"]), payload["route"], payload["page_id"], payload["query"]
                )
            elif message.type == "page.event":
                realm = self._require_realm()
                realm.dispatch_event(payload["page_id"], payload["handler"], payload["event"])
            else:
                log.warning("ignored a %s message", message.type)
        except ScriptError as exc:
            self.report(exc)
        except BundleError as exc:
            self.report(ScriptError(str(exc), file="", line=0, column=0, stack=""))
        self.flush()

    def report(self, exc: ScriptError) -> None:
        self.send(
            "script.error",
            "hub",
            {
                "message": exc.message[:8000],
                "file": exc.file[:200],
                "line": exc.line,
                "column": exc.column,
                "stack": exc.stack[:8000],
            },
        )

    def _require_realm(self) -> JsRealm:
        if self._realm is None:
            raise BundleError("the app has not been started")
        return self._realm

    def _start(self, bundle_dir: Path, route: str, page_id: int, query: dict[str, Any]) -> None:
        realm = self._realm = JsRealm()
        realm.load_module(bundle_dir, "app.js")
        realm.load_module(bundle_dir, f"{route}.js", route=route)
        realm.launch_app({"path": route, "query": query})
        self._routes[page_id] = route
        realm.open_page(route, page_id, query)

    def flush(self) -> None:
        """Run pending jobs and send what the JS emitted, merging setData calls per page."""
        realm = self._realm
        if realm is None:
            return
        try:
            realm.run_jobs()
        except ScriptError as exc:
            self.report(exc)
        merged: dict[int, dict[str, Any]] = {}
        try:
            items = realm.drain()
        except ScriptError as exc:
            self.report(exc)
            return
        for item in items:
            try:
                self._emit(realm, item, merged)
            except (WireError, KeyError, TypeError, ValueError, AttributeError) as exc:
                # whatever the app's data looks like, it costs the app an error, never the worker
                self.report(
                    ScriptError(
                        f"the app produced data the host cannot send: {exc}"[:2000],
                        file="",
                        line=0,
                        column=0,
                        stack="",
                    )
                )
        for page_id, diff in merged.items():
            try:
                self._send_diff(page_id, diff)
            except (WireError, TypeError, ValueError) as exc:
                self.report(
                    ScriptError(
                        f"setData could not be sent: {exc}"[:2000], file="", line=0, column=0, stack=""
                    )
                )

    def _emit(self, realm: JsRealm, item: dict[str, Any], merged: dict[int, dict[str, Any]]) -> None:
        kind = item.get("t")
        if kind == "log":
            level = item["level"] if item.get("level") in LOG_LEVELS else "info"
            self.send("log", "hub", {"level": level, "message": str(item["message"])[:8000]})
        elif kind == "error":
            self.report(realm.script_error(f"{item['message']}\n{item['stack']}"))
        elif kind == "render":
            self.send("page.render", "shell", {"page_id": int(item["pageId"]), "data": item["data"]})
        elif kind == "setData":
            diff = merged.setdefault(int(item["pageId"]), {})
            for key, value in item["diff"].items():
                diff.pop(key, None)  # a later write to the same key moves it to the end
                diff[key] = value

    def _send_diff(self, page_id: int, diff: dict[str, Any]) -> None:
        size = len(json.dumps(diff))
        if size > MAX_SETDATA_BYTES:
            route = self._routes.get(page_id, str(page_id))
            message = (
                f"setData on page {route} refused: {size} bytes exceeds the "
                f"{MAX_SETDATA_BYTES // 1024} KB limit; send only what changed"
            )
            self.send("log", "hub", {"level": "error", "message": message})
            return
        self.send("page.setData", "shell", {"page_id": page_id, "diff": diff})


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="vehicle-host-worker")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--app-id", required=True)
    args = parser.parse_args(argv)
    die_with_parent()
    logging.basicConfig(level=logging.INFO, format="worker %(levelname)s %(message)s")
    Worker(args.endpoint, args.app_id).serve()
    return 0
