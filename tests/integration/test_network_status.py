"""network.type and network.watch on sysfs-shaped directory trees (and once on this machine's own)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.hub.gateway import AppPolicy, decide, rules_from_declare
from vehicle_host.plugins import network
from vehicle_host.plugins.contract import CallContext, PluginContext
from vehicle_host.plugins.network import NetworkPlugin, NetworkStatusReader

pytestmark = pytest.mark.integration

ROUTE_HEADER = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
WIRELESS_HEADER = (
    "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n"
    " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n"
)


class Tree:
    """A fake ``/sys/class/net`` plus ``/proc/net/route`` and ``/proc/net/wireless``."""

    def __init__(self, root: Path) -> None:
        self.net = root / "class" / "net"
        self.devices = root / "devices"
        self.route = root / "route"
        self.wireless = root / "wireless"
        self.net.mkdir(parents=True)
        self.devices.mkdir()
        self.route.write_text(ROUTE_HEADER)
        self.wireless.write_text(WIRELESS_HEADER)

    def add(
        self,
        name: str,
        *,
        operstate: str = "up",
        link_type: str = "1",
        device: bool = True,
        wireless: bool = False,
        devtype: str | None = None,
        carrier: str | None = None,
    ) -> Path:
        path = self.net / name
        path.mkdir()
        (path / "operstate").write_text(operstate + "\n")
        (path / "type").write_text(link_type + "\n")
        uevent = f"INTERFACE={name}\nIFINDEX=3\n" + (f"DEVTYPE={devtype}\n" if devtype else "")
        (path / "uevent").write_text(uevent)
        if device:
            (self.devices / name).mkdir()
            (path / "device").symlink_to(self.devices / name)
        if wireless:
            (path / "wireless").mkdir()
        if carrier is not None:
            (path / "carrier").write_text(carrier + "\n")
        return path

    def set_state(self, name: str, operstate: str) -> None:
        (self.net / name / "operstate").write_text(operstate + "\n")

    def default_route(self, name: str, metric: int) -> None:
        with self.route.open("a") as f:
            f.write(f"{name}\t00000000\t010200C0\t0003\t0\t0\t{metric}\t00000000\t0\t0\t0\n")

    def signal(self, name: str, level: str) -> None:
        self.wireless.write_text(
            WIRELESS_HEADER + f"{name}: 0000   70.  {level}  -256        0      0 0 0 0 0\n"
        )

    def config(self, **extra: Any) -> dict[str, Any]:
        paths = {"sysfs_net": str(self.net), "route_table": str(self.route)}
        return {**paths, "wireless_table": str(self.wireless), **extra}


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tree:
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    return Tree(tmp_path)


async def _no_publish(key: str, value: Any) -> None:
    return None


def plugin_for(config: dict[str, Any]) -> NetworkPlugin:
    return NetworkPlugin(PluginContext(config=config, publish_state=_no_publish))


def network_type(config: dict[str, Any]) -> Any:
    plugin = plugin_for(config)
    decl = {m.name: m for m in plugin.declarations()}["network.type"]
    ctx = CallContext(app_id="com.test.net", call_id=1, method=decl.name)
    return asyncio.run(plugin.call(decl, {}, ctx))


def test_loopback_and_virtual_links_are_not_a_network(tree: Tree) -> None:
    tree.add("lo", operstate="unknown", link_type="772", device=False, carrier="1")
    tree.add("docker0", device=False)  # a bridge: up, ethernet-typed, but no device behind it
    tree.add("tun0", operstate="unknown", link_type="65534", device=False, carrier="1")
    tree.add("can0", link_type="280")  # a real CAN adapter is no internet
    tree.add("eth0", operstate="down")
    tree.add("weird0", link_type="garbage")
    assert network_type(tree.config()) == {"networkType": "none", "hasSystemProxy": False}


def test_ethernet_and_wifi(tree: Tree) -> None:
    tree.add("wlan0", wireless=True, devtype="wlan")
    tree.signal("wlan0", "-61.")
    assert network_type(tree.config()) == {
        "networkType": "wifi",
        "hasSystemProxy": False,
        "signalStrength": -61,
    }
    tree.signal("wlan0", "0.")  # a driver without a dBm level: no strength rather than a made-up one
    assert "signalStrength" not in network_type(tree.config())
    tree.add("eth0")
    assert network_type(tree.config())["networkType"] == "ethernet"  # no default route: wired wins


def test_the_default_route_picks_among_several_links(tree: Tree) -> None:
    tree.add("eth0")
    tree.add("wlp2s0", devtype="wlan")
    tree.add("wwan0", operstate="unknown", link_type="519", devtype="wwan", carrier="1")
    tree.default_route("eth0", 600)
    tree.default_route("wlp2s0", 100)
    assert network_type(tree.config())["networkType"] == "wifi"
    tree.default_route("wwan0", 50)
    assert network_type(tree.config())["networkType"] == "unknown"  # cellular, generation unknown
    assert network_type(tree.config(cellular_type="4g"))["networkType"] == "4g"
    tree.default_route("tun0", 1)  # a route through a link that is not there changes nothing
    assert network_type(tree.config(cellular_type="4g"))["networkType"] == "4g"


def test_cellular_modems(tree: Tree) -> None:
    tree.add("ppp0", operstate="unknown", link_type="512", device=False, carrier="1")
    assert network_type(tree.config(cellular_type="3g"))["networkType"] == "3g"
    assert network_type(tree.config(cellular_type="6g"))["networkType"] == "unknown"  # bad config
    tree.set_state("ppp0", "down")
    assert network_type(tree.config())["networkType"] == "none"


def test_a_system_proxy_is_reported(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert network_type(tree.config())["hasSystemProxy"] is True


def test_this_machine_reads_without_configuration() -> None:
    result = network_type({})
    assert result["networkType"] in network.NETWORK_TYPES
    assert isinstance(result["hasSystemProxy"], bool)
    reader = NetworkStatusReader()
    assert result["networkType"] == reader.read()["networkType"]


class CountingReader:
    def __init__(self, inner: NetworkStatusReader) -> None:
        self.inner = inner
        self.reads = 0

    def read(self) -> dict[str, Any]:
        self.reads += 1
        return self.inner.read()


def test_watch_sends_now_and_on_every_change_only(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    tree.add("eth0")
    tree.add("wlan0", operstate="down", wireless=True)
    plugin = plugin_for(tree.config(poll_s=0.05))
    reader = CountingReader(plugin.status_reader)
    monkeypatch.setattr(plugin, "status_reader", reader)
    decl = {m.name: m for m in plugin.declarations()}["network.watch"]
    ctx = CallContext(app_id="com.test.net", call_id=7, method=decl.name)

    async def main() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        changed = asyncio.Event()

        async def consume() -> None:
            async for event in plugin.stream(decl, {}, ctx):
                events.append(event)
                changed.set()

        async def next_event(count: int) -> None:
            while len(events) < count:
                changed.clear()
                await asyncio.wait_for(changed.wait(), 10)

        async def polls(count: int) -> None:
            target = reader.reads + count
            while reader.reads < target:
                await asyncio.sleep(0.01)

        task = asyncio.create_task(consume())
        try:
            await next_event(1)
            await asyncio.wait_for(polls(3), 10)
            tree.signal("wlan0", "-40.")  # not part of the event: no event
            await asyncio.wait_for(polls(3), 10)
            assert len(events) == 1
            tree.set_state("eth0", "down")
            await next_event(2)
            tree.set_state("wlan0", "up")
            await next_event(3)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return events

    events = asyncio.run(main())
    assert events == [
        {"isConnected": True, "networkType": "ethernet"},
        {"isConnected": False, "networkType": "none"},
        {"isConnected": True, "networkType": "wifi"},
    ]


def test_status_needs_no_permission_and_takes_no_arguments() -> None:
    rules = rules_from_declare("network", [m.to_wire() for m in NetworkPlugin.declarations()])
    app = AppPolicy("com.test.net", "Net")
    for name in ("network.type", "network.watch"):
        assert decide(app, name, {}, plugin_rules=rules, grants={}, vehicle=None).allowed
        denied = decide(app, name, {"sysfs_net": "/"}, plugin_rules=rules, grants={}, vehicle=None)
        assert denied.code == "invalid_args"
    watch = {m.name: m for m in NetworkPlugin.declarations()}["network.watch"]
    assert watch.streams and watch.rate_hz is not None
