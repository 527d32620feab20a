"""A blocking HTTP/JSON client for the one configured dealer service (standard library only).

Every request goes to the origin of ``service_url``; paths are built here, never taken from a
mini-app, and redirects are not followed, so no other host is ever contacted. Failures are split
by what they mean for a retry: :class:`DealerUnreachable` (no connection: nothing was sent),
:class:`DealerNoAnswer` (sent, but no usable answer: the dealer may have acted on it) and
:class:`DealerRejected` (a 4xx answer: retrying the same request will not help).
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vehicle_host import __version__
from vehicle_host.plugins.contract import PluginError

MAX_RESPONSE_BYTES = 512 * 1024


class DealerUnreachable(PluginError):
    code = "unavailable"


class DealerNoAnswer(PluginError):
    code = "unavailable"


class DealerRejected(PluginError):
    code = "failed"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DealerClient:
    def __init__(self, service_url: str, timeout_s: float) -> None:
        parts = urllib.parse.urlsplit(service_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PluginError(
                f"service_url must be an http(s) URL, not {service_url[:100]!r}; fix the config"
            )
        self.scheme = parts.scheme
        self.host = parts.hostname
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise PluginError("service_url has an invalid port; fix the config") from None
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s

    def get(self, path: Sequence[str], params: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        return self._exchange("GET", path, params, None, {})[1]

    def post(
        self,
        path: Sequence[str],
        body: Mapping[str, Any],
        key: str,
        on_connected: Callable[[], None] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """POST JSON with an ``Idempotency-Key``; ``on_connected`` runs just before the request is sent."""
        raw = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        return self._exchange("POST", path, (), raw, headers, on_connected)

    def _exchange(
        self,
        verb: str,
        path: Sequence[str],
        params: Sequence[tuple[str, str]],
        raw: bytes | None,
        headers: dict[str, str],
        on_connected: Callable[[], None] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        target = self.prefix + "/" + "/".join(urllib.parse.quote(p, safe="") for p in path)
        if params:
            target += "?" + urllib.parse.urlencode(list(params))
        conn: http.client.HTTPConnection
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            try:
                conn.connect()
            except OSError as exc:
                raise DealerUnreachable(
                    f"the dealer service is unreachable ({exc.strerror or exc})"
                ) from None
            if on_connected is not None:
                on_connected()
            try:
                conn.request(
                    verb,
                    target,
                    body=raw,
                    headers={
                        "User-Agent": f"vehicle-host/{__version__}",
                        "Accept": "application/json",
                        **headers,
                    },
                )
                response = conn.getresponse()
                data = response.read(MAX_RESPONSE_BYTES + 1)
            except (OSError, http.client.HTTPException) as exc:
                raise DealerNoAnswer(
                    f"the dealer service did not answer ({exc or type(exc).__name__})"
                ) from None
        finally:
            conn.close()
        if len(data) > MAX_RESPONSE_BYTES:
            raise DealerNoAnswer(f"the dealer's answer is larger than {MAX_RESPONSE_BYTES // 1024} KB")
        try:
            body = json.loads(data)
        except (ValueError, RecursionError):
            body = None
        if 400 <= response.status < 500:
            message = body.get("error", {}).get("message") if isinstance(body, dict) else None
            raise DealerRejected(
                response.status, f"the dealer refused: {str(message or response.reason)[:300]}"
            )
        if response.status >= 300 or not isinstance(body, dict):
            raise DealerNoAnswer(f"the dealer service failed (HTTP {response.status}); it will be retried")
        return response.status, body
