"""The registry's HTTP server (``http.server.ThreadingHTTPServer``): JSON API, ``/repo/``, ``/console/``.

- Partners (``Authorization: Bearer <partner token>``): ``GET /api/partners/<id>/role`` (the published
  role file to sign the next bundle into), ``POST /api/submissions`` ``{"bundle": base64, "role": text}``,
  ``GET /api/submissions`` and ``/api/submissions/<id>`` (their own).
- Reviewers and release managers (``Authorization: Bearer <admin token>``): ``GET|POST /api/partners``,
  ``GET /api/submissions?status=``, ``POST /api/submissions/<id>/approve|reject``, ``GET /api/apps``,
  ``GET /api/apps/<id>``, ``POST /api/apps/<id>/release|rollout|widen|rollback|experiment``,
  ``GET /api/audit?app_id=&limit=``, ``GET /api/releases`` (the current release document).
- Head units: ``POST /api/health`` ``{"vehicle_id", "reports": [{"app_id", "version", "launches",
  "crashes", "errors"}]}``; ``GET /repo/...`` (TUF metadata and targets; ``Range`` for resumable
  downloads); ``GET /api/trust-root`` (the root metadata to provision head units with).
- ``GET /console/``: the web console (the admin token is typed into the page, kept in memory).

Errors are ``{"error": {"code", "message"}}``; bodies are limited (64 KiB, uploads 4 MiB).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading
import urllib.parse
from importlib import resources
from pathlib import Path

from vehicle_host.errors import VehicleHostError
from vehicle_host.httpjson import JSONHandler, JSONServer, RequestError
from vehicle_host.registry.db import Partner
from vehicle_host.registry.errors import RegistryError
from vehicle_host.registry.service import Registry

DEFAULT_PORT = 18480
MAX_BODY_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
CHUNK = 64 * 1024
CONSOLE_FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
CONSOLE_CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}$")
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
OPS = ("release", "rollout", "widen", "rollback", "experiment")


class RegistryServer(JSONServer):
    """The server with its registry; ``url`` is where it listens."""

    def __init__(self, address: tuple[str, int], registry: Registry) -> None:
        super().__init__(address, RegistryHandler)
        self.registry = registry
        self.stopped = threading.Event()

    def server_close(self) -> None:
        self.stopped.set()
        super().server_close()
        self.registry.close()


def _bearer(header: str | None) -> str:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return ""


class RegistryHandler(JSONHandler):
    server: RegistryServer
    server_version = "vehicle-host-registry/1.0"
    failure_message = "the registry failed; try again later (the server log has details)"

    def do_GET(self) -> None:
        self.dispatch(self._get)

    def do_HEAD(self) -> None:
        self.dispatch(self._get)

    def do_POST(self) -> None:
        self.dispatch(self._post)

    def unexpected(self, exc: Exception) -> RequestError:
        if isinstance(exc, VehicleHostError):  # a trust or bundle failure not mapped by the service
            return RequestError(409, "refused", str(exc)[:500])
        return super().unexpected(exc)

    # authentication
    def _admin(self) -> str:
        token = _bearer(self.headers.get("Authorization"))
        if not token or not self.server.registry.is_admin(token):
            raise RegistryError(
                401, "unauthorized", "send 'Authorization: Bearer <admin token>' (the registry's admin.token)"
            )
        return "admin"

    def _partner(self) -> Partner | None:
        """The partner the bearer token belongs to; None for the admin token; 401 otherwise."""
        token = _bearer(self.headers.get("Authorization"))
        if token and self.server.registry.is_admin(token):
            return None
        partner = self.server.registry.partner_for_token(token) if token else None
        if partner is None:
            raise RegistryError(401, "unauthorized", "send 'Authorization: Bearer <partner token>'")
        return partner

    def _own(self, partner_id: str) -> None:
        partner = self._partner()
        if partner is not None and partner.id != partner_id:
            raise RegistryError(
                403, "forbidden", f"this token belongs to partner {partner.id}, not {partner_id}"
            )

    # routes
    def _get(self, seg: list[str], query: dict[str, list[str]]) -> None:
        reg = self.server.registry
        if seg[0] == "repo":
            self._static(reg.layout.repo, seg[1:])
        elif seg in ([""], ["console"]) and not urllib.parse.urlsplit(self.path).path.endswith("console/"):
            self.send_response(302)
            self.send_header("Location", "/console/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif seg[0] == "console":
            self._console(seg[1:])
        elif seg == ["api", "trust-root"]:
            self.send_bytes(200, reg.trust_root(), "application/json")
        elif seg == ["api", "partners"]:
            self._admin()
            self.respond(200, {"partners": [p.public() for p in reg.partners()]})
        elif len(seg) == 4 and seg[:2] == ["api", "partners"] and seg[3] == "role":
            self._own(seg[2])
            role = reg.published_role(seg[2])
            if role is None:
                raise RegistryError(
                    404, "no_role", f"partner {seg[2]} has no published role yet; sign a new one"
                )
            self.send_bytes(200, role, "application/json")
        elif seg == ["api", "submissions"]:
            partner = self._partner()
            status = query.get("status", [None])[0]
            subs = reg.submissions(status, partner.id if partner else None)
            self.respond(200, {"submissions": [s.public() for s in subs]})
        elif len(seg) == 3 and seg[:2] == ["api", "submissions"]:
            partner = self._partner()
            sub = reg.submission(_int(seg[2]))
            if partner is not None and partner.id != sub.partner:
                raise RegistryError(404, "no_submission", f"there is no submission {sub.id} of yours")
            self.respond(200, sub.public())
        elif seg == ["api", "apps"]:
            self._admin()
            self.respond(200, {"apps": reg.apps()})
        elif len(seg) == 3 and seg[:2] == ["api", "apps"]:
            self._admin()
            self.respond(200, reg.app(seg[2]))
        elif seg == ["api", "releases"]:
            self._admin()
            self.respond(200, reg.releases_document())
        elif seg == ["api", "audit"]:
            self._admin()
            app_id = query.get("app_id", [None])[0]
            limit = _int(query.get("limit", ["200"])[0])
            self.respond(200, {"audit": reg.audit_log(app_id, limit)})
        else:
            raise RegistryError(404, "not_found", "no such endpoint; see vehicle_host/registry/http.py")

    def _post(self, seg: list[str], query: dict[str, list[str]]) -> None:
        reg = self.server.registry
        if seg == ["api", "health"]:
            body = self.read_json(MAX_BODY_BYTES)
            self.respond(200, reg.ingest_health(body.get("vehicle_id"), body.get("reports")))
        elif seg == ["api", "submissions"]:
            partner = self._partner()
            if partner is None:
                raise RegistryError(403, "forbidden", "submissions are uploaded with a partner token")
            body = self.read_json(MAX_UPLOAD_BYTES)
            bundle, role = body.get("bundle"), body.get("role")
            if not isinstance(bundle, str) or not isinstance(role, str):
                raise RegistryError(
                    400, "bad_submission", "send {'bundle': base64 .vhb, 'role': role file text}"
                )
            self.respond(201, reg.submit(partner, bundle, role).public())
        elif seg == ["api", "partners"]:
            actor = self._admin()
            body = self.read_json(MAX_BODY_BYTES)
            partner, token = reg.add_partner(
                actor,
                body.get("id"),
                body.get("namespace"),
                body.get("public_key"),
                body.get("permissions", []),
                body.get("domains", []),
            )
            self.respond(201, {**partner.public(), "token": token})
        elif len(seg) == 4 and seg[:2] == ["api", "submissions"] and seg[3] in ("approve", "reject"):
            actor = self._admin()
            body = self.read_json(MAX_BODY_BYTES)
            sid = _int(seg[2])
            if seg[3] == "approve":
                note = body.get("note", "")
                sub = reg.approve(sid, actor, note if isinstance(note, str) else "")
            else:
                sub = reg.reject(sid, actor, body.get("reason"))
            self.respond(200, sub.public())
        elif len(seg) == 4 and seg[:2] == ["api", "apps"] and seg[3] in OPS:
            actor = self._admin()
            self.respond(200, reg.release_op(seg[2], seg[3], actor, self.read_json(MAX_BODY_BYTES)))
        else:
            raise RegistryError(404, "not_found", "no such endpoint; see vehicle_host/registry/http.py")

    # files
    def _console(self, seg: list[str]) -> None:
        name = seg[0] if seg and seg[0] else "index.html"
        if len(seg) > 1 or name not in CONSOLE_FILES:
            raise RegistryError(404, "not_found", "no such console file")
        data = resources.files("vehicle_host.registry").joinpath("console", name).read_bytes()
        headers = {"Content-Security-Policy": CONSOLE_CSP, "Cache-Control": "no-cache"}
        self.send_bytes(200, data, CONSOLE_FILES[name], {**headers, "X-Content-Type-Options": "nosniff"})

    def _static(self, root: Path, seg: list[str]) -> None:
        """A file of the TUF repository, whole or one byte range (for resumable downloads)."""
        if not seg or len(seg) > 8 or not all(SEGMENT.match(s) for s in seg):
            raise RegistryError(404, "not_found", "no such repository file")
        path = root.joinpath(*seg)
        try:
            real = path.resolve(strict=True)
            if not real.is_relative_to(root.resolve()):
                raise FileNotFoundError(path)
            f = real.open("rb")
        except OSError:
            raise RegistryError(404, "not_found", f"no repository file /repo/{'/'.join(seg)}") from None
        with f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise RegistryError(404, "not_found", "no such repository file")
            size = st.st_size
            start, end = 0, size - 1
            status = 200
            header = self.headers.get("Range")
            if header:
                m = RANGE.match(header.strip())
                if m is None or (not m.group(1) and not m.group(2)):
                    self._range_error(size)
                    return
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:
                    start = max(0, size - int(m.group(2)))
                if start >= size or start > end:
                    self._range_error(size)
                    return
                status = 206
            length = end - start + 1 if size else 0
            self.send_response(status)
            kind = "application/json" if real.suffix == ".json" else "application/octet-stream"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Cache-Control", "no-cache")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            f.seek(start)
            remaining = length
            while remaining > 0:
                chunk = f.read(min(CHUNK, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)

    def _range_error(self, size: int) -> None:
        self.respond(
            416,
            {
                "error": {
                    "code": "bad_range",
                    "message": f"the range is not satisfiable; the file has {size} bytes",
                }
            },
            {"Content-Range": f"bytes */{size}"},
        )


def _int(text: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise RegistryError(400, "bad_id", f"{text[:20]!r} is not a number")
    return int(text)


def serve(
    registry: Registry,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    refresh_every: float | None = None,
) -> RegistryServer:
    """Start the registry on a daemon thread; ``server.shutdown(); server.server_close()`` stops it.

    With ``refresh_every`` (seconds) the timestamp is re-signed that often while the server runs."""
    server = RegistryServer((host, port), registry)
    threading.Thread(target=server.serve_forever, name="registry", daemon=True).start()
    if refresh_every:
        threading.Thread(
            target=refresh_loop, args=(server, refresh_every), name="registry-refresh", daemon=True
        ).start()
    return server


def refresh_loop(server: RegistryServer, every: float) -> None:
    while not server.stopped.wait(every):
        with contextlib.suppress(VehicleHostError):  # the next round retries
            server.registry.refresh()
