"""The network plugin against a real HTTP server on 127.0.0.1 (no other address is ever contacted)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from vehicle_host.errors import VehicleHostError
from vehicle_host.hub.gateway import AppPolicy, decide, rules_from_declare
from vehicle_host.plugins import network
from vehicle_host.plugins.contract import CallContext, PluginContext, PluginError
from vehicle_host.plugins.network import NetworkDenied, NetworkPlugin, parse_allow_list

pytestmark = pytest.mark.integration


class Handler(BaseHTTPRequestHandler):
    hits: Counter[str] = Counter()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.hits[self.path.split("?")[0]] += 1
        port = int(self.server.server_address[1])  # type: ignore[index]
        if self.path == "/json":
            self._send(200, b'{"ok": true, "n": 3}', X_Demo="yes")
        elif self.path == "/text":
            self._send(200, "héllo".encode(), "text/plain; charset=utf-8")
        elif self.path.startswith("/query"):
            self._send(200, json.dumps({"path": self.path}).encode())
        elif self.path == "/redirect-ok":
            self._send(302, b"", Location="/json")
        elif self.path == "/redirect-localhost":
            self._send(302, b"", Location=f"http://localhost:{port}/headers")
        elif self.path == "/redirect-same":
            self._send(302, b"", Location="/headers")
        elif self.path == "/headers":
            self._send(200, json.dumps({"auth": self.headers.get("Authorization")}).encode())
        elif self.path == "/redirect-out":
            self._send(302, b"", Location=f"http://127.0.0.2:{port}/json")
        elif self.path == "/big":
            self._send(200, b"x" * (600 * 1024), "application/octet-stream")
        elif self.path == "/big-chunked":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * (600 * 1024))
            self.close_connection = True
        elif self.path == "/slow":
            time.sleep(2.0)
            self._send(200, b"{}")
        else:
            self._send(404, b'{"error": "not found"}')

    def do_POST(self) -> None:
        self.hits[self.path] += 1
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        echo = {
            "body": body.decode(),
            "type": self.headers.get("Content-Type"),
            "x": self.headers.get("X-Token"),
        }
        self._send(201, json.dumps(echo).encode())


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    Handler.hits = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


async def _no_publish(key: str, value: Any) -> None:
    return None


def request(args: dict[str, Any], allow: list[str], config: dict[str, Any] | None = None) -> Any:
    plugin = NetworkPlugin(PluginContext(config=config or {}, publish_state=_no_publish))
    decl = plugin.declarations()[0]
    ctx = CallContext(app_id="com.test.net", call_id=1, method=decl.name)
    return asyncio.run(plugin.call(decl, {**args, "_allow": allow}, ctx))


def test_an_allowed_host_works_and_json_is_parsed(server: tuple[str, int]) -> None:
    host, port = server
    base = f"http://{host}:{port}"
    result = request({"url": f"{base}/json"}, [f"{host}:{port}"])
    assert result["statusCode"] == 200 and result["data"] == {"ok": True, "n": 3}
    assert result["header"]["x-demo"] == "yes"
    text = request({"url": f"{base}/text", "dataType": "text"}, [f"http://{host}:{port}"])
    assert text["data"] == "héllo"
    raw = request({"url": f"{base}/text", "responseType": "arraybuffer"}, [f"{host}:{port}"])
    assert base64.b64decode(raw["data"]) == "héllo".encode() and raw["dataEncoding"] == "base64"
    query = request({"url": f"{base}/query?a=1", "data": {"b": 2}}, [f"{host}:{port}"])
    assert query["data"]["path"] == "/query?a=1&b=2"
    missing = request({"url": f"{base}/nowhere"}, [f"{host}:{port}"])
    assert missing["statusCode"] == 404


def test_post_bodies_and_headers(server: tuple[str, int]) -> None:
    host, port = server
    allow = [f"{host}:{port}"]
    posted = request(
        {"url": f"http://{host}:{port}/p", "method": "POST", "data": {"a": [1]}, "header": {"X-Token": "t"}},
        allow,
    )
    assert posted["statusCode"] == 201
    assert posted["data"] == {"body": '{"a": [1]}', "type": "application/json", "x": "t"}
    form = request(
        {
            "url": f"http://{host}:{port}/p",
            "method": "POST",
            "data": {"a": "1 2"},
            "header": {"content-type": "application/x-www-form-urlencoded"},
        },
        allow,
    )
    assert form["data"]["body"] == "a=1+2"
    with pytest.raises(PluginError, match="Host"):
        request({"url": f"http://{host}:{port}/p", "header": {"Host": "evil"}}, allow)


def test_hosts_not_on_the_list_are_refused_without_a_connection(server: tuple[str, int]) -> None:
    host, port = server
    with pytest.raises(NetworkDenied, match=f"{host}:{port} refused: it is not on this app's allow-list"):
        request({"url": f"http://{host}:{port}/json"}, [f"{host}:{port + 1}", "api.example.com"])
    with pytest.raises(NetworkDenied, match="this app allows no hosts"):
        request({"url": f"http://{host}:{port}/json"}, [])
    with pytest.raises(NetworkDenied, match="use https"):
        request({"url": "http://api.example.com/x"}, ["api.example.com:80"])
    with pytest.raises(PluginError, match="only https"):
        request({"url": "ftp://127.0.0.1/x"}, ["127.0.0.1"])
    assert Handler.hits["/json"] == 0


def test_redirects_follow_only_to_allowed_hosts(server: tuple[str, int]) -> None:
    host, port = server
    allow = [f"{host}:{port}"]
    followed = request({"url": f"http://{host}:{port}/redirect-ok"}, allow)
    assert followed["data"] == {"ok": True, "n": 3}
    with pytest.raises(NetworkDenied, match=f"a redirect to 127.0.0.2:{port} refused"):
        request({"url": f"http://{host}:{port}/redirect-out"}, allow)
    assert Handler.hits["/redirect-out"] == 1 and Handler.hits["/json"] == 1


def test_credentials_are_not_sent_on_to_another_origin(server: tuple[str, int]) -> None:
    host, port = server
    allow = [f"{host}:{port}", f"localhost:{port}"]
    header = {"Authorization": "Bearer secret"}
    same = request({"url": f"http://{host}:{port}/redirect-same", "header": header}, allow)
    assert same["data"] == {"auth": "Bearer secret"}
    other = request({"url": f"http://{host}:{port}/redirect-localhost", "header": header}, allow)
    assert other["data"] == {"auth": None}


def test_a_name_that_resolves_to_a_local_address_is_refused_without_a_connection(
    server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = server
    real = socket.getaddrinfo

    def resolve(name: str, *args: Any, **kwargs: Any) -> Any:
        return real(host if name == "api.example.test" else name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    url = f"https://api.example.test:{port}/json"
    with pytest.raises(NetworkDenied, match="resolves only to local or private addresses"):
        request({"url": url}, [f"api.example.test:{port}"])
    assert Handler.hits["/json"] == 0


@pytest.mark.parametrize(
    ("host", "address", "allowed"),
    [
        ("api.example.com", "93.184.216.34", True),
        ("api.example.com", "2606:2800:220:1::1", True),
        ("api.example.com", "127.0.0.1", False),
        ("api.example.com", "10.0.0.7", False),
        ("api.example.com", "192.168.1.1", False),
        ("api.example.com", "169.254.169.254", False),
        ("api.example.com", "::1", False),
        ("api.example.com", "fe80::1%eth0", False),
        ("api.example.com", "::ffff:127.0.0.1", False),
        ("api.example.com", "0.0.0.0", False),
        ("localhost", "127.0.0.1", True),
        ("localhost", "93.184.216.34", False),
        ("10.0.0.7", "10.0.0.7", True),
        ("::1", "::1", True),
    ],
)
def test_names_must_resolve_to_public_addresses(host: str, address: str, allowed: bool) -> None:
    assert network.address_allowed(host, address) is allowed


def test_an_ipv6_origin_is_bracketed_for_relative_redirects() -> None:
    target = network.Target("http", "::1", 8080, "/a/b")
    assert target.origin == "http://[::1]:8080"
    joined = urllib.parse.urljoin(target.origin + target.path, "c?x=1")
    assert network.check_url(joined, parse_allow_list(["[::1]:8080"])).path == "/a/c?x=1"


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_a_big_response_is_refused(server: tuple[str, int], path: str) -> None:
    host, port = server
    with pytest.raises(PluginError, match="larger than 512 KB"):
        request({"url": f"http://{host}:{port}{path}"}, [f"{host}:{port}"])


def test_a_slow_server_times_out(server: tuple[str, int]) -> None:
    host, port = server
    with pytest.raises(PluginError, match=r"did not answer within 0\.3 s") as info:
        request({"url": f"http://{host}:{port}/slow", "timeout": 300}, [f"{host}:{port}"])
    assert info.value.code == "timeout"


def test_allow_list_entries_are_exact() -> None:
    entries = parse_allow_list(["https://api.example.com", "EXAMPLE.org.", "*.evil.com", 5, "a:notaport"])
    hosts = {(e.scheme, e.host, e.port) for e in entries}
    assert ("https", "api.example.com", None) in hosts and (None, "example.org", None) in hosts
    assert all(not e.matches("https", "sub.evil.com", 443) for e in entries)


def test_apps_cannot_smuggle_their_own_allow_list_through_the_gateway() -> None:
    rules = rules_from_declare("network", [m.to_wire() for m in NetworkPlugin.declarations()])
    app = AppPolicy("com.test.net", "Net")
    d = decide(
        app,
        "network.request",
        {"url": "https://x.example", "_allow": ["x.example"]},
        plugin_rules=rules,
        grants={},
        vehicle=None,
    )
    assert d.code == "invalid_args"
    assert decide(
        app, "network.request", {"url": "https://x.example"}, plugin_rules=rules, grants={}, vehicle=None
    ).allowed


def test_a_publisher_ceiling_caps_what_an_allow_list_may_reach(server: tuple[str, int]) -> None:
    host, port = server
    url = f"http://{host}:{port}/json"
    inside = {"ceilings": {"com.test": ["127.0.0.1"]}}
    assert request({"url": url}, [f"{host}:{port}"], inside)["statusCode"] == 200
    before = sum(Handler.hits.values())
    for ceiling in ({"com.test": ["api.test.example"]}, {"com.test.net": ["*.test.example"]}):
        with pytest.raises(PluginError, match=r"outside the network ceiling .* publisher com\.test"):
            request({"url": url}, [f"{host}:{port}"], {"ceilings": ceiling})
    assert sum(Handler.hits.values()) == before  # refused before any connection
    other = {"ceilings": {"com.other": ["api.other.example"]}}  # another publisher's ceiling: no effect
    assert request({"url": url}, [f"{host}:{port}"], other)["statusCode"] == 200


@pytest.mark.parametrize(
    "ceilings",
    [["not", "a", "map"], {"Bad NS": []}, {"com.test": "api.test.example"}, {"com.test": ["http://x/"]}],
)
def test_malformed_ceilings_stop_the_plugin_with_the_reason(ceilings: Any) -> None:
    with pytest.raises(VehicleHostError, match=r"network\.ceilings"):
        NetworkPlugin(PluginContext(config={"ceilings": ceilings}, publish_state=_no_publish))
