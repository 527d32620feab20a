"""Build what the hub sends for a page (``page.open``) and for a worker (``worker.start``)."""

from __future__ import annotations

import base64
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vehicle_host.bundles.bundlefs import BundleFiles
from vehicle_host.bundles.components import ComponentSet, read_json, style_loader, using_components
from vehicle_host.bundles.manifest import Manifest
from vehicle_host.bundles.templates import IMAGE_TYPES, Budget, Linker
from vehicle_host.bundles.wxss import compile_wxss
from vehicle_host.errors import BundleError

MAX_TITLE_CHARS = 100
MAX_SOURCES_BYTES = 768 * 1024
MAX_SOURCE_FILES = 1000
MAX_WALK_ENTRIES = 5000
MAX_TAB_ICON_BYTES = 40 * 1024
WINDOW_KEYS = frozenset(
    {
        "navigationBarBackgroundColor", "navigationBarTextStyle", "navigationBarTitleText", "navigationStyle",
        "backgroundColor", "backgroundTextStyle", "backgroundColorTop", "backgroundColorBottom",
        "enablePullDownRefresh", "onReachBottomDistance", "pageOrientation", "disableScroll",
        "disableSwipeBack", "homeButton",
    }
)  # fmt: skip
_TAB_STYLE_KEYS = ("color", "selectedColor", "backgroundColor", "borderStyle", "position")


@dataclass(frozen=True, slots=True)
class CompiledPage:
    """Everything ``page.open`` carries for one page (see ``docs/design/runtime-protocol.md``)."""

    route: str
    title: str
    tree: dict[str, Any]
    css: str
    templates: dict[str, Any] = field(default_factory=dict)  # "<file>#<name>" -> {"k": "root", ...}
    components: dict[str, Any] = field(default_factory=dict)  # path -> {"tree", "css", "scope"}
    window: dict[str, Any] = field(default_factory=dict)
    tab_bar: dict[str, Any] = field(default_factory=dict)  # only on tab pages

    def open_payload(self) -> dict[str, Any]:
        """The page fields of ``page.open`` (the hub adds app_id, page_id and mode)."""
        payload: dict[str, Any] = {
            "route": self.route,
            "title": self.title,
            "tree": self.tree,
            "css": self.css,
        }
        payload.update(templates=self.templates, components=self.components, window=self.window)
        if self.tab_bar:
            payload["tab_bar"] = self.tab_bar
        return payload


def window_config(*docs: Mapping[str, Any]) -> dict[str, Any]:
    """Window settings merged in order (later wins); only known keys with scalar values are kept."""
    out: dict[str, Any] = {}
    for doc in docs:
        for key, value in doc.items():
            if key not in WINDOW_KEYS or isinstance(value, (dict, list)) or value is None:
                continue
            if isinstance(value, str):
                value = value[:200]
            out[key] = value
    return out


def build_page(files: BundleFiles, manifest: Manifest, route: str) -> CompiledPage:
    if route not in manifest.pages:
        raise BundleError(f"{manifest.app_id}: page {route!r} is not listed in app.json")
    app_doc = read_json(files, "app.json")
    global_using = using_components(files, "app.json", app_doc)
    page_doc = read_json(files, f"{route}.json")
    using = {**global_using, **using_components(files, f"{route}.json", page_doc)}
    budget = Budget()
    templates: dict[str, Any] = {}
    if not files.exists(f"{route}.wxml"):
        raise BundleError(f"{route}.wxml: missing from the bundle")
    tree = Linker(files, budget, templates, using).link(f"{route}.wxml")
    components = ComponentSet(files, budget, templates, global_using)
    components.add_from_tree(tree, *templates.values())
    css_parts = []
    for name in ("app.wxss", f"{route}.wxss"):
        if files.exists(name):
            css_parts.append(compile_wxss(files.read_text(name), filename=name, load=style_loader(files)))
    app_window = app_doc.get("window") if isinstance(app_doc.get("window"), dict) else {}
    window = window_config(app_window or {}, page_doc)
    title = window.get("navigationBarTitleText")
    if not isinstance(title, str) or not title:
        title = manifest.title or manifest.name
    return CompiledPage(
        route=route,
        title=title[:MAX_TITLE_CHARS],
        tree=tree,
        css="\n".join(css_parts),
        templates=templates,
        components=components.compiled,
        window=window,
        tab_bar=_tab_bar(files, app_doc.get("tabBar"), route),
    )


def _tab_bar(files: BundleFiles, raw: Any, route: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("list"), list):
        return {}
    items = [i for i in raw["list"] if isinstance(i, dict) and isinstance(i.get("pagePath"), str)][:5]
    if route not in [i["pagePath"] for i in items]:
        return {}
    out: dict[str, Any] = {k: str(raw[k])[:32] for k in _TAB_STYLE_KEYS if isinstance(raw.get(k), str)}
    out["list"] = []
    for item in items:
        entry = {"pagePath": item["pagePath"], "text": str(item.get("text", ""))[:20]}
        for key in ("iconPath", "selectedIconPath"):
            path = item.get(key)
            mime = IMAGE_TYPES.get(posixpath.splitext(path)[1].lower()) if isinstance(path, str) else None
            if isinstance(path, str) and mime and files.exists(path.lstrip("/")):
                raw_icon = files.read_bytes(path.lstrip("/"), MAX_TAB_ICON_BYTES)
                entry[key] = f"data:{mime};base64,{base64.b64encode(raw_icon).decode('ascii')}"
        out["list"].append(entry)
    return out


# --------------------------------------------------------------------------- worker.start


def _component_closure(files: BundleFiles, manifest: Manifest) -> dict[str, dict[str, str]]:
    """Every component reachable from the pages through usingComponents: path -> its tag map."""
    app_doc = read_json(files, "app.json")
    global_using = using_components(files, "app.json", app_doc)
    pending = list(global_using.values())
    for route in manifest.pages:
        pending.extend(using_components(files, f"{route}.json", read_json(files, f"{route}.json")).values())
    found: dict[str, dict[str, str]] = {}
    while pending:
        path = pending.pop()
        if path in found:
            continue
        own = using_components(files, f"{path}.json", read_json(files, f"{path}.json"))
        found[path] = {**global_using, **own}
        pending.extend(own.values())
    return found


def collect_config(files: BundleFiles, manifest: Manifest) -> dict[str, Any]:
    app_doc = read_json(files, "app.json")
    global_using = using_components(files, "app.json", app_doc)
    using: dict[str, dict[str, str]] = {}
    for route in manifest.pages:
        own = using_components(files, f"{route}.json", read_json(files, f"{route}.json"))
        using[route] = {**global_using, **own}
    config: dict[str, Any] = {
        "pages": list(manifest.pages),
        "window": window_config(app_doc["window"]) if isinstance(app_doc.get("window"), dict) else {},
        "usingComponents": using,
        "components": {p: {"usingComponents": u} for p, u in _component_closure(files, manifest).items()},
    }
    if isinstance(app_doc.get("tabBar"), dict):
        config["tabBar"] = app_doc["tabBar"]
    return config


def collect_sources(files: BundleFiles, manifest: Manifest) -> dict[str, str]:
    required = ["app.js", *(f"{route}.js" for route in manifest.pages)]
    required += [f"{path}.js" for path in _component_closure(files, manifest)]
    for path in required:
        if not files.exists(path):
            raise BundleError(f"{path}: missing from the bundle (every page and component needs its .js)")
    sources: dict[str, str] = {}
    total = 0
    for path in _js_files(files):
        text = files.read_text(path)
        total += len(text.encode("utf-8"))
        if total > MAX_SOURCES_BYTES or len(sources) >= MAX_SOURCE_FILES:
            raise BundleError(
                f"the bundle's JavaScript exceeds {MAX_SOURCES_BYTES // 1024} KB "
                f"or {MAX_SOURCE_FILES} files; "
                "remove unused .js files or minify them"
            )
        sources[path] = text
    return sources


def _js_files(files: BundleFiles) -> list[str]:
    out: list[str] = []
    seen = 0
    for folder, dirs, names in os.walk(files.root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        seen += len(dirs) + len(names)
        if seen > MAX_WALK_ENTRIES:
            raise BundleError(f"the bundle has more than {MAX_WALK_ENTRIES} files and folders")
        rel = os.path.relpath(folder, files.root)
        for name in sorted(names):
            if name.endswith(".js") and not name.startswith("."):
                out.append(name if rel == "." else posixpath.join(rel.replace(os.sep, "/"), name))
    return out
