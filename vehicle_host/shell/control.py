"""A local control channel into a running shell, for the tour and the end-to-end tests.

Off unless ``VEHICLE_HOST_SHELL_CONTROL`` names an ipc:// endpoint (inside the runtime directory,
which only the host's user can open). Requests and replies are CBOR maps:
``{"op": "eval", "js": "..."}`` -> ``{"ok": true, "value": ...}``; ``{"op": "stats"}``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import cbor2
import zmq

log = logging.getLogger("vehicle_host.shell.control")

ENV = "VEHICLE_HOST_SHELL_CONTROL"
MAX_REQUEST_BYTES = 256 * 1024


class ControlServer:
    def __init__(
        self, endpoint: str, evaluate: Callable[[str], Any], stats: Callable[[], dict[str, Any]]
    ) -> None:
        self.endpoint = endpoint
        self._evaluate = evaluate
        self._stats = stats
        self._thread = threading.Thread(target=self._serve, name="shell-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REP)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        sock.bind(self.endpoint)
        log.info("control channel open", extra={"endpoint": self.endpoint})
        while True:
            data = sock.recv()
            try:
                reply = self._handle(cbor2.loads(data))
            except Exception as exc:  # a bad request gets an error reply, never kills the shell
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            sock.send(cbor2.dumps(reply))

    def _handle(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise ValueError("request must be a map")
        op = request.get("op")
        if op == "eval" and isinstance(request.get("js"), str):
            return {"ok": True, "value": self._evaluate(request["js"])}
        if op == "stats":
            return {"ok": True, "value": self._stats()}
        raise ValueError(f"unknown op {op!r}")
