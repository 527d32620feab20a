"""Builds the shell's top-level page from ``ui/`` and computes the renderer's CSP hash."""

from __future__ import annotations

import base64
import hashlib
import json
from importlib import resources


def _ui(name: str) -> str:
    return resources.files("vehicle_host.shell").joinpath(f"ui/{name}").read_text(encoding="utf-8")


def renderer_source() -> str:
    source = _ui("renderer.js")
    if "</script" in source.lower():
        raise ValueError("renderer.js must not contain '</script'")
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
