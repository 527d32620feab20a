"""``vehicle-host new``: a complete mini-app that runs at once (a page with a tap counter, a module,
a custom component and a README), from the template shipped with the package."""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from vehicle_host.bundles.manifest import GROUPS, parse_manifest
from vehicle_host.errors import BundleError, VehicleHostError

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
MAX_TEMPLATE_FILES = 64
TEXT_SUFFIXES = (".js", ".json", ".wxml", ".wxss", ".md")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the app's name, also its directory name (letters, digits, - and _)")
    parser.add_argument("--dir", help="where to create it (default ./NAME); must be missing or empty")
    parser.add_argument("--id", dest="app_id", help="reverse-DNS app id (default com.example.NAME)")
    parser.add_argument("--group", default="driver", choices=GROUPS, help="launcher section (default driver)")
    parser.add_argument(
        "--driving-safe", action="store_true", help="the app may stay on screen while the car moves"
    )


def run(args: argparse.Namespace) -> int:
    try:
        target = scaffold(
            args.name,
            Path(args.dir) if args.dir else None,
            app_id=args.app_id,
            group=args.group,
            driving_safe=args.driving_safe,
        )
    except VehicleHostError as exc:
        print(f"vehicle-host new: {exc}", file=sys.stderr)
        return 2
    print(f"created {target}")
    print(f"run it:  vehicle-host dev {target}")
    return 0


def default_id(name: str) -> str:
    return "com.example." + name.lower()


def manifest_document(name: str, app_id: str, group: str, driving_safe: bool) -> dict[str, Any]:
    return {
        "pages": ["pages/index/index"],
        "window": {"navigationBarTitleText": name},
        "vehicle": {
            "id": app_id,
            "name": name,
            "version": "0.1.0",
            "runtime": {"min": 1, "max": 1},
            "drivingSafe": driving_safe,
            "group": group,
            "permissions": [],
            "network": [],
            "publisher": "",
        },
    }


def scaffold(
    name: str,
    target: Path | None = None,
    *,
    app_id: str | None = None,
    group: str = "driver",
    driving_safe: bool = False,
) -> Path:
    """Write the app into ``target`` (default ``./name``) and return its path.

    Raises BundleError for a bad name or id, VehicleHostError when ``target`` is not empty."""
    if not NAME.match(name):
        raise BundleError(
            f"app name {name!r} must start with a letter and hold only letters, digits, '-' and '_' "
            "(at most 63 characters), e.g. 'trip-log'"
        )
    app_id = app_id or default_id(name)
    doc = manifest_document(name, app_id, group, driving_safe)
    try:
        parse_manifest(doc, where="app.json")
    except BundleError as exc:
        hint = " Choose one with --id." if "vehicle.id" in str(exc) else ""
        raise BundleError(f"{exc}.{hint}") from None
    target = (target or Path(name)).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise VehicleHostError(f"{target} is not empty; choose another --dir or remove it first")
    files = _template_files()
    values = {"__NAME__": name, "__ID__": app_id, "__DIR__": str(target)}
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / "app.json").write_text(json.dumps(doc, indent=2) + "\n")
        for relative, text in files.items():
            for key, value in values.items():
                text = text.replace(key, value)
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    except OSError as exc:
        raise VehicleHostError(f"cannot write the app into {target}: {exc.strerror}") from None
    return target


def _template_files() -> dict[str, str]:
    """The template's text files by path inside the app."""
    root = resources.files("vehicle_host.devkit").joinpath("template")
    out: dict[str, str] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for entry in sorted(node.iterdir(), key=lambda e: e.name):
            path = f"{prefix}{entry.name}"
            if entry.is_dir():
                walk(entry, path + "/")
            elif entry.name.endswith(TEXT_SUFFIXES):
                if len(out) >= MAX_TEMPLATE_FILES:
                    raise VehicleHostError("the app template holds too many files; reinstall vehicle-host")
                out[path] = entry.read_text(encoding="utf-8")

    walk(root, "")
    if "pages/index/index.js" not in out:
        raise VehicleHostError("the app template is missing from this installation; reinstall vehicle-host")
    return out
