"""The ``network`` plugin: ``fc.request`` for mini-apps, only to hosts the app's manifest allows.

The allow-list is the app manifest's ``vehicle.network`` list. The plugin cannot read manifests, so
the hub adds it to every call's arguments as ``_allow`` after the gateway's checks (apps cannot send
``_``-arguments themselves). Default deny: a host that is not on the list, or an empty list, is
refused before any connection is made; so is a redirect to such a host.

List entries are host names or origins, matched exactly (no wildcards): ``api.example.com`` (its
default port), ``api.example.com:8443``, ``https://api.example.com``. ``https`` is always allowed;
plain ``http`` only to loopback hosts unless the plugin's config sets ``allow_http: true``.

A host *name* on the list must resolve to public addresses: the plugin resolves it itself, refuses
loopback, private, link-local and other non-global addresses (so a name cannot be pointed at the
head unit or the vehicle's own network), and connects to the address it checked. ``localhost`` must
resolve to loopback. A host on a private network is listed by its address (``10.1.2.3:8443``,
``[fd00::1]``): literal addresses are taken as written. A redirect to another origin drops the
``Authorization`` and ``Cookie`` headers.

Requests use the standard library (``http.client``, no proxies), run in a thread, with a deadline
(``timeout`` in ms as WeChat: default 10 s, at most 60 s) and a response size limit.

``network.type`` and ``network.watch`` (``fc.getNetworkType``, ``fc.onNetworkStatusChange``) need no
permission. They read the interfaces under ``sysfs_net`` (config, default ``/sys/class/net``):

- ``lo`` and virtual interfaces are skipped: bridges, veth, docker, tun/wireguard, CAN, ifb... An
  interface counts only if it is wireless, or has a ``device`` link and a known link type.
- ``wifi``: a ``wireless`` directory, a ``phy80211`` link or ``DEVTYPE=wlan`` in ``uevent``;
  ``signalStrength`` is its level in dBm from ``/proc/net/wireless`` when the driver reports one.
- cellular: ``DEVTYPE=wwan``, a PPP link (type 512, the modem's pppd), or a raw-IP/headerless link
  (types 519/65534) with a ``device`` link. The kernel does not know the radio generation, so it is
  reported as the config's ``cellular_type`` (``2g``..``5g``; default ``unknown``, never guessed).
- ``ethernet``: link type 1 (ARPHRD_ETHER) with a ``device`` link (USB tethering included).
- An interface is connected when its ``operstate`` is ``up`` (or ``unknown`` with ``carrier`` 1,
  as PPP reports). Of several, the one carrying the IPv4 default route (``route_table``, default
  ``/proc/net/route``, lowest metric) wins, else ethernet, then wifi, then cellular. None: ``none``.
- ``hasSystemProxy``: whether this process has ``https_proxy``/``HTTPS_PROXY`` set.

``network.watch`` sends the status at once, then on every change of ``{isConnected, networkType}``;
it polls every ``poll_s`` seconds (config, default 1 s) while the stream is open.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import ipaddress
import json
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vehicle_host import __version__
from vehicle_host.plugins.contract import (
    NO_ARGS,
    CallContext,
    InvalidArguments,
    Plugin,
    PluginContext,
    PluginError,
    PluginTimeout,
    config_number,
    method,
    object_schema,
)
from vehicle_host.plugins.network_ceiling import Ceilings
from vehicle_host.plugins.network_status import (
    DEFAULT_POLL_S,
    NETWORK_TYPES,
    NetworkStatusReader,
)

METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")
DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 60_000
#: The response travels in one wire message (1 MiB, base64 adds a third): keep it at 512 KiB.
MAX_RESPONSE_BYTES = 512 * 1024
MAX_URL_CHARS = 2048
#: The request body travels in one wire message too.
MAX_REQUEST_BYTES = 512 * 1024
MAX_HEADER_CHARS = 4096
MAX_HEADERS = 32
MAX_REDIRECTS = 5
MAX_ALLOW_ENTRIES = 64
REDIRECTS = (301, 302, 303, 307, 308)
FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)
DEFAULT_PORTS = {"http": 80, "https": 443}
CHUNK = 64 * 1024
#: Request headers that carry the caller's credentials: not sent on to another origin by a redirect.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})


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

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


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


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def address_allowed(host: str, address: str) -> bool:
    """May a connection to ``host`` (as the allow-list names it) go to ``address`` (resolved)?

    A literal address is taken as written; ``localhost`` only to loopback; any other name only to
    global (public) addresses, so DNS cannot point an allowed name into the head unit or its LAN.
    """
    if _literal(host) is not None:
        return True
    ip = _literal(address.partition("%")[0])
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback if host == "localhost" else ip.is_global and not ip.is_multicast


def connect_checked(
    host: str, port: int, timeout: float | None, source_address: tuple[str, int] | None = None
) -> socket.socket:
    """``socket.create_connection`` for ``host``, only to the addresses :func:`address_allowed` accepts."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    allowed = [info for info in infos if address_allowed(host, str(info[4][0]))]
    if not allowed:
        raise NetworkDenied(
            f"{host} resolves only to local or private addresses; list the address itself in "
            "vehicle.network if the app must reach a host on a private network"
        )
    error: OSError | None = None
    for family, kind, proto, _, address in allowed:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            if source_address is not None:
                sock.bind(source_address)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    assert error is not None
    raise error


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


def check_headers(value: Any) -> dict[str, str]:
    """The request headers an app asked for, checked again here (the gateway's schema may be bypassed):
    token names, no CR/LF/NUL in values, bounded count and size, none the host sets itself."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > MAX_HEADERS:
        raise InvalidArguments(f"header must be a map of at most {MAX_HEADERS} headers")
    headers: dict[str, str] = {}
    for key, text in value.items():
        if not isinstance(key, str) or not _HEADER_NAME_RE.fullmatch(key):
            raise InvalidArguments(f"the header name {str(key)[:64]!r} is not a valid HTTP header name")
        if not isinstance(text, str) or len(text) > MAX_HEADER_CHARS or _BAD_VALUE_RE.search(text):
            raise InvalidArguments(
                f"the value of header {key!r} must be text of at most {MAX_HEADER_CHARS} characters "
                "without line breaks or NUL"
            )
        if key.lower() in FORBIDDEN_HEADERS or key.lower().startswith("proxy-"):
            raise PluginError(f"the header {key!r} is set by the host and cannot be sent")
        headers[key] = text
    return headers


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
    if body is not None and len(body) > MAX_REQUEST_BYTES:
        raise PluginError(f"the request body is larger than {MAX_REQUEST_BYTES // 1024} KB")
    for _ in range(MAX_REDIRECTS + 1):
        status, response_headers, raw, charset = _exchange(
            method_, target, body, headers, deadline, max_bytes
        )
        location = response_headers.get("location") if status in REDIRECTS else None
        if location is None:
            return status, response_headers, raw, charset
        previous = target
        target = check_url(
            urllib.parse.urljoin(previous.origin + previous.path, location),
            allow,
            allow_http=allow_http,
            redirect=True,
        )
        if target.origin != previous.origin:
            headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
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
    conn._create_connection = _connector(target.host)  # type: ignore[attr-defined]
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


def _connector(host: str) -> Any:
    """``HTTPConnection._create_connection`` for ``host``: connect only to checked addresses."""

    def create(
        address: tuple[str, int], timeout: float | None = None, source_address: Any = None
    ) -> socket.socket:
        return connect_checked(host, address[1], timeout, source_address)

    return create


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


_STATUS_EVENT: dict[str, Any] = object_schema(
    {"isConnected": {"type": "boolean"}, "networkType": {"enum": list(NETWORK_TYPES)}},
    ("isConnected", "networkType"),
)
_HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$"
_HEADER_NAME_RE = re.compile(_HEADER_NAME.strip("^$"))
_BAD_VALUE_RE = re.compile("[\r\n\x00]")


class NetworkPlugin(Plugin):
    name = "network"
    version = "1.0.0"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.allow_http = context.config.get("allow_http") is True
        self.ceilings = Ceilings.from_config(context.config.get("ceilings"))
        self.status_reader = NetworkStatusReader.from_config(context.config)
        self.poll_s = config_number(context.config, "poll_s", DEFAULT_POLL_S, 0.05, 60)

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
                        "maxLength": MAX_HEADER_CHARS,
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
        headers = check_headers(args.get("header"))
        timeout_s = min(float(args.get("timeout", DEFAULT_TIMEOUT_MS)), MAX_TIMEOUT_MS) / 1000
        url = str(args["url"])
        host = urllib.parse.urlsplit(url).hostname or ""
        if not self.ceilings.permits(call.app_id, host):
            namespace = self.ceilings.namespace_of(call.app_id)
            raise PluginError(
                f"request to {host} refused: it is outside the network ceiling the head unit sets for "
                f"publisher {namespace}, whatever the app's allow-list says"
            )
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

    @method(
        "network.type",
        args=NO_ARGS,
        result={
            "type": "object",
            "properties": {
                "networkType": {"enum": list(NETWORK_TYPES)},
                "signalStrength": {"type": "number"},
                "hasSystemProxy": {"type": "boolean"},
            },
            "required": ["networkType", "hasSystemProxy"],
            "additionalProperties": False,
        },
    )
    async def network_type(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """The head unit's current network: wifi, ethernet, cellular or none."""
        return await asyncio.to_thread(self.status_reader.read)

    @method(
        "network.watch",
        streams=True,
        rate_hz=2,
        args=NO_ARGS,
        result=_STATUS_EVENT,
    )
    async def watch(self, args: dict[str, Any], call: CallContext) -> AsyncIterator[dict[str, Any]]:
        """The network status now and on every change, until cancelled."""
        last: dict[str, Any] | None = None
        while True:
            status = await asyncio.to_thread(self.status_reader.read)
            event = {"isConnected": status["networkType"] != "none", "networkType": status["networkType"]}
            if event != last:
                last = event
                yield event
            await asyncio.sleep(self.poll_s)
