"""Custom components of a bundle: ``usingComponents`` maps, and the trees/styles of used components.

A component path is bundle-relative without extension (``components/card/card``); its folder holds
``card.json`` (with ``"component": true``), ``card.wxml``, and optionally ``card.wxss`` and ``card.js``.
``usingComponents`` values are absolute (``/components/card/card``) or relative to the json file.
app.json's ``usingComponents`` are global: pages and components may use them, their own entries win.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from vehicle_host.bundles.bundlefs import BundleFiles, resolve
from vehicle_host.bundles.templates import Budget, Linker
from vehicle_host.bundles.wxml_nodes import BUILTIN_TAGS, STRUCTURAL_TAGS
from vehicle_host.bundles.wxss import Loader, compile_wxss
from vehicle_host.errors import BundleError

MAX_COMPONENTS = 200
MAX_USING = 100
MAX_JSON_BYTES = 64 * 1024
_TAG = re.compile(r"[a-z][a-z0-9_-]*")


def read_json(files: BundleFiles, path: str) -> dict[str, Any]:
    """A JSON object file of the bundle ({} when the file is absent)."""
    if not files.exists(path):
        return {}
    try:
        doc = json.loads(files.read_text(path, MAX_JSON_BYTES))
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"{path} is not valid JSON: {type(exc).__name__}") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{path} must hold a JSON object")
    return doc


def using_components(files: BundleFiles, json_path: str, doc: Mapping[str, Any]) -> dict[str, str]:
    """``usingComponents`` of one json file as {tag: component path}, checked."""
    using = doc.get("usingComponents", {})
    if not isinstance(using, dict):
        raise BundleError(f"{json_path}: usingComponents must be an object of tag -> path")
    if len(using) > MAX_USING:
        raise BundleError(f"{json_path}: more than {MAX_USING} usingComponents")
    out: dict[str, str] = {}
    for tag, value in using.items():
        if (
            not isinstance(tag, str)
            or not _TAG.fullmatch(tag)
            or tag in BUILTIN_TAGS
            or tag in STRUCTURAL_TAGS
        ):
            raise BundleError(
                f"{json_path}: usingComponents tag {tag!r} must be lowercase letters, digits, - or _, "
                "and not a built-in component"
            )
        if not isinstance(value, str) or value.startswith("plugin://"):
            raise BundleError(f"{json_path}: usingComponents[{tag!r}] must be a path of this bundle")
        try:
            path = resolve(json_path, value)
        except ValueError as exc:
            raise BundleError(f"{json_path}: usingComponents[{tag!r}]: {exc}") from None
        if path.endswith((".js", ".json", ".wxml")):
            path = path.rsplit(".", 1)[0]
        if not files.exists(f"{path}.wxml") and files.exists(f"{path}/index.wxml"):
            path = f"{path}/index"
        if not files.exists(f"{path}.json") or not files.exists(f"{path}.wxml"):
            raise BundleError(f"{json_path}: component {value!r} ({path}.json / .wxml) is not in the bundle")
        out[tag] = path
    return out


def scope_of(path: str) -> str:
    """The CSS scope class prefix of a component (stable for a path)."""
    return "c" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:8]


def style_loader(files: BundleFiles) -> Loader:
    def load(base: str, target: str, line: int, column: int) -> tuple[str, str]:
        return files.read_at(base, target, line, column, ext=".wxss")

    return load


class ComponentSet:
    """Compiles the components a page uses, transitively, into ``{path: {tree, css, scope}}``."""

    def __init__(
        self,
        files: BundleFiles,
        budget: Budget,
        templates: dict[str, dict[str, Any]],
        global_using: Mapping[str, str],
    ) -> None:
        self.files = files
        self.budget = budget
        self.templates = templates
        self.global_using = dict(global_using)
        self.compiled: dict[str, dict[str, Any]] = {}
        self.using: dict[str, dict[str, str]] = {}  # component path -> its tag map

    def add_from_tree(self, *trees: Mapping[str, Any]) -> None:
        pending = [path for tree in trees for path in _used_paths(tree)]
        while pending:
            path = pending.pop()
            if path in self.compiled:
                continue
            if len(self.compiled) >= MAX_COMPONENTS:
                raise BundleError(f"the page uses more than {MAX_COMPONENTS} components (limit)")
            entry = self._compile(path)
            pending.extend(_used_paths(entry["tree"]))
            for key in list(self.templates):
                pending.extend(_used_paths(self.templates[key]))

    def _compile(self, path: str) -> dict[str, Any]:
        doc = read_json(self.files, f"{path}.json")
        if doc.get("component") is not True:
            raise BundleError(f'{path}.json: a component needs "component": true')
        using = {**self.global_using, **using_components(self.files, f"{path}.json", doc)}
        self.using[path] = using
        linker = Linker(self.files, self.budget, self.templates, using, in_component=True)
        tree = linker.link(f"{path}.wxml")
        scope = scope_of(path)
        css = ""
        if self.files.exists(f"{path}.wxss"):
            css = compile_wxss(
                self.files.read_text(f"{path}.wxss"),
                filename=f"{path}.wxss",
                load=style_loader(self.files),
                scope=scope,
            )
        entry = {"tree": tree, "css": css, "scope": scope}
        self.compiled[path] = entry
        return entry


def _used_paths(tree: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.get("k") == "comp":
            out.append(str(node["c"]))
        stack.extend(node.get("children", ()))
    return out
