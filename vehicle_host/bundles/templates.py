"""Link the WXML files of one page (or component): ``<import>``, ``<include>``, templates and images.

* ``<include src>`` is replaced by the included file's content (everything but its template
  definitions); includes nest, cycles are refused.
* ``<import src>`` makes the imported file's own templates visible (not the ones it imports itself,
  as WeChat); a template defined in the file wins over an imported one of the same name.
* ``<template is="name">`` with a static name gets ``"ref": key``; with an expression it gets
  ``"refs": {name: key}`` of every visible template.  Keys are ``"<file>#<name>"`` and index the
  page-level templates map ``{key: {"k": "root", "children": [...]}}`` sent in ``page.open``.
* ``<image src="a.png">`` with a bundle path is inlined as a ``data:`` URL (the page frame cannot load
  files or network).

Every path stays inside the bundle; limits bound files, nodes, templates and image bytes per page.
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vehicle_host.bundles.bundlefs import BundleFiles, resolve
from vehicle_host.bundles.wxml import WxmlFile, parse_wxml
from vehicle_host.bundles.wxml_nodes import url_scheme
from vehicle_host.errors import BundleError, TemplateError

MAX_FILES = 64
MAX_INCLUDE_DEPTH = 8
MAX_PAGE_NODES = 50_000
MAX_TEMPLATES = 1000
MAX_IMAGE_BYTES = 128 * 1024
MAX_PAGE_IMAGE_BYTES = 512 * 1024
IMAGE_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".svg": "image/svg+xml", ".bmp": "image/bmp",
}  # fmt: skip


_IMAGE_FUNCTION = re.compile(r"(?<![\w-])(?:-webkit-)?(?:image-set|cross-fade|image|element)\s*\(", re.I)
_INDIRECT = re.compile(r"(?:var|attr|env)\s*\(|\\", re.I)
_STRING = re.compile(r"\"[^\"]*\"|'[^']*'")


def check_static_values(path: str, node: Mapping[str, Any]) -> None:
    """Refuse what a template writes that would load from outside once drawn: strings loaded as images
    by ``image-set()``/``cross-fade()``/``image()`` in a style, and ``//host`` navigator targets
    (the renderer drops both at run time too; here the author learns it at compile time)."""
    attrs = node.get("attrs") or {}
    line = int(node.get("line", 0))
    literal = "".join(p for p in attrs.get("style") or () if isinstance(p, str))
    strings = [m.group(0)[1:].strip().lower() for m in _STRING.finditer(literal)]
    if _IMAGE_FUNCTION.search(literal) and (
        _INDIRECT.search(literal) or not all(text.startswith("data:image/") for text in strings)
    ):
        raise TemplateError(
            "style may only give data:image/... strings to image-set(), cross-fade() or image() "
            "(no network URLs, var(), attr() or escapes there); ship the image in the bundle",
            filename=path,
            line=line,
        )
    url = attrs.get("url") or ()
    first = url[0] if url else None
    if (
        node.get("tag") == "navigator"
        and isinstance(first, str)
        and (first.strip().startswith("//") or "\\" in first)
    ):
        raise TemplateError(
            f"navigator url {first[:80]!r} must be a page path of this app (no //host, no backslashes)",
            filename=path,
            line=line,
        )


@dataclass
class Budget:
    """Limits shared by every file compiled for one page (page, templates, components)."""

    files: int = 0
    nodes: int = 0
    image_bytes: int = 0
    images: dict[str, str] = field(default_factory=dict)

    def add_file(self, name: str) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            raise TemplateError(f"the page uses more than {MAX_FILES} WXML files (limit)", filename=name)


class Linker:
    """Links one root file and what it includes/imports; ``templates`` collects every used template."""

    def __init__(
        self,
        files: BundleFiles,
        budget: Budget,
        templates: dict[str, dict[str, Any]],
        components: Mapping[str, str],
        *,
        in_component: bool = False,
    ) -> None:
        self.files = files
        self.budget = budget
        self.templates = templates
        self.components = components
        self.in_component = in_component
        self._parsed: dict[str, WxmlFile] = {}
        self._scopes: dict[str, dict[str, str]] = {}

    def parse(self, path: str, source: str | None = None) -> WxmlFile:
        parsed = self._parsed.get(path)
        if parsed is None:
            self.budget.add_file(path)
            text = self.files.read_text(path) if source is None else source
            parsed = parse_wxml(
                text, filename=path, components=self.components, in_component=self.in_component
            )
            self._parsed[path] = parsed
        return parsed

    def link(self, path: str) -> dict[str, Any]:
        """The linked tree of the file at ``path``."""
        parsed = self.parse(path)
        return {"k": "root", "children": self._children(path, parsed.tree["children"], (path,))}

    # ------------------------------------------------------------------ scopes

    def _scope(self, path: str) -> dict[str, str]:
        scope = self._scopes.get(path)
        if scope is not None:
            return scope
        parsed = self.parse(path)
        scope = {}
        for src, line, column in parsed.imports:
            target = self._resolve(path, src, line, column)
            for name in self.parse(target).templates:
                scope[name] = f"{target}#{name}"
        for name in parsed.templates:
            scope[name] = f"{path}#{name}"
        self._scopes[path] = scope
        return scope

    def _use(self, key: str) -> None:
        if key in self.templates:
            return
        if len(self.templates) >= MAX_TEMPLATES:
            raise TemplateError(f"the page uses more than {MAX_TEMPLATES} templates (limit)", filename=key)
        path, name = key.split("#", 1)
        self.templates[key] = {"k": "root", "children": []}  # placeholder: recursion stops here
        body = self.parse(path).templates[name]
        self.templates[key]["children"] = self._children(path, body["children"], (path,))

    def _resolve(self, base: str, src: str, line: int, column: int) -> str:
        try:
            target = resolve(base, src, ext=".wxml")
        except ValueError as exc:
            raise TemplateError(str(exc), filename=base, line=line, column=column) from None
        if not self.files.exists(target):
            raise TemplateError(
                f"{src!r} ({target}) is not in the bundle", filename=base, line=line, column=column
            )
        return target

    # ------------------------------------------------------------------ nodes

    def _count(self, path: str, node: Mapping[str, Any]) -> None:
        self.budget.nodes += 1
        if self.budget.nodes > MAX_PAGE_NODES:
            raise TemplateError(
                f"the page has more than {MAX_PAGE_NODES} template nodes with its includes (limit)",
                filename=path,
                line=int(node.get("line", 0)),
            )

    def _children(
        self, path: str, nodes: list[dict[str, Any]], stack: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for node in nodes:
            kind = node["k"]
            if kind == "include":
                out.extend(self._include(path, node, stack))
                continue
            self._count(path, node)
            copy = dict(node)
            if kind == "el":
                check_static_values(path, copy)
            if kind == "tpl":
                self._template_ref(path, copy)
            elif kind == "el" and copy.get("tag") == "image":
                self._inline_image(path, copy)
            if "children" in copy:
                copy["children"] = self._children(path, node["children"], stack)
            out.append(copy)
        return out

    def _include(self, path: str, node: dict[str, Any], stack: tuple[str, ...]) -> list[dict[str, Any]]:
        line, column = int(node["line"]), int(node["col"])
        target = self._resolve(path, node["src"], line, column)
        if target in stack:
            chain = " -> ".join((*stack, target))
            raise TemplateError(f"<include> cycle: {chain}", filename=path, line=line, column=column)
        if len(stack) > MAX_INCLUDE_DEPTH:
            raise TemplateError(
                f"<include> nests deeper than {MAX_INCLUDE_DEPTH} files",
                filename=path,
                line=line,
                column=column,
            )
        return self._children(target, self.parse(target).tree["children"], (*stack, target))

    def _template_ref(self, path: str, node: dict[str, Any]) -> None:
        scope = self._scope(path)
        parts = node["is"]
        if len(parts) == 1 and isinstance(parts[0], str):
            name = parts[0].strip()
            if name not in scope:
                known = ", ".join(sorted(scope)) or "none"
                raise TemplateError(
                    f"template {name!r} is not defined or imported in this file (visible: {known})",
                    filename=path,
                    line=int(node["line"]),
                )
            node["ref"] = scope[name]
            self._use(scope[name])
            return
        node["refs"] = dict(scope)
        for key in scope.values():
            self._use(key)

    def _inline_image(self, path: str, node: dict[str, Any]) -> None:
        src = node["attrs"].get("src")
        if not src or len(src) != 1 or not isinstance(src[0], str) or url_scheme(src[0]):
            return
        line = int(node["line"])
        try:
            target = resolve(path, src[0])
        except ValueError as exc:
            raise TemplateError(str(exc), filename=path, line=line) from None
        node["attrs"] = {**node["attrs"], "src": [self.image(target, path, line)]}

    def image(self, target: str, where: str, line: int = 0) -> str:
        """The ``data:`` URL of an image file of the bundle (counted against the page's budget)."""
        cached = self.budget.images.get(target)
        if cached is not None:
            return cached
        mime = IMAGE_TYPES.get(posixpath.splitext(target)[1].lower())
        if mime is None:
            raise TemplateError(f"{target}: not an image type this host shows", filename=where, line=line)
        try:
            raw = self.files.read_bytes(target, MAX_IMAGE_BYTES)
        except BundleError as exc:
            raise TemplateError(str(exc), filename=where, line=line) from None
        self.budget.image_bytes += len(raw)
        if self.budget.image_bytes > MAX_PAGE_IMAGE_BYTES:
            raise TemplateError(
                f"images of the page exceed {MAX_PAGE_IMAGE_BYTES // 1024} KiB (limit)",
                filename=where,
                line=line,
            )
        url = f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"
        self.budget.images[target] = url
        return url
