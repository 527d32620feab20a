"""Installed mini-apps: find them in an apps directory and compile their pages for the shell."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vehicle_host.bundles.manifest import Manifest, load_manifest
from vehicle_host.bundles.wxml import compile_wxml
from vehicle_host.bundles.wxss import compile_wxss
from vehicle_host.errors import BundleError

MAX_APPS = 200
MAX_ICON_BYTES = 16 * 1024
#: icons travel inline in the launcher listing; past this budget the launcher shows letter badges
ICON_BUDGET_BYTES = 384 * 1024
MAX_PAGE_FILE_BYTES = 512 * 1024
MAX_TITLE_CHARS = 100


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
class CompiledPage:
    route: str
    title: str
    tree: dict[str, Any]
    css: str


@dataclass(frozen=True, slots=True)
class Broken:
    """A directory that looks like an app but failed to load; the launcher shows why."""

    path: Path
    error: str


def scan(apps_dir: Path) -> tuple[list[InstalledApp], list[Broken]]:
    """Every app directory (one holding app.json) under ``apps_dir``, sorted by name."""
    apps: list[InstalledApp] = []
    broken: list[Broken] = []
    if not apps_dir.is_dir():
        return apps, broken
    seen: set[str] = set()
    try:
        children = sorted(apps_dir.iterdir())[:MAX_APPS]
    except OSError as exc:
        broken.append(Broken(apps_dir, f"cannot list installed apps: {exc}"))
        return apps, broken
    for child in children:
        try:
            if not (child / "app.json").is_file():
                continue
            manifest = load_manifest(child)
        except BundleError as exc:
            broken.append(Broken(child, str(exc)))
            continue
        except (OSError, RecursionError, MemoryError) as exc:  # unreadable or hostile app.json
            broken.append(Broken(child, f"cannot load: {type(exc).__name__}"))
            continue
        if manifest.app_id in seen:
            broken.append(Broken(child, f"app id {manifest.app_id} is installed twice"))
            continue
        seen.add(manifest.app_id)
        apps.append(InstalledApp(child, manifest))
    apps.sort(key=lambda a: a.manifest.name.lower())
    return apps, broken


def compile_page(app: InstalledApp, route: str) -> CompiledPage:
    """Compile a page's WXML and its styles (app.wxss then the page's .wxss)."""
    if route not in app.manifest.pages:
        raise BundleError(f"{app.manifest.app_id}: page {route!r} is not listed in app.json")
    tree = compile_wxml(_read(app.path, f"{route}.wxml"), filename=f"{route}.wxml")
    css_parts = []
    for name in ("app.wxss", f"{route}.wxss"):
        if (app.path / name).is_file():
            css_parts.append(compile_wxss(_read(app.path, name), filename=name))
    title = (app.manifest.title or app.manifest.name)[:MAX_TITLE_CHARS]
    page_json = app.path / f"{route}.json"
    if page_json.is_file():
        try:
            doc = json.loads(_read(app.path, f"{route}.json"))
        except (ValueError, RecursionError) as exc:
            raise BundleError(f"{route}.json is not valid JSON: {type(exc).__name__}") from None
        if isinstance(doc, dict) and isinstance(doc.get("navigationBarTitleText"), str):
            title = doc["navigationBarTitleText"][:MAX_TITLE_CHARS]
    return CompiledPage(route=route, title=title, tree=tree, css="\n".join(css_parts))


def _read(root: Path, relative: str) -> str:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise BundleError(f"{relative}: path leaves the bundle")
    try:
        if path.stat().st_size > MAX_PAGE_FILE_BYTES:
            raise BundleError(f"{relative}: larger than {MAX_PAGE_FILE_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(f"{relative}: missing from the bundle") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{relative}: cannot be read: {exc}") from None
