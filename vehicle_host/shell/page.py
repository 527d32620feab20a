"""Builds the shell's top-level page from ``ui/`` and computes the renderer's CSP hash."""

from __future__ import annotations

import base64
import hashlib
import json
from importlib import resources


def _ui(name: str) -> str:
    return resources.files("vehicle_host.shell").joinpath(f"ui/{name}").read_text(encoding="utf-8")


#: The renderer's parts, concatenated in this order inside one function (they share its scope).
RENDERER_PARTS = (
    "renderer-core.js",
    "renderer-build.js",
    "renderer-dom.js",
    "renderer-widgets.js",
    "renderer-events.js",
    "renderer-picker.js",
    "renderer-main.js",
)


def renderer_source() -> str:
    """The page renderer as one script (its sha256 goes into the page frame's CSP)."""
    css = json.dumps(_ui("components.css")).replace("</", "<\\/")
    body = "\n".join(_ui(name) for name in RENDERER_PARTS)
    source = f'(function () {{\n"use strict";\nconst COMPONENT_CSS = {css};\n{body}\n}})();\n'
    if "</script" in source.lower():
        raise ValueError("the renderer must not contain '</script'")
    return source


def csp_hash(script: str) -> str:
    """The CSP source expression that lets exactly this inline script run."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def build(token: str) -> str:
    """The top-level HTML: launcher and chrome, with the bridge token and the renderer embedded."""
    renderer = renderer_source()
    boot = {"token": token, "renderer": renderer, "rendererHash": csp_hash(renderer)}
    boot_json = json.dumps(boot).replace("</", "<\\/")
    return (
        _ui("index.html")
        .replace("/*SHELL_CSS*/", _ui("shell.css"))
        .replace("/*BOOT_JSON*/", boot_json)
        .replace("/*SHELL_JS*/", _ui("shell.js"))
    )
