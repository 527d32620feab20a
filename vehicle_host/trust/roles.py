"""Partner side: one delegated TUF targets role per partner, signed with the partner's own key.

A partner keeps its role file (``<partner>.json``), adds each new bundle to it with
:func:`sign_bundle` and uploads the file to the registry, which checks it against the delegation
(see ``repository.RegistryRepository.check_partner_role``) before publishing it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from securesystemslib.exceptions import UnverifiedSignatureError
from tuf.api.exceptions import LengthOrHashMismatchError

from vehicle_host import releases
from vehicle_host.bundles import archive
from vehicle_host.trust.errors import TrustError
from vehicle_host.trust.keys import load_public_key
from vehicle_host.trust.tufapi import Metadata, Signer, TargetFile, Targets

PARTNER = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
TOP_LEVEL = frozenset({"root", "targets", "snapshot", "timestamp"})
MAX_ROLE_FILE = 5_000_000  # the ngclient default limit for targets metadata


def check_partner_name(partner: str) -> str:
    if not isinstance(partner, str) or not PARTNER.match(partner) or partner in TOP_LEVEL:
        raise TrustError(
            f"partner id {partner!r} must be lowercase letters, digits, '-' or '_' (start with a letter) "
            "and not a top-level role name"
        )
    return partner


def expiry(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


def new_role(partner: str, expires_days: int = 365) -> Metadata[Targets]:
    """An empty, unsigned version-1 role for ``partner``."""
    check_partner_name(partner)
    return Metadata(Targets(version=1, expires=expiry(expires_days)))


def parse_role(data: bytes, where: str) -> Metadata[Targets]:
    """Decode a targets role file; raise TrustError when it is not one."""
    if len(data) > MAX_ROLE_FILE:
        raise TrustError(f"{where} is larger than {MAX_ROLE_FILE} bytes")
    try:
        md = Metadata[Targets].from_bytes(data)
    except Exception as e:  # tuf's deserializer raises DeserializationError wrapping anything
        raise TrustError(f"{where} is not TUF targets metadata: {e}") from e
    if not isinstance(md.signed, Targets):
        raise TrustError(f"{where} is {md.signed.type!r} metadata, not a targets role")
    return md


def load_role(role_file: Path) -> Metadata[Targets]:
    try:
        with role_file.open("rb") as f:
            data = f.read(MAX_ROLE_FILE + 1)
    except OSError as e:
        raise TrustError(f"cannot read role file {role_file}: {e.strerror}") from e
    return parse_role(data, str(role_file))


def bundle_identity(bundle: Path) -> tuple[str, str]:
    """The bundle's ``(app_id, version)`` from its app.json (every entry checked; BundleError)."""
    manifest = archive.inspect(bundle).manifest
    return manifest.app_id, manifest.version


def bundle_target(bundle: Path) -> TargetFile:
    """The TUF target (path, length, sha256) describing ``bundle``."""
    app_id, version = bundle_identity(bundle)
    try:
        return TargetFile.from_file(releases.target_path(app_id, version), str(bundle), ["sha256"])
    except OSError as e:
        raise TrustError(f"cannot read bundle {bundle}: {e.strerror}") from e


def sign_bundle(role_file: Path, bundle: Path, signer: Signer, partner: str) -> TargetFile:
    """Add ``bundle`` to the partner's role file (created if missing), bump its version, re-sign.

    Signing the same bundle again changes nothing; a different bundle for an already signed
    app version is refused (published versions are immutable: bump the version in app.json).
    """
    check_partner_name(partner)
    target = bundle_target(bundle)
    if role_file.exists():
        md = load_role(role_file)
        existing = md.signed.targets.get(target.path)
        if existing is not None:
            if existing.length == target.length and existing.hashes == target.hashes:
                return existing
            raise TrustError(
                f"{target.path} is already signed with different content; "
                "published versions never change: raise vehicle.version in app.json and rebuild"
            )
        md.signed.version += 1
    else:
        md = new_role(partner)
    md.signed.targets[target.path] = target
    md.signed.expires = max(md.signed.expires, expiry(365))
    md.sign(signer)
    role_file.parent.mkdir(parents=True, exist_ok=True)
    archive.write_atomically(role_file, md.to_bytes())
    return target


def verify_role_signature(md: Metadata[Targets], key_file: Path, where: str) -> None:
    key = load_public_key(key_file)
    signature = md.signatures.get(key.keyid)
    if signature is None:
        raise TrustError(f"{where} is not signed by key {key.keyid}")
    try:
        key.verify_signature(signature, md.signed_bytes)
    except UnverifiedSignatureError as e:
        raise TrustError(f"{where}: bad signature by key {key.keyid}: the role file was altered") from e


def verify_bundle(role_file: Path, bundle: Path, public_key_file: Path) -> TargetFile:
    """Check ``bundle`` against the signed role: signature, expiry, listed path, length, sha256."""
    md = load_role(role_file)
    verify_role_signature(md, public_key_file, str(role_file))
    if md.signed.is_expired():
        raise TrustError(f"{role_file} expired on {md.signed.expires:%Y-%m-%d}; re-sign it")
    app_id, version = bundle_identity(bundle)
    path = releases.target_path(app_id, version)
    target = md.signed.targets.get(path)
    if target is None:
        raise TrustError(f"{role_file} does not list {path}; sign the bundle first")
    try:
        with bundle.open("rb") as f:
            target.verify_length_and_hashes(f)
    except LengthOrHashMismatchError as e:
        raise TrustError(f"{bundle} does not match the signed {path}: {e}") from e
    except OSError as e:
        raise TrustError(f"cannot read bundle {bundle}: {e.strerror}") from e
    return target
