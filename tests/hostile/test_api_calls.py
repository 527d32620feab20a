"""Hostile API calls: permission escalation through the gateway and the plugin host, and attempts to
get the network plugin to reach what the app's allow-list does not allow.

Every case runs under the suite's network guard (see conftest.py): DNS answers come from its fake
resolver and any connection outside 127.0.0.0/8 fails the test, so "refused before any connect" is
proved by the guard, not assumed. Allowed traffic goes to HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.conftest import NetGuard
from tests.integration.plugin_process import FakeHub
from vehicle_host.hub.gateway import AppPolicy, decide, rules_from_declare
from vehicle_host.hub.grants import GrantStore
from vehicle_host.plugins.can_diagnostics.plugin import CanDiagnosticsPlugin
from vehicle_host.plugins.contract import CallContext, PluginContext, PluginError
from vehicle_host.plugins.network import NetworkPlugin
from vehicle_host.plugins.storage import StoragePlugin

APP = "com.partner.app"
OTHER = "com.victim.app"
READ, CLEAR = "vehicle.diagnostics.read", "vehicle.diagnostics.clear"
CAN_RULES = rules_from_declare("can_diagnostics", [m.to_wire() for m in CanDiagnosticsPlugin.declarations()])
NET_RULES = rules_from_declare("network", [m.to_wire() for m in NetworkPlugin.declarations()])
STORAGE_RULES = rules_from_declare("storage", [m.to_wire() for m in StoragePlugin.declarations()])
PARKED = {"parked": True, "speed_kmh": 0}


class Handler(BaseHTTPRequestHandler):
    hits: Counter[str] = Counter()
    seen_headers: list[dict[str, str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        Handler.hits[path] += 1
        Handler.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", urllib.parse.parse_qs(query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/many-headers":
            self.send_response(200)
            for i in range(150):
                self.send_header(f"X-Flood-{i}", "y")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        elif path == "/long-header":
            self.send_response(200)
            self.send_header("X-Long", "z" * 70_000)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        else:
            body = json.dumps({"ok": True, "path": path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    do_POST = do_GET


def _serve() -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    # a short poll: shutdown() waits for it, twice per test
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return httpd


@pytest.fixture
def servers() -> Iterator[tuple[int, int]]:
    """Two loopback servers: the allowed one and another port the allow-list does not name."""
    Handler.hits = Counter()
    Handler.seen_headers = []
    allowed, other = _serve(), _serve()
    yield allowed.server_address[1], other.server_address[1]
    for httpd in (allowed, other):
        httpd.shutdown()
        httpd.server_close()


async def _no_publish(key: str, value: Any) -> None:
    return None


def net_call(args: dict[str, Any], allow: list[str], app_id: str = APP) -> Any:
    """``network.request`` on a plugin in this process, as the hub forwards it (``_allow`` added)."""
    plugin = NetworkPlugin(PluginContext(config={}, publish_state=_no_publish))
    decl = next(d for d in plugin.declarations() if d.name == "network.request")
    return asyncio.run(plugin.call(decl, {**args, "_allow": allow}, CallContext(app_id, 1, decl.name)))


# -- permission escalation (the gateway) -------------------------------------------------------


def test_a_plugin_method_without_the_permission_is_denied_naming_it() -> None:
    app = AppPolicy(APP, "Partner", permissions=frozenset({READ}))
    decision = decide(
        app, "vehicle.clearDtcs", {}, plugin_rules=CAN_RULES, grants={CLEAR: True}, vehicle=PARKED
    )
    assert decision.verdict == "deny" and decision.code == "denied"
    assert "did not declare permission vehicle.diagnostics.clear" in decision.message
    # a granted answer stored for an undeclared permission does not make it declared
    assert not decide(
        app, "vehicle.clearDtcs", {}, plugin_rules=CAN_RULES, grants={CLEAR: True}, vehicle=PARKED
    ).allowed


def test_a_revoked_grant_is_not_a_grant_any_more(tmp_path: Path) -> None:
    """Granted, then revoked in the grant store: the next call needs the driver again, and an
    explicit "no" is a denial; the other app's grant is untouched."""
    app = AppPolicy(APP, "Partner", permissions=frozenset({READ, CLEAR}))
    store = GrantStore(tmp_path / "grants.db")
    try:
        store.set(APP, CLEAR, True, by="driver")
        store.set(OTHER, CLEAR, True, by="driver")
        assert decide(
            app, "vehicle.clearDtcs", {}, plugin_rules=CAN_RULES, grants=store.grants(APP), vehicle=PARKED
        ).allowed
        assert store.revoke(APP, CLEAR) == 1
        again = decide(
            app, "vehicle.clearDtcs", {}, plugin_rules=CAN_RULES, grants=store.grants(APP), vehicle=PARKED
        )
        assert again.verdict == "ask" and again.consent is not None and again.consent["app_id"] == APP
        store.set(APP, CLEAR, False, by="driver")
        no = decide(
            app, "vehicle.clearDtcs", {}, plugin_rules=CAN_RULES, grants=store.grants(APP), vehicle=PARKED
        )
        assert no.verdict == "deny" and "The driver did not allow Partner to use" in no.message
        assert store.grants(OTHER) == {CLEAR: True}
    finally:
        store.close()


@pytest.mark.parametrize(
    "args",
    [{"app_id": OTHER}, {"_app_id": OTHER}, {"_allow": ["evil.example"]}, {"ecu": "engine", "appId": OTHER}],
)
def test_forging_another_apps_id_in_the_arguments_is_refused(args: dict[str, Any]) -> None:
    app = AppPolicy(APP, "Partner", permissions=frozenset({READ}))
    decision = decide(app, "vehicle.readDtcs", args, plugin_rules=CAN_RULES, grants={}, vehicle=PARKED)
    assert decision.code == "invalid_args"
    assert "reserved for the host" in decision.message or "Additional properties" in decision.message


@pytest.mark.parametrize(
    "name",
    [
        "../storage.get",
        "storage/../network.request",
        "__proto__",
        "constructor",
        "vehicle.__init__",
        "vehicle.readDtcs\x00.clearDtcs",
        "VEHICLE.CLEARDTCS",
        " vehicle.clearDtcs",
        "vehicle.clearDtcs.",
        "x" * 5000,
    ],
)
def test_method_names_with_path_tricks_or_dunders_are_unknown(name: str) -> None:
    app = AppPolicy(APP, "Partner", permissions=frozenset({READ, CLEAR}))
    rules = {**CAN_RULES, **NET_RULES, **STORAGE_RULES}
    decision = decide(app, name, {}, plugin_rules=rules, grants={CLEAR: True}, vehicle=PARKED)
    assert decision.code == "unknown_method" and "is not available on this vehicle" in decision.message
    assert len(decision.message) < 300  # a huge name is not echoed back whole


def test_the_plugin_host_refuses_forged_method_names_and_keeps_serving(short_dir: Path) -> None:
    """A real plugin host process: dunder and path names reach no attribute; the next call works."""
    endpoint = f"ipc://{short_dir / 'hub.sock'}"

    async def main() -> None:
        with FakeHub(endpoint, "storage", app_id=APP) as hub:
            async with hub.host(short_dir / "state", {}):
                await hub.accept()
                for call_id, name in enumerate(
                    ["__init__", "call", "_start_call", "../storage.get", "stop"], 1
                ):
                    answer = await hub.call(call_id, name, {})
                    assert answer["ok"] is False and answer["error"]["code"] == "unknown_method"
                    assert "does not offer" in answer["error"]["message"]
                put = await hub.call(10, "storage.set", {"key": "k", "value": json.dumps("mine")})
                assert put["ok"], put
                # the hub names the app: another app's id sees only its own (empty) storage
                theirs = await hub.call(11, "storage.snapshot", {}, app_id=OTHER)
                assert theirs["ok"] and "mine" not in json.dumps(theirs["result"])
                mine = await hub.call(12, "storage.snapshot", {})
                assert mine["ok"] and "mine" in json.dumps(mine["result"])

    asyncio.run(main())


# -- the network allow-list ---------------------------------------------------------------------


def test_a_redirect_from_an_allowed_server_to_a_disallowed_host_is_refused(
    servers: tuple[int, int], netguard: NetGuard
) -> None:
    port, _ = servers
    netguard.dns("evil.example", "93.184.216.34")  # even a public address: it is not on the list
    url = f"http://127.0.0.1:{port}/redirect?to=https://evil.example/steal"
    with pytest.raises(
        PluginError, match=r"a redirect to evil\.example refused: it is not on this app's allow-list"
    ):
        net_call({"url": url}, [f"127.0.0.1:{port}"])
    assert Handler.hits["/redirect"] == 1


@pytest.mark.parametrize(
    "target", ["http://10.1.2.3/", "http://192.168.1.1:8080/", "http://169.254.169.254/latest"]
)
def test_a_redirect_into_a_private_range_is_refused(servers: tuple[int, int], target: str) -> None:
    port, _ = servers
    url = f"http://127.0.0.1:{port}/redirect?to={urllib.parse.quote(target)}"
    with pytest.raises(PluginError, match=r"a redirect to .* refused"):
        net_call({"url": url}, [f"127.0.0.1:{port}"])


def test_a_redirect_to_another_port_on_the_same_host_is_refused(servers: tuple[int, int]) -> None:
    port, other = servers
    url = f"http://127.0.0.1:{port}/redirect?to=http://127.0.0.1:{other}/admin"
    with pytest.raises(PluginError, match=rf"a redirect to 127\.0\.0\.1:{other} refused"):
        net_call({"url": url}, [f"127.0.0.1:{port}"])
    assert Handler.hits["/admin"] == 0  # the other port was never asked


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.1.2.3"],
        ["172.16.5.4"],
        ["192.168.0.10"],
        ["169.254.169.254"],
        ["127.0.0.1"],
        ["::1"],
        ["::ffff:10.1.2.3"],
        ["::ffff:127.0.0.1"],
        ["fd00::7"],
        ["0.0.0.0"],
    ],
)
def test_an_allowed_name_that_resolves_to_a_private_address_is_refused_before_connecting(
    netguard: NetGuard, addresses: list[str]
) -> None:
    netguard.dns("evil.example", *addresses)
    with pytest.raises(PluginError, match=r"evil\.example resolves only to local or private addresses"):
        net_call({"url": "https://evil.example/x"}, ["evil.example"])
    # the guard fails the test at teardown if anything connected


@pytest.mark.parametrize(
    "host", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "017700000001", "0x0a.1.2.3", "167837955"]
)
def test_decimal_octal_and_hex_ip_spellings_are_not_taken_for_an_allowed_address(
    servers: tuple[int, int], host: str
) -> None:
    port, _ = servers
    # not on the list as written: refused outright
    with pytest.raises(PluginError, match="refused: it is not on this app's allow-list"):
        net_call({"url": f"http://{host}:{port}/json"}, [f"127.0.0.1:{port}"])
    # listed as written, it is a *name*: it must resolve to public addresses, and these do not
    with pytest.raises(PluginError, match="resolves only to local or private addresses"):
        net_call({"url": f"https://{host}:{port}/json"}, [f"{host}:{port}"])
    assert Handler.hits["/json"] == 0


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"X-A": "1\r\nHost: evil.example"}, "without line breaks"),
        ({"X-A": "1\nX-Injected: 1"}, "without line breaks"),
        ({"X-A": "nul\x00byte"}, "without line breaks"),
        ({"X-A\r\nHost": "evil.example"}, "not a valid HTTP header name"),
        ({"X A": "1"}, "not a valid HTTP header name"),
        ({"Host": "evil.example"}, "is set by the host"),
        ({"HOST": "evil.example"}, "is set by the host"),
        ({"Transfer-Encoding": "chunked"}, "is set by the host"),
        ({"Proxy-Authorization": "x"}, "is set by the host"),
        ({"X-Big": "v" * 5000}, "at most 4096 characters"),
        ({f"X-{i}": "1" for i in range(33)}, "at most 32 headers"),
    ],
)
def test_header_injection_is_refused_by_the_gateway_and_the_plugin(
    servers: tuple[int, int], header: dict[str, str], reason: str
) -> None:
    port, _ = servers
    args = {"url": f"http://127.0.0.1:{port}/json", "header": header}
    app = AppPolicy(APP, "Partner")
    gate = decide(app, "network.request", args, plugin_rules=NET_RULES, grants={}, vehicle=None)
    forbidden = any(
        k.lower() in ("host", "transfer-encoding") or k.lower().startswith("proxy-") for k in header
    )
    assert gate.code == "invalid_args" or forbidden
    with pytest.raises(PluginError, match=reason):  # the plugin checks again if the gateway is bypassed
        net_call(args, [f"127.0.0.1:{port}"])
    assert Handler.hits["/json"] == 0 and Handler.seen_headers == []


def test_an_oversize_request_body_is_refused_before_sending(servers: tuple[int, int]) -> None:
    port, _ = servers
    args = {"url": f"http://127.0.0.1:{port}/json", "method": "POST", "data": "x" * (600 * 1024)}
    with pytest.raises(PluginError, match="the request body is larger than 512 KB"):
        net_call(args, [f"127.0.0.1:{port}"])
    gate = decide(
        AppPolicy(APP, "Partner"), "network.request", {**args, "data": "x" * (1100 * 1024)},
        plugin_rules=NET_RULES, grants={}, vehicle=None,
    )  # fmt: skip
    assert gate.code == "invalid_args" and "larger than 1024 KB" in gate.message
    assert Handler.hits["/json"] == 0


@pytest.mark.parametrize(
    ("path", "reason"), [("/many-headers", "more than 100 headers"), ("/long-header", "line")]
)
def test_a_response_with_a_header_flood_fails_cleanly(
    servers: tuple[int, int], path: str, reason: str
) -> None:
    port, _ = servers
    with pytest.raises(PluginError, match=rf"the request to 127\.0\.0\.1 failed: .*{reason}"):
        net_call({"url": f"http://127.0.0.1:{port}{path}"}, [f"127.0.0.1:{port}"])
    assert net_call({"url": f"http://127.0.0.1:{port}/json"}, [f"127.0.0.1:{port}"])["data"]["ok"] is True


def test_the_plugin_process_refuses_a_private_name_and_keeps_serving(
    short_dir: Path, servers: tuple[int, int], netguard: NetGuard
) -> None:
    """The real network plugin host process, with the fake DNS reaching it through the guard."""
    port, _ = servers
    netguard.dns("evil.example", "10.1.2.3")
    endpoint = f"ipc://{short_dir / 'hub.sock'}"

    async def main() -> None:
        with FakeHub(endpoint, "network", app_id=APP) as hub:
            async with hub.host(short_dir / "state", {}):
                await hub.accept()
                bad = await hub.call(
                    1, "network.request", {"url": "https://evil.example/", "_allow": ["evil.example"]}
                )
                assert bad["ok"] is False and bad["error"]["code"] == "denied"
                assert "resolves only to local or private addresses" in bad["error"]["message"]
                good = await hub.call(
                    2,
                    "network.request",
                    {"url": f"http://127.0.0.1:{port}/json", "_allow": [f"127.0.0.1:{port}"]},
                )
                assert good["ok"] and good["result"]["data"]["ok"] is True

    asyncio.run(main())
