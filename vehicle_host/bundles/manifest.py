"""The mini-app manifest: ``app.json`` with its ``vehicle`` section, checked with clear errors."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vehicle_host.errors import BundleError
from vehicle_host.wire import API_LEVEL

MAX_MANIFEST_BYTES = 64 * 1024
MAX_PAGES = 100
GROUPS = ("driver", "dealer", "partner")

APP_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)+$")
ROUTE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
VERSION = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, slots=True)
class Manifest:
    app_id: str
    name: str
    version: str
    pages: tuple[str, ...]
    title: str
    driving_safe: bool
    permissions: tuple[str, ...]
    runtime_min: int
    runtime_max: int
    publisher: str
    group: str
    allow_list: tuple[str, ...] = ()
    tab_routes: tuple[str, ...] = ()

    @property
    def entry(self) -> str:
        return self.pages[0]

    def supports_api_level(self, level: int = API_LEVEL) -> bool:
        return self.runtime_min <= level <= self.runtime_max


def load_manifest(app_dir: Path) -> Manifest:
    """Read and check ``app_dir/app.json``; raise BundleError saying what to fix."""
    path = app_dir / "app.json"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{path}: cannot read app.json ({exc.strerror})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path}: app.json is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: app.json is not valid JSON: {exc}") from None
    except RecursionError:
        raise BundleError(f"{path}: app.json nests too deeply") from None
    return parse_manifest(doc, where=str(path))


def parse_manifest(doc: Any, *, where: str = "app.json") -> Manifest:
    """Check a decoded ``app.json`` document (pure: no I/O)."""
    if not isinstance(doc, dict):
        raise BundleError(f"{where}: must be a JSON object")
    pages = doc.get("pages")
    if not isinstance(pages, list) or not pages or len(pages) > MAX_PAGES:
        raise BundleError(f"{where}: 'pages' must list 1 to {MAX_PAGES} page routes")
    for route in pages:
        if not isinstance(route, str) or len(route) > 128 or not ROUTE.match(route):
            raise BundleError(f"{where}: page route {route!r} must look like 'pages/index/index'")
    window = doc.get("window", {})
    if not isinstance(window, dict):
        raise BundleError(f"{where}: 'window' must be an object")
    vehicle = doc.get("vehicle")
    if not isinstance(vehicle, dict):
        raise BundleError(f"{where}: the 'vehicle' section (id, name, version, runtime) is missing")
    app_id = _text(vehicle, "id", where)
    if len(app_id) > 64 or not APP_ID.match(app_id):
        raise BundleError(
            f"{where}: vehicle.id {app_id!r} must be reverse-DNS, e.g. 'com.dealer.diagnostics'"
        )
    version = _text(vehicle, "version", where)
    if not VERSION.match(version):
        raise BundleError(f"{where}: vehicle.version {version!r} must be semantic, e.g. '1.2.0'")
    runtime = vehicle.get("runtime", {})
    if not isinstance(runtime, dict):
        raise BundleError(f"{where}: vehicle.runtime must be an object like {{'min': 1, 'max': 1}}")
    low, high = runtime.get("min", 1), runtime.get("max", API_LEVEL)
    if type(low) is not int or type(high) is not int or not 1 <= low <= high:
        raise BundleError(f"{where}: vehicle.runtime needs integers with 1 <= min <= max")
    permissions = vehicle.get("permissions", [])
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise BundleError(f"{where}: vehicle.permissions must be a list of permission names")
    driving_safe = vehicle.get("drivingSafe", False)
    if not isinstance(driving_safe, bool):
        raise BundleError(f"{where}: vehicle.drivingSafe must be true or false")
    group = vehicle.get("group", "partner")
    if group not in GROUPS:
        raise BundleError(f"{where}: vehicle.group must be one of {', '.join(GROUPS)}")
    allow_list = _allow_list(vehicle.get("network", []), where)
    tab_routes = _tab_routes(doc.get("tabBar"), pages, where)
    title = window.get("navigationBarTitleText", "")
    if isinstance(title, str) and len(title) > 100:
        raise BundleError(f"{where}: window.navigationBarTitleText is longer than 100 characters")
    return Manifest(
        app_id=app_id,
        name=_text(vehicle, "name", where),
        version=version,
        pages=tuple(pages),
        title=title if isinstance(title, str) else "",
        driving_safe=driving_safe,
        permissions=tuple(permissions),
        runtime_min=low,
        runtime_max=high,
        publisher=vehicle.get("publisher", "") if isinstance(vehicle.get("publisher"), str) else "",
        group=group,
        allow_list=allow_list,
        tab_routes=tab_routes,
    )


LABEL = r"[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?"
HOST = re.compile(rf"^(\*\.)?{LABEL}(\.{LABEL})*(:(?P<port>\d{{1,5}}))?$")
MAX_ALLOW_LIST = 32


def _allow_list(value: Any, where: str) -> tuple[str, ...]:
    """``vehicle.network``: the hosts fc.request may reach (default: none)."""
    if not isinstance(value, list) or len(value) > MAX_ALLOW_LIST:
        raise BundleError(f"{where}: vehicle.network must list at most {MAX_ALLOW_LIST} host names")
    hosts = []
    for host in value:
        match = HOST.match(host.lower()) if isinstance(host, str) and len(host) <= 253 else None
        if not isinstance(host, str) or not match or not 0 < int(match.group("port") or 1) < 65536:
            raise BundleError(
                f"{where}: vehicle.network entry {host!r} must be a host name like 'api.dealer.example' "
                "(optionally with a port from 1 to 65535)"
            )
        hosts.append(host.lower())
    return tuple(hosts)


def _tab_routes(tab_bar: Any, pages: list[str], where: str) -> tuple[str, ...]:
    """``tabBar.list``: 2 to 5 tabs whose pagePath is one of the app's pages (as WeChat)."""
    if tab_bar is None:
        return ()
    items = tab_bar.get("list") if isinstance(tab_bar, dict) else None
    if not isinstance(items, list) or not 2 <= len(items) <= 5:
        raise BundleError(f"{where}: tabBar.list must have 2 to 5 items")
    routes = []
    for item in items:
        path = item.get("pagePath") if isinstance(item, dict) else None
        if path not in pages:
            raise BundleError(f"{where}: tabBar item {path!r} is not one of the app's pages")
        if not isinstance(item.get("text", ""), str) or len(item.get("text", "")) > 20:
            raise BundleError(f"{where}: tabBar item text must be at most 20 characters")
        routes.append(path)
    return tuple(routes)


def _text(section: dict[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise BundleError(f"{where}: vehicle.{key} must be a non-empty string of at most 200 characters")
    return value
