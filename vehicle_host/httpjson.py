"""JSON over HTTP on the standard library's ``ThreadingHTTPServer``, shared by the registry and the
reference dealer service: JSON answers and ``{"error": {"code", "message"}}`` errors, bounded
request targets, query strings, bodies and idle reads, and the serve loop of their commands.

A route is ``route(segments, query)``; it answers with :meth:`JSONHandler.respond` or raises
:class:`RequestError`. A POST body the route did not read closes the connection after the answer
(its bytes must not be taken for the next request).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from vehicle_host.errors import VehicleHostError

MAX_TARGET_CHARS = 2048
READ_TIMEOUT_S = 60.0  # a client silent this long mid-request is dropped
MAX_CONNECTIONS = 64  # open connections served at once; more are answered 503 and closed
_BUSY_BODY = b'{"error": {"code": "busy", "message": "the service has too many connections; try again soon"}}'
BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)
Route = Callable[[list[str], dict[str, list[str]]], None]
log = logging.getLogger(__name__)


class RequestError(VehicleHostError):
    """A refused request: ``status`` is the HTTP status, ``code`` a stable word, the message says what
    to do."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class JSONServer(ThreadingHTTPServer):
    """A threading server whose ``url`` says where it listens. At most ``max_connections`` connections
    get a thread each; one more is answered 503 at once and closed, so a flood of idle connections
    cannot exhaust threads or memory."""

    daemon_threads = True
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(BUSY_ANSWER)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away or fell silent: nothing to report
        super().handle_error(request, client_address)


class JSONHandler(BaseHTTPRequestHandler):
    """Answers JSON; subclasses route ``do_GET``/``do_POST`` through :meth:`dispatch`."""

    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_S
    max_query_fields = 8
    failure_message = "the service failed; try again later"
    _unread_body = False

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def end_headers(self) -> None:
        if self._unread_body:
            self.send_header("Connection", "close")  # also sets close_connection
        super().end_headers()

    def respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        extra = {"Cache-Control": "no-store", **(headers or {})}
        self.send_bytes(status, raw, "application/json; charset=utf-8", extra)

    def dispatch(self, route: Route) -> None:
        """Parse the target, run ``route``, turn every failure into a JSON error."""
        self._unread_body = (
            self.command == "POST" or "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
        )
        try:
            if len(self.path) > MAX_TARGET_CHARS:
                raise RequestError(414, "too_long", f"the URL is longer than {MAX_TARGET_CHARS} characters")
            parts = urllib.parse.urlsplit(self.path)
            try:
                query = urllib.parse.parse_qs(
                    parts.query, keep_blank_values=True, max_num_fields=self.max_query_fields
                )
            except ValueError as exc:  # too many fields
                raise RequestError(400, "bad_request", str(exc)[:200]) from None
            route([urllib.parse.unquote(s) for s in parts.path.strip("/").split("/")], query)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:
            error = exc if isinstance(exc, RequestError) else self.unexpected(exc)
            self.respond(error.status, {"error": {"code": error.code, "message": str(error)}})

    def unexpected(self, exc: Exception) -> RequestError:
        """The answer to an exception no route mapped (logged; the client learns no details)."""
        log.error("%s %s failed", self.command, self.path[:200], exc_info=exc)
        return RequestError(500, "internal", self.failure_message)

    def read_json(self, limit: int) -> dict[str, Any]:
        """The request body as a JSON object (an empty body is ``{}``); 411, 413 or 400 otherwise."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RequestError(411, "length_required", "send a Content-Length header")
        if int(length) > limit:
            raise RequestError(413, "too_large", f"the body is larger than {limit} bytes")
        raw = self.rfile.read(int(length)) if int(length) else b"{}"
        self._unread_body = False
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise RequestError(400, "bad_json", "the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise RequestError(400, "bad_json", "the body must be a JSON object")
        return body


def run_until_stopped(server: JSONServer) -> None:
    """Print the server's URL, serve on this (main) thread until SIGTERM or Ctrl-C, then close it."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
