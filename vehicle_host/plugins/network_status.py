"""Which network the head unit is on, read from sysfs and procfs (no I/O beyond those files).

Links come from ``/sys/class/net``: loopback and virtual links (bridges, veth, tun, CAN, ...) are
skipped; ``wifi`` has a ``wireless`` directory, a ``phy80211`` link or ``DEVTYPE=wlan``; cellular
modems (``DEVTYPE=wwan``, PPP, raw-IP) report ``unknown`` unless configured (the kernel cannot tell
the radio generation); ``ethernet`` is a type-1 link with a device. When several links are up, the
lowest-metric IPv4 default route in ``/proc/net/route`` wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NETWORK_TYPES = ("wifi", "2g", "3g", "4g", "5g", "ethernet", "unknown", "none")
CELLULAR_TYPES = ("2g", "3g", "4g", "5g", "unknown")
SYSFS_NET = "/sys/class/net"
ROUTE_TABLE = "/proc/net/route"
WIRELESS_TABLE = "/proc/net/wireless"
ARPHRD_ETHER, ARPHRD_PPP, ARPHRD_RAWIP, ARPHRD_NONE = 1, 512, 519, 65534
MAX_INTERFACES = 256
MAX_SYSFS_READ = 4096
MAX_TABLE_READ = 64 * 1024
DEFAULT_POLL_S = 1.0
_PREFERENCE = {"ethernet": 0, "wifi": 1, "cellular": 2}


def _read(path: Path, limit: int = MAX_SYSFS_READ) -> str | None:
    try:
        with path.open("rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path, 32)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def link_kind(path: Path) -> str | None:
    """``wifi``, ``cellular``, ``ethernet``, or None for loopback, virtual and unknown links."""
    if path.name == "lo":
        return None
    uevent = _read(path / "uevent") or ""
    devtype = next((line[8:] for line in uevent.splitlines() if line.startswith("DEVTYPE=")), "")
    if devtype == "wlan" or (path / "wireless").is_dir() or (path / "phy80211").exists():
        return "wifi"
    link_type = _read_int(path / "type")
    physical = (path / "device").exists()
    headerless = physical and link_type in (ARPHRD_RAWIP, ARPHRD_NONE)
    if devtype == "wwan" or link_type == ARPHRD_PPP or headerless:
        return "cellular"
    if physical and link_type == ARPHRD_ETHER:
        return "ethernet"
    return None


def link_is_up(path: Path) -> bool:
    state = (_read(path / "operstate", 32) or "").strip()
    return state == "up" or (state == "unknown" and _read_int(path / "carrier") == 1)


def default_routes(table: Path) -> dict[str, int]:
    """Interface -> lowest metric of its IPv4 default routes, from a ``/proc/net/route`` table."""
    routes: dict[str, int] = {}
    for line in (_read(table, MAX_TABLE_READ) or "").splitlines()[1:]:
        fields = line.split()
        try:
            if len(fields) < 8 or fields[1] != "00000000" or not int(fields[3], 16) & 0x1:
                continue
            metric = int(fields[6])
        except ValueError:
            continue
        routes[fields[0]] = min(metric, routes.get(fields[0], metric))
    return routes


def wifi_level_dbm(table: Path, interface: str) -> float | None:
    """The link's signal level in dBm from a ``/proc/net/wireless`` table, if the driver gives one."""
    for line in (_read(table, MAX_TABLE_READ) or "").splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() != interface or len(fields) < 3:
            continue
        try:
            level = float(fields[2].rstrip("."))
        except ValueError:
            return None
        return level if -150 < level < 0 else None
    return None


@dataclass(frozen=True, slots=True)
class NetworkStatusReader:
    """Reads the head unit's network status from sysfs/procfs (blocking, cheap file reads)."""

    sysfs_net: Path = Path(SYSFS_NET)
    route_table: Path = Path(ROUTE_TABLE)
    wireless_table: Path = Path(WIRELESS_TABLE)
    cellular_type: str = "unknown"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> NetworkStatusReader:
        def path(key: str, default: str) -> Path:
            value = config.get(key)
            return Path(value) if isinstance(value, str) and value else Path(default)

        cellular = config.get("cellular_type")
        return cls(
            path("sysfs_net", SYSFS_NET),
            path("route_table", ROUTE_TABLE),
            path("wireless_table", WIRELESS_TABLE),
            cellular if cellular in CELLULAR_TYPES else "unknown",
        )

    def read(self) -> dict[str, Any]:
        """``{networkType, hasSystemProxy, signalStrength?}`` as ``fc.getNetworkType`` returns it."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.sysfs_net))[:MAX_INTERFACES]
        except OSError:
            names = []
        up: dict[str, str] = {}
        for name in names:
            kind = link_kind(self.sysfs_net / name)
            if kind is not None and link_is_up(self.sysfs_net / name):
                up[name] = kind
        result: dict[str, Any] = {
            "networkType": "none",
            "hasSystemProxy": bool(os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY")),
        }
        if not up:
            return result
        routes = default_routes(self.route_table)
        routed = sorted((metric, name) for name, metric in routes.items() if name in up)
        active = routed[0][1] if routed else min(up, key=lambda name: (_PREFERENCE[up[name]], name))
        kind = up[active]
        result["networkType"] = self.cellular_type if kind == "cellular" else kind
        if kind == "wifi":
            level = wifi_level_dbm(self.wireless_table, active)
            if level is not None:
                result["signalStrength"] = level
        return result
