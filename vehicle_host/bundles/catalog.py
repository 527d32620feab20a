"""Installed mini-apps: find them in an apps directory and compile their pages for the shell."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vehicle_host.bundles.bundlefs import BundleFiles
from vehicle_host.bundles.manifest import Manifest, load_manifest
from vehicle_host.bundles.pages import CompiledPage, build_page, collect_config, collect_sources
from vehicle_host.errors import BundleError
from vehicle_host.wire import API_LEVEL

__all__ = [
    "Broken",
    "CompiledPage",
    "InstalledApp",
    "bundle_sources",
    "check_app",
    "compile_page",
    "listing",
    "page_config",
    "scan",
]

MAX_APPS = 200
MAX_ICON_BYTES = 16 * 1024
#: icons travel inline in the launcher listing; past this budget the launcher shows letter badges
ICON_BUDGET_BYTES = 384 * 1024


@dataclass(frozen=True, slots=True)
class InstalledApp:
    path: Path
    manifest: Manifest

    def summary(self, *, with_icon: bool = True) -> dict[str, Any]:
        """What the launcher shows for this app (plain data for the wire)."""
        m = self.manifest
        return {
            "id": m.app_id,
            "name": m.name,
            "version": m.version,
            "group": m.group,
            "publisher": m.publisher,
            "drivingSafe": m.driving_safe,
            "compatible": m.supports_api_level(),
            "permissions": list(m.permissions),
            "icon": self._icon() if with_icon else "",
        }

    def _icon(self) -> str:
        icon = self.path / "icon.png"
        try:
            if icon.is_file() and icon.stat().st_size <= MAX_ICON_BYTES:
                return "data:image/png;base64," + base64.b64encode(icon.read_bytes()).decode()
        except OSError:
            pass
        return ""


def listing(apps: list[InstalledApp]) -> list[dict[str, Any]]:
    """Launcher summaries, with icons only while they fit the listing's icon budget."""
    out: list[dict[str, Any]] = []
    spent = 0
    for app in apps:
        summary = app.summary()
        spent += len(summary["icon"])
        if spent > ICON_BUDGET_BYTES:
            summary["icon"] = ""
        out.append(summary)
    return out


@dataclass(frozen=True, slots=True)
class Broken:
    """A directory that looks like an app but failed to load; the launcher shows why."""

    path: Path
    error: str


def scan(apps_dir: Path) -> tuple[list[InstalledApp], list[Broken]]:
    """Every app directory (one holding app.json) under ``apps_dir``, sorted by name.

    When several directories hold versions of the same app (a cache keeps the previous one), the
    newest version this host's API level can run is used; a newer version it cannot run is
    reported as refused and the older one stays usable."""
    apps: list[InstalledApp] = []
    broken: list[Broken] = []
    if not apps_dir.is_dir():
        return apps, broken
    try:
        children = sorted(apps_dir.iterdir())[:MAX_APPS]
    except OSError as exc:
        broken.append(Broken(apps_dir, f"cannot list installed apps: {exc}"))
        return apps, broken
    versions: dict[str, list[InstalledApp]] = {}
    for link in children:
        if link.name.startswith("."):  # a cache's half-made activation link or object
            continue
        try:
            child = link.resolve()  # a cache's link: the app keeps its object when the link moves
            if not (child / "app.json").is_file():
                continue
            manifest = load_manifest(child)
        except BundleError as exc:
            broken.append(Broken(child, str(exc)))
            continue
        except (OSError, RuntimeError, MemoryError) as exc:  # unreadable, a link loop, hostile app.json
            broken.append(Broken(link, f"cannot load: {type(exc).__name__}"))
            continue
        versions.setdefault(manifest.app_id, []).append(InstalledApp(child, manifest))
    for candidates in versions.values():
        chosen, refused = _choose(candidates)
        apps.append(chosen)
        broken.extend(refused)
    apps.sort(key=lambda a: a.manifest.name.lower())
    return apps, broken


def _version_key(version: str) -> tuple[int, ...]:
    core = version.split("-", 1)[0].split("+", 1)[0]
    return tuple(int(part) for part in core.split("."))


def _choose(candidates: list[InstalledApp]) -> tuple[InstalledApp, list[Broken]]:
    """The version to run, and why each other copy is not used."""
    ordered = sorted(candidates, key=lambda a: _version_key(a.manifest.version), reverse=True)
    runnable = [a for a in ordered if a.manifest.supports_api_level()]
    chosen = runnable[0] if runnable else ordered[0]  # nothing runs: launching it explains why
    refused = []
    for app in ordered:
        if app is chosen:
            continue
        m = app.manifest
        if m.version == chosen.manifest.version:
            why = f"app id {m.app_id} version {m.version} is installed twice"
        elif not m.supports_api_level():
            why = (
                f"{m.name} {m.version} needs host API {m.runtime_min}-{m.runtime_max}; this head unit "
                f"provides {API_LEVEL}, so version {chosen.manifest.version} stays in use"
            )
        else:
            why = f"{m.name} {m.version} is older than {chosen.manifest.version}, which is in use"
        refused.append(Broken(app.path, why))
    return chosen, refused


def compile_page(app: InstalledApp, route: str) -> CompiledPage:
    """Compile a page: its WXML (with includes, templates and components), app.wxss + page .wxss +
    component styles, the merged window config and the tab bar.  Raises BundleError (TemplateError
    naming file, line and column for template and style problems)."""
    return build_page(BundleFiles(app.path), app.manifest, route)


def bundle_sources(app: InstalledApp) -> dict[str, str]:
    """Every JS file of the bundle (app.js, pages, components, modules they require) by bundle path,
    for ``worker.start.sources``.  Raises BundleError when app.js or a page's .js is missing or the
    total exceeds the limit."""
    return collect_sources(BundleFiles(app.path), app.manifest)


def page_config(app: InstalledApp) -> dict[str, Any]:
    """``worker.start.config``: pages, window, tabBar and usingComponents per page and component."""
    return collect_config(BundleFiles(app.path), app.manifest)


def check_app(app: InstalledApp) -> None:
    """Everything the host compiles when the app runs: every page, the JS sources and the page
    config, reading each file once. Raises BundleError (TemplateError naming file, line and column)."""
    files = BundleFiles(app.path)
    for route in app.manifest.pages:
        build_page(files, app.manifest, route)
    collect_sources(files, app.manifest)
    collect_config(files, app.manifest)
