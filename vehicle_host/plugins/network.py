"""The ``network`` plugin: ``fc.request`` for mini-apps, only to hosts the app's manifest allows.

The allow-list is the app manifest's ``vehicle.network`` list. The plugin cannot read manifests, so
the hub adds it to every call's arguments as ``_allow`` after the gateway's checks (apps cannot send
``_``-arguments themselves). Default deny: a host that is not on the list, or an empty list, is
refused before any connection is made; so is a redirect to such a host.

List entries are host names or origins, matched exactly (no wildcards): ``api.example.com`` (its
default port), ``api.example.com:8443``, ``https://api.example.com``. ``https`` is always allowed;
plain ``http`` only to loopback hosts unless the plugin's config sets ``allow_http: true``.

Requests use the standard library (``http.client``, no proxies), run in a thread, with a deadline
(``timeout`` in ms as WeChat: default 10 s, at most 60 s) and a response size limit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import ipaddress
import json
import ssl
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vehicle_host import __version__
from vehicle_host.plugins.contract import (
    CallContext,
    Plugin,
    PluginContext,
    PluginError,
    PluginTimeout,
    method,
)

METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 60_000
#: The response travels in one wire message (1 MiB, base64 adds a third): keep it at 512 KiB.
MAX_RESPONSE_BYTES = 512 * 1024
MAX_URL_CHARS = 2048
MAX_HEADERS = 32
MAX_REDIRECTS = 5
MAX_ALLOW_ENTRIES = 64
REDIRECTS = (301, 302, 303, 307, 308)
FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)
DEFAULT_PORTS = {"http": 80, "https": 443}
CHUNK = 64 * 1024


class NetworkDenied(PluginError):
    code = "denied"


@dataclass(frozen=True, slots=True)
class AllowEntry:
    host: str
    port: int | None  # None: the scheme's default port
    scheme: str | None  # None: http or https

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.host != host or (self.scheme is not None and self.scheme != scheme):
            return False
        return port == (self.port if self.port is not None else DEFAULT_PORTS[scheme])


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, what goes on the request line


def parse_allow_list(values: Any) -> list[AllowEntry]:
    """The ``_allow`` argument as entries; malformed entries are skipped (they can allow nothing)."""
    if not isinstance(values, list):
        return []
    entries: list[AllowEntry] = []
    for value in values[:MAX_ALLOW_ENTRIES]:
        if not isinstance(value, str) or not 0 < len(value) <= 300:
            continue
        text = value.strip()
        parts = urllib.parse.urlsplit(text if "://" in text else "//" + text)
        try:
            port = parts.port
        except ValueError:
            continue
        if parts.hostname and parts.scheme in ("", "http", "https"):
            entries.append(AllowEntry(_norm_host(parts.hostname), port, parts.scheme or None))
    return entries


def _norm_host(host: str) -> str:
    return host.lower().rstrip(".")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(
    url: str, allow: Sequence[AllowEntry], *, allow_http: bool = False, redirect: bool = False
) -> Target:
    """Parse ``url`` and check it against the allow-list; NetworkDenied/PluginError say why not."""
    if len(url) > MAX_URL_CHARS:
        raise PluginError(f"the URL is longer than {MAX_URL_CHARS} characters")
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise PluginError(f"only https URLs can be requested, not {scheme or 'a relative URL'!r}")
    if parts.username is not None or parts.password is not None:
        raise PluginError("credentials in the URL are not allowed; send them in a header")
    if not parts.hostname:
        raise PluginError(f"the URL {url[:100]!r} names no host")
    host = _norm_host(parts.hostname)
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise PluginError("the URL's port is not a number in 1..65535") from None
    what = "a redirect to" if redirect else "requests to"
    if not any(entry.matches(scheme, host, port) for entry in allow):
        where = host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
        hint = "this app allows no hosts" if not allow else "it is not on this app's allow-list"
        raise NetworkDenied(
            f"{what} {where} refused: {hint}. The publisher must add it to vehicle.network in app.json."
        )
    if scheme == "http" and not (allow_http or is_loopback(host)):
        raise NetworkDenied(f"{what} http://{host} refused: use https")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port, path)


def build_body(
    method_: str, data: Any, headers: dict[str, str], target: Target
) -> tuple[Target, bytes | None]:
    """WeChat rules: GET data objects become the query string; others are JSON, form or raw text."""
    if data is None:
        return target, None
    if method_ in ("GET", "HEAD"):
        if isinstance(data, Mapping):
            query = urllib.parse.urlencode({k: _text(v) for k, v in data.items()})
            sep = "&" if "?" in target.path else "?"
            return Target(target.scheme, target.host, target.port, target.path + sep + query), None
        return target, None
    if isinstance(data, bytes):
        return target, data
    if isinstance(data, str):
        return target, data.encode("utf-8")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if content_type is None:
        headers["Content-Type"] = content_type = "application/json"
    if "x-www-form-urlencoded" in content_type.lower() and isinstance(data, Mapping):
        return target, urllib.parse.urlencode({k: _text(v) for k, v in data.items()}).encode()
    return target, json.dumps(data, ensure_ascii=False).encode("utf-8")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def perform(
    method_: str,
    url: str,
    data: Any,
    headers: dict[str, str],
    allow: Sequence[AllowEntry],
    *,
    timeout_s: float,
    max_bytes: int = MAX_RESPONSE_BYTES,
    allow_http: bool = False,
) -> tuple[int, dict[str, str], bytes, str]:
    """Run one request synchronously: (status, headers, body, charset). Follows allowed redirects."""
    deadline = time.monotonic() + timeout_s
    target = check_url(url, allow, allow_http=allow_http)
    target, body = build_body(method_, data, headers, target)
    for _ in range(MAX_REDIRECTS + 1):
        status, response_headers, raw, charset = _exchange(
            method_, target, body, headers, deadline, max_bytes
        )
        location = response_headers.get("location") if status in REDIRECTS else None
        if location is None:
            return status, response_headers, raw, charset
        current = f"{target.scheme}://{target.host}:{target.port}{target.path}"
        target = check_url(
            urllib.parse.urljoin(current, location), allow, allow_http=allow_http, redirect=True
        )
        if status == 303 or (status in (301, 302) and method_ == "POST"):
            method_, body = "GET", None
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    raise PluginError(f"more than {MAX_REDIRECTS} redirects; check the URL")


def _exchange(
    method_: str,
    target: Target,
    body: bytes | None,
    headers: Mapping[str, str],
    deadline: float,
    max_bytes: int,
) -> tuple[int, dict[str, str], bytes, str]:
    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(
            target.host, target.port, timeout=remaining(), context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=remaining())
    try:
        all_headers = {"User-Agent": f"vehicle-host/{__version__}", "Accept-Encoding": "identity", **headers}
        conn.request(method_, target.path, body=body, headers=all_headers)
        if conn.sock is not None:
            conn.sock.settimeout(remaining())
        response = conn.getresponse()
        length = response.getheader("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise PluginError(
                f"the response ({int(length) // 1024} KB) is larger than {max_bytes // 1024} KB"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            if conn.sock is not None:
                conn.sock.settimeout(remaining())
            chunk = response.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise PluginError(f"the response is larger than {max_bytes // 1024} KB")
            chunks.append(chunk)
        merged: dict[str, str] = {}
        for key, value in response.getheaders():
            merged[key.lower()] = f"{merged[key.lower()]}, {value}" if key.lower() in merged else value
        charset = response.headers.get_content_charset() or "utf-8"
        return response.status, merged, b"".join(chunks), charset
    finally:
        conn.close()


def shape_result(
    status: int, headers: dict[str, str], raw: bytes, charset: str, data_type: str, response_type: str
) -> dict[str, Any]:
    result: dict[str, Any] = {"statusCode": status, "header": headers}
    if response_type == "arraybuffer":
        result["data"] = base64.b64encode(raw).decode("ascii")
        result["dataEncoding"] = "base64"
        return result
    try:
        text = raw.decode(charset, "replace")
    except LookupError:
        text = raw.decode("utf-8", "replace")
    result["data"] = text
    if data_type == "json":
        with contextlib.suppress(ValueError, RecursionError):
            result["data"] = json.loads(text)
    return result


_HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$"


class NetworkPlugin(Plugin):
    name = "network"
    version = "1.0.0"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.allow_http = context.config.get("allow_http") is True

    @method(
        "network.request",
        args={
            "type": "object",
            "properties": {
                "url": {"type": "string", "minLength": 1, "maxLength": MAX_URL_CHARS},
                "method": {"enum": list(METHODS)},
                "data": {},
                "header": {
                    "type": "object",
                    "maxProperties": MAX_HEADERS,
                    "propertyNames": {"pattern": _HEADER_NAME},
                    "additionalProperties": {
                        "type": "string",
                        "maxLength": 4096,
                        "pattern": "^[^\\r\\n\\x00]*$",
                    },
                },
                "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT_MS},
                "dataType": {"type": "string", "maxLength": 32},
                "responseType": {"enum": ["text", "arraybuffer"]},
            },
            "required": ["url"],
            "additionalProperties": False,
        },
        result={
            "type": "object",
            "properties": {"statusCode": {"type": "integer"}, "header": {"type": "object"}, "data": {}},
            "required": ["statusCode", "header", "data"],
        },
        timeout_s=MAX_TIMEOUT_MS / 1000 + 5,
    )
    async def request(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Make an HTTPS request to a host on the app's network allow-list."""
        allow = parse_allow_list(args.get("_allow"))
        method_ = str(args.get("method", "GET")).upper()
        if method_ not in METHODS:
            raise PluginError(f"method must be one of {', '.join(METHODS)}")
        headers = {str(k): str(v) for k, v in (args.get("header") or {}).items()}
        for key in headers:
            if key.lower() in FORBIDDEN_HEADERS or key.lower().startswith("proxy-"):
                raise PluginError(f"the header {key!r} is set by the host and cannot be sent")
        timeout_s = min(float(args.get("timeout", DEFAULT_TIMEOUT_MS)), MAX_TIMEOUT_MS) / 1000
        url = str(args["url"])
        check_url(url, allow, allow_http=self.allow_http)  # refuse before starting a thread
        try:
            status, headers_in, raw, charset = await asyncio.wait_for(
                asyncio.to_thread(
                    perform, method_, url, args.get("data"), headers, allow,
                    timeout_s=timeout_s, allow_http=self.allow_http,
                ),
                timeout_s + 2.0,
            )  # fmt: skip
        except TimeoutError:
            raise PluginTimeout(f"the server did not answer within {timeout_s:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise PluginError(
                f"the request to {urllib.parse.urlsplit(url).hostname} failed: {exc}"[:500]
            ) from None
        return shape_result(
            status,
            headers_in,
            raw,
            charset,
            str(args.get("dataType", "json")),
            str(args.get("responseType", "text")),
        )
