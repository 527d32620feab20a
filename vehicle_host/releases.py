"""The release document (``releases.json``) the registry signs and head units follow.

One TUF target of the registry's top-level targets role lists, per app, the stable version every
vehicle gets, an optional gray rollout (a newer version for a stable cohort of vehicles) and an
optional A/B experiment (two variants for complementary cohorts). A vehicle's cohort is a stable
hash of the app id and the vehicle id, so widening a rollout from 5 % to 25 % keeps the first 5 %
and adds more, and different apps sample different vehicles.

Both sides use this module: the registry to write the document and count its fleet, the head unit
to pick its version. It is pure (no I/O).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from vehicle_host.bundles import manifest
from vehicle_host.errors import VehicleHostError

FORMAT = 1
BUCKETS = 10_000  # a percentage has two decimals of resolution
MAX_APPS = 500
APP_ID = manifest.APP_ID  # releases name apps and versions exactly as their app.json does
VERSION = manifest.VERSION
TARGET = re.compile(r"^apps/[a-z0-9_.-]+/[0-9A-Za-z.+-]+/[0-9A-Za-z_.+-]+\.vhb$")


class ReleaseError(VehicleHostError):
    """The release document is malformed."""


def bucket(app_id: str, vehicle_id: str) -> int:
    """The vehicle's cohort bucket for this app, in ``[0, BUCKETS)``; stable across runs."""
    digest = hashlib.sha256(f"{app_id}\n{vehicle_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_percent(app_id: str, vehicle_id: str, percent: float) -> bool:
    return bucket(app_id, vehicle_id) < round(percent * BUCKETS / 100)


@dataclass(frozen=True, slots=True)
class Choice:
    """What one vehicle runs of one app."""

    app_id: str
    version: str
    target: str
    track: str  # "stable", "rollout" or "variant:<name>"
    urgent: bool = False


def choose(app_id: str, entry: dict[str, Any], vehicle_id: str) -> Choice:
    """The version ``vehicle_id`` should run, from one checked ``apps`` entry."""
    experiment = entry.get("experiment")
    if experiment:
        variants = experiment["variants"]
        b = bucket(app_id + "#" + experiment["name"], vehicle_id)
        name = "A" if b < round(experiment["split"] * BUCKETS / 100) else "B"
        v = variants[name]
        return Choice(app_id, v["version"], v["target"], f"variant:{name}")
    rollout = entry.get("rollout")
    if rollout and in_percent(app_id, vehicle_id, rollout["percent"]):
        return Choice(app_id, rollout["version"], rollout["target"], "rollout", bool(rollout.get("urgent")))
    stable = entry["stable"]
    return Choice(app_id, stable["version"], stable["target"], "stable", bool(stable.get("urgent")))


def check(doc: Any) -> dict[str, dict[str, Any]]:
    """Validate a decoded ``releases.json``; return its ``apps`` mapping or raise ReleaseError."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ReleaseError(f"releases.json must be an object with format {FORMAT}")
    apps = doc.get("apps")
    if not isinstance(apps, dict) or len(apps) > MAX_APPS:
        raise ReleaseError(f"releases.json 'apps' must map at most {MAX_APPS} app ids")
    for app_id, entry in apps.items():
        if not isinstance(app_id, str) or not APP_ID.match(app_id):
            raise ReleaseError(f"releases.json: bad app id {app_id!r}")
        if not isinstance(entry, dict):
            raise ReleaseError(f"releases.json: {app_id} must be an object")
        _pin(app_id, "stable", entry.get("stable"))
        rollout = entry.get("rollout")
        if rollout is not None:
            _pin(app_id, "rollout", rollout)
            _percent(app_id, "rollout.percent", rollout.get("percent"))
        experiment = entry.get("experiment")
        if experiment is not None:
            if not isinstance(experiment, dict) or not isinstance(experiment.get("name"), str):
                raise ReleaseError(f"releases.json: {app_id}.experiment needs a name")
            variants = experiment.get("variants")
            if not isinstance(variants, dict) or set(variants) != {"A", "B"}:
                raise ReleaseError(f"releases.json: {app_id}.experiment needs variants A and B")
            for name, pin in variants.items():
                _pin(app_id, f"experiment.{name}", pin)
            _percent(app_id, "experiment.split", experiment.get("split"))
    return apps


def _pin(app_id: str, where: str, pin: Any) -> None:
    if not isinstance(pin, dict):
        raise ReleaseError(f"releases.json: {app_id}.{where} must be an object")
    version, target = pin.get("version"), pin.get("target")
    if not isinstance(version, str) or not VERSION.match(version):
        raise ReleaseError(f"releases.json: {app_id}.{where}.version {version!r} is not a version")
    if not isinstance(target, str) or not TARGET.match(target) or f"/{app_id}/" not in f"/{target}":
        raise ReleaseError(f"releases.json: {app_id}.{where}.target {target!r} is not this app's bundle")
    if not isinstance(pin.get("urgent", False), bool):
        raise ReleaseError(f"releases.json: {app_id}.{where}.urgent must be true or false")


def _percent(app_id: str, where: str, value: Any) -> None:
    if type(value) not in (int, float) or not 0 <= value <= 100:
        raise ReleaseError(f"releases.json: {app_id}.{where} must be a number from 0 to 100")


def target_path(app_id: str, version: str) -> str:
    """Where a bundle lives in the repository; partner roles are delegated ``apps/<ns>.*/*/*``."""
    return f"apps/{app_id}/{version}/{app_id}-{version}.vhb"
