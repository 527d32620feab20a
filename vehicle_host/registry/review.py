"""Automated review of a submission: each check passes or fails with a message a reviewer can act on.

The checks run on the uploaded bundle and the partner's signed role file before a human looks at
the submission; approval is refused while any check fails. They are: the archive unpacks within the
limits, the manifest is valid, the app id lies inside the partner's namespace, the declared
permissions and network domains lie within the partner's ceilings, every page compiles (WXML, WXSS,
components) and its scripts resolve, the role file is signed by the partner's delegated key and
lists exactly this bundle, and the version is new.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vehicle_host import releases
from vehicle_host.bundles import archive
from vehicle_host.bundles.catalog import InstalledApp, check_app
from vehicle_host.bundles.manifest import Manifest
from vehicle_host.errors import VehicleHostError
from vehicle_host.registry.db import Partner

MAX_MESSAGE = 500


class RoleChecker(Protocol):
    def check_partner_role(self, partner: str, role_json: bytes) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    message: str

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "message": self.message[:MAX_MESSAGE]}


def in_namespace(app_id: str, namespace: str) -> bool:
    """``com.acme.nav`` is inside ``com.acme``; ``com.acmex.nav`` and ``com.acme`` itself are not."""
    return app_id.startswith(namespace + ".")


def domain_allowed(host: str, ceiling: Iterable[str]) -> bool:
    """Whether manifest network entry ``host`` (maybe ``*.x`` or ``x:port``) lies within the ceiling.

    A ceiling entry ``api.acme.example`` covers that host on any port (``api.acme.example:443`` too);
    ``api.acme.example:8443`` covers only that port; ``*.acme.example`` covers every host below
    ``acme.example`` (and wildcards below it) but not ``acme.example`` itself."""
    name, _, port = host.lower().partition(":")
    for entry in ceiling:
        c_name, _, c_port = entry.lower().partition(":")
        if c_port and c_port != port:
            continue
        if c_name.startswith("*."):
            suffix = c_name[1:]  # ".acme.example"
            if name.endswith(suffix) and len(name) > len(suffix):
                return True
        elif name == c_name:
            return True
    return False


def _manifest_checks(manifest: Manifest, partner: Partner) -> list[Check]:
    checks = [
        Check("manifest", True, f"{manifest.app_id} {manifest.version}: {len(manifest.pages)} page(s)"),
    ]
    if in_namespace(manifest.app_id, partner.namespace):
        checks.append(Check("namespace", True, f"{manifest.app_id} is inside {partner.namespace}.*"))
    else:
        checks.append(
            Check(
                "namespace",
                False,
                f"app id {manifest.app_id} is outside partner {partner.id}'s namespace "
                f"{partner.namespace}.*; use an id like {partner.namespace}.<name>",
            )
        )
    extra = sorted(set(manifest.permissions) - set(partner.permissions))
    if extra:
        checks.append(
            Check(
                "permissions",
                False,
                f"permissions {', '.join(extra)} exceed partner {partner.id}'s ceiling "
                f"({', '.join(partner.permissions) or 'none'}); remove them or ask for a wider ceiling",
            )
        )
    else:
        checks.append(
            Check("permissions", True, f"{len(manifest.permissions)} permission(s) within the ceiling")
        )
    outside = [h for h in manifest.allow_list if not domain_allowed(h, partner.domains)]
    if outside:
        checks.append(
            Check(
                "domains",
                False,
                f"network domains {', '.join(outside)} exceed partner {partner.id}'s ceiling "
                f"({', '.join(partner.domains) or 'none'}); remove them or ask for a wider ceiling",
            )
        )
    else:
        checks.append(Check("domains", True, f"{len(manifest.allow_list)} domain(s) within the ceiling"))
    return checks


def _compile_checks(app_dir: Path, manifest: Manifest) -> Check:
    try:
        check_app(InstalledApp(app_dir, manifest))
    except VehicleHostError as exc:
        return Check("templates", False, f"{exc}; fix it and publish a new version")
    except (RecursionError, MemoryError) as exc:
        return Check("templates", False, f"compiling the pages failed ({type(exc).__name__}); simplify them")
    return Check("templates", True, f"{len(manifest.pages)} page(s) compile, scripts resolve")


def _signature_check(
    repo: RoleChecker, partner: Partner, role_json: bytes, info: archive.BundleInfo
) -> Check:
    path = releases.target_path(info.manifest.app_id, info.manifest.version)
    try:
        targets = repo.check_partner_role(partner.id, role_json)
    except VehicleHostError as exc:  # TrustError
        return Check("signature", False, str(exc))
    for t in targets:
        if t.get("path") == path:
            if t.get("length") == info.size and t.get("sha256") == info.sha256:
                return Check("signature", True, f"role signed by {partner.id}'s key lists {path}")
            return Check(
                "signature",
                False,
                f"the signed role lists {path} with other content than the uploaded bundle; sign this bundle",
            )
    return Check("signature", False, f"the signed role does not list {path}; sign the bundle into the role")


def review(
    bundle: Path,
    info: archive.BundleInfo,
    partner: Partner,
    role_json: bytes,
    repo: RoleChecker,
    *,
    known_versions: Iterable[str] = (),
    limits: archive.Limits | None = None,
) -> list[Check]:
    """Every automated check of one submission (never raises for a bad bundle: the check fails)."""
    checks = []
    with tempfile.TemporaryDirectory(prefix="vh-review-") as tmp:
        app_dir = Path(tmp) / "app"
        try:
            manifest = archive.extract(bundle, app_dir, limits or archive.Limits())
        except VehicleHostError as exc:
            return [Check("archive", False, f"{exc}")]
        checks.append(
            Check(
                "archive",
                True,
                f"{len(info.files)} files, {info.size} B packed, {info.unpacked} B unpacked (within limits)",
            )
        )
        checks.extend(_manifest_checks(manifest, partner))
        checks.append(_compile_checks(app_dir, manifest))
    checks.append(_signature_check(repo, partner, role_json, info))
    if manifest.version in set(known_versions):
        checks.append(
            Check(
                "version",
                False,
                f"{manifest.app_id} {manifest.version} was already approved; bump the version",
            )
        )
    else:
        checks.append(Check("version", True, f"{manifest.version} is a new version"))
    return checks
