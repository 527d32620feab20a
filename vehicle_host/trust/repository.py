"""Registry side: the TUF repository on disk, servable as static files by any web server or CDN.

Layout (consistent snapshots)::

    <repo>/metadata/root.json, N.root.json, timestamp.json, N.snapshot.json, N.targets.json,
                    N.<partner>.json
    <repo>/targets/apps/<id>/<ver>/<sha256>.<id>-<ver>.vhb, targets/<sha256>.releases.json

The four top-level keys live in ``keys_dir`` (``root.pem``, ``targets.pem``, ``snapshot.pem``,
``timestamp.pem`` with their ``.pub.json``). In production the root key is kept offline: copy it
out of ``keys_dir`` after :meth:`RegistryRepository.init` and bring it back only to rotate keys.
Expiry: root 365 days, targets 90, snapshot 7, timestamp 1 (renewed by :meth:`refresh_timestamp`,
which the registry runs periodically).

Each partner gets one terminating delegated targets role named by its id with the paths
``apps/<namespace>.*/*/*``; the partner signs that role with its own key and uploads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tuf.api.exceptions import UnsignedMetadataError

from vehicle_host import releases
from vehicle_host.bundles import archive
from vehicle_host.trust import keys, roles
from vehicle_host.trust.errors import TrustError
from vehicle_host.trust.tufapi import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Signer,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

TOP_ROLES = ("root", "targets", "snapshot", "timestamp")
EXPIRY_DAYS = {"root": 365, "targets": 90, "snapshot": 7, "timestamp": 1}
# refresh_timestamp() renews a role once less than this much of its lifetime is left
RENEW_BEFORE = {"targets": timedelta(days=30), "snapshot": timedelta(days=3)}
NAMESPACE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)+$")
RELEASES_TARGET = "releases.json"
MAX_TARGETS_PER_ROLE = 10_000
MAX_PARTNERS = 1_000
MAX_BUNDLE = 64 * 1024 * 1024

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def namespace_pattern(namespace: str) -> str:
    """The delegated path pattern for a partner namespace (``com.acme`` → ``apps/com.acme.*/*/*``)."""
    return f"apps/{namespace}.*/*/*"


class RegistryRepository:
    """The registry's TUF repository. Every public method is atomic on disk and thread-safe."""

    def __init__(self, repo_dir: Path, keys_dir: Path, *, clock: Clock = _utcnow) -> None:
        self.repo_dir = repo_dir
        self.metadata_dir = repo_dir / "metadata"
        self.targets_dir = repo_dir / "targets"
        self.keys_dir = keys_dir
        self.clock = clock
        self._lock = threading.RLock()
        self._signers: dict[str, Signer] = {}
        self.root: Metadata[Root]
        self.targets: Metadata[Targets]
        self.snapshot: Metadata[Snapshot]
        self.timestamp: Metadata[Timestamp]
        self.partners: dict[str, Metadata[Targets]] = {}

    # -- creating and opening ---------------------------------------------------------------------

    @classmethod
    def init(cls, repo_dir: Path, keys_dir: Path, *, clock: Clock = _utcnow) -> RegistryRepository:
        """Create a new repository: four fresh ed25519 keys and version-1 metadata."""
        repo = cls(repo_dir, keys_dir, clock=clock)
        if (repo.metadata_dir / "root.json").exists():
            raise TrustError(f"{repo.metadata_dir} already holds a repository; open it instead")
        for role in TOP_ROLES:
            keys.generate_key(keys_dir / f"{role}.pem")
        repo._load_signers()
        repo.metadata_dir.mkdir(parents=True, exist_ok=True)
        repo.targets_dir.mkdir(parents=True, exist_ok=True)
        with repo._lock:
            root = Root(version=1, expires=repo._expiry("root"), consistent_snapshot=True)
            for role in TOP_ROLES:
                root.add_key(repo._signers[role].public_key, role)
            repo.root = Metadata(root)
            repo.targets = Metadata(Targets(version=1, expires=repo._expiry("targets")))
            repo.snapshot = Metadata(Snapshot(version=1, expires=repo._expiry("snapshot")))
            repo.timestamp = Metadata(Timestamp(version=1, expires=repo._expiry("timestamp")))
            repo._write_root()
            repo._write_versioned("targets", repo.targets)
            repo._write_versioned("snapshot", repo.snapshot)
            repo._write_timestamp()
        return repo

    @classmethod
    def open(cls, repo_dir: Path, keys_dir: Path, *, clock: Clock = _utcnow) -> RegistryRepository:
        """Load an existing repository and its online keys."""
        repo = cls(repo_dir, keys_dir, clock=clock)
        repo._load_signers()
        md = repo.metadata_dir
        try:
            repo.root = Metadata[Root].from_file(str(md / "root.json"))
            repo.timestamp = Metadata[Timestamp].from_file(str(md / "timestamp.json"))
            snap_version = repo.timestamp.signed.snapshot_meta.version
            repo.snapshot = Metadata[Snapshot].from_file(str(md / f"{snap_version}.snapshot.json"))
            meta = repo.snapshot.signed.meta
            repo.targets = Metadata[Targets].from_file(
                str(md / f"{meta['targets.json'].version}.targets.json")
            )
            for name, info in meta.items():
                role = name.removesuffix(".json")
                if role != "targets":
                    repo.partners[role] = Metadata[Targets].from_file(str(md / f"{info.version}.{name}"))
        except (OSError, ValueError, KeyError) as e:
            raise TrustError(f"cannot open the repository in {repo_dir}: {e}") from e
        return repo

    def _load_signers(self) -> None:
        for role in TOP_ROLES:
            path = self.keys_dir / f"{role}.pem"
            if role == "root" and not path.exists():
                continue  # root kept offline: everything but key rotation works without it
            self._signers[role] = keys.load_signer(path)

    # -- what head units and the registry read ----------------------------------------------------

    def trust_root(self) -> bytes:
        """The current ``root.json``: the trust anchor head units are provisioned with."""
        with self._lock:
            return (self.metadata_dir / "root.json").read_bytes()

    def partner_namespace(self, partner: str) -> str | None:
        with self._lock:
            delegated = self._delegation(partner)
            if delegated is None or not delegated.paths:
                return None
            return delegated.paths[0].removeprefix("apps/").removesuffix(".*/*/*")

    # -- partners ---------------------------------------------------------------------------------

    def add_partner(self, partner: str, namespace: str, public_key: dict[str, Any]) -> None:
        """Delegate ``apps/<namespace>.*/*/*`` to ``partner``'s ed25519 key (idempotent)."""
        roles.check_partner_name(partner)
        if not isinstance(namespace, str) or len(namespace) > 64 or not NAMESPACE.match(namespace):
            raise TrustError(f"namespace {namespace!r} must be reverse-DNS like 'com.acme'")
        key = keys.key_from_dict(public_key)
        with self._lock:
            existing = self._delegation(partner)
            if existing is not None:
                if existing.keyids == [key.keyid] and existing.paths == [namespace_pattern(namespace)]:
                    return
                raise TrustError(
                    f"partner {partner!r} is already registered with another key or namespace; "
                    "key rotation needs the registry's key procedure"
                )
            delegations = self.targets.signed.delegations
            if delegations is None:
                delegations = Delegations(keys={}, roles={})
                self.targets.signed.delegations = delegations
            assert delegations.roles is not None
            if len(delegations.roles) >= MAX_PARTNERS:
                raise TrustError(f"the registry already delegates to {MAX_PARTNERS} partners")
            for other, role in delegations.roles.items():
                theirs = (role.paths or [""])[0].removeprefix("apps/").removesuffix(".*/*/*")
                if _overlaps(theirs, namespace):
                    raise TrustError(f"namespace {namespace!r} overlaps {theirs!r} of partner {other!r}")
            delegations.roles[partner] = DelegatedRole(
                name=partner, keyids=[], threshold=1, terminating=True, paths=[namespace_pattern(namespace)]
            )
            self.targets.signed.add_key(key, partner)
            self._commit_targets()

    def _delegation(self, partner: str) -> DelegatedRole | None:
        delegations = self.targets.signed.delegations
        if delegations is None or delegations.roles is None:
            return None
        return delegations.roles.get(partner)

    def check_partner_role(self, partner: str, role_json: bytes) -> list[dict[str, Any]]:
        """Verify an uploaded partner role without publishing it.

        Checks: signed by the delegated key, not expired, no sub-delegations, every target inside
        the partner's namespace and at its canonical path with a sha256, version greater than the
        published one, every published target kept unchanged. Returns every target of the role as
        ``{"path", "length", "sha256"}`` sorted by path; raises TrustError naming the problem.
        """
        with self._lock:
            md = self._checked_role(partner, role_json)
            return [
                {"path": path, "length": t.length, "sha256": t.hashes["sha256"]}
                for path, t in sorted(md.signed.targets.items())
            ]

    def _checked_role(self, partner: str, role_json: bytes) -> Metadata[Targets]:
        delegated = self._delegation(partner)
        if delegated is None:
            raise TrustError(f"partner {partner!r} is not registered; ask the registry to add it first")
        md = roles.parse_role(role_json, f"role of {partner}")
        try:
            self.targets.signed.verify_delegate(partner, md.signed_bytes, md.signatures)
        except UnsignedMetadataError as e:
            raise TrustError(f"role of {partner} is not signed by the partner's registered key ({e})") from e
        signed = md.signed
        if signed.is_expired(self.clock()):
            raise TrustError(f"role of {partner} expired on {signed.expires:%Y-%m-%d}; re-sign it")
        if signed.delegations is not None:
            raise TrustError(f"role of {partner} delegates further; partner roles may not delegate")
        if len(signed.targets) > MAX_TARGETS_PER_ROLE:
            raise TrustError(f"role of {partner} lists more than {MAX_TARGETS_PER_ROLE} targets")
        for path, target in signed.targets.items():
            if not delegated.is_delegated_path(path):
                raise TrustError(f"role of {partner} lists {path}, outside its namespace {delegated.paths}")
            if not releases.TARGET.match(path) or _canonical(path) != path:
                raise TrustError(f"role of {partner} lists {path}, not apps/<id>/<ver>/<id>-<ver>.vhb")
            sha = target.hashes.get("sha256")
            if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
                raise TrustError(f"role of {partner}: {path} has no sha256 hash")
        published = self.partners.get(partner)
        if published is not None:
            if signed.version <= published.signed.version:
                raise TrustError(
                    f"role of {partner} has version {signed.version} but version "
                    f"{published.signed.version} is published; stale: rebuild from the published role"
                )
            for path, target in published.signed.targets.items():
                if signed.targets.get(path) != target:
                    raise TrustError(
                        f"role of {partner} drops or changes published {path}; "
                        "stale: rebuild from the published role"
                    )
        return md

    def publish_partner_role(self, partner: str, role_json: bytes) -> None:
        """Check the role (as :meth:`check_partner_role`) and publish it with a new snapshot."""
        with self._lock:
            md = self._checked_role(partner, role_json)
            self._write_versioned(partner, md, raw=role_json)
            self.partners[partner] = md
            self.snapshot.signed.meta[f"{partner}.json"] = MetaFile(version=md.signed.version)
            self._commit_snapshot()

    def published_role(self, partner: str) -> bytes | None:
        """The published role file of ``partner`` (partners rebuild from it)."""
        with self._lock:
            md = self.partners.get(partner)
            if md is None:
                return None
            return (self.metadata_dir / f"{md.signed.version}.{partner}.json").read_bytes()

    # -- targets ----------------------------------------------------------------------------------

    def add_bundle(self, target_path: str, bundle: Path) -> None:
        """Store a bundle at its hash-prefixed path; refuse content a published role contradicts."""
        if not releases.TARGET.match(target_path) or _canonical(target_path) != target_path:
            raise TrustError(f"{target_path!r} is not an apps/<id>/<ver>/<id>-<ver>.vhb target path")
        size = bundle.stat().st_size
        if size > MAX_BUNDLE:
            raise TrustError(f"{bundle} is larger than {MAX_BUNDLE} bytes")
        target = TargetFile.from_file(target_path, str(bundle), ["sha256"])
        with self._lock:
            for partner, md in self.partners.items():
                listed = md.signed.targets.get(target_path)
                if listed is not None and listed.hashes != target.hashes:
                    raise TrustError(f"{bundle} is not the {target_path} signed by {partner}")
            dest = self.targets_dir / target.get_prefixed_paths()[0]
            if dest.exists():
                return
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
            with bundle.open("rb") as src, tmp.open("wb") as out:
                shutil.copyfileobj(src, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
            archive.fsync_dir(dest.parent)

    def set_releases(self, doc: dict[str, Any]) -> None:
        """Publish ``releases.json`` (checked) as a top-level target; every pin must be published."""
        releases.check(doc)
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        with self._lock:
            for app_id, entry in doc["apps"].items():
                for pin in _pins(entry):
                    if not self._is_published(pin["target"]):
                        raise TrustError(
                            f"releases.json pins {app_id} {pin['version']} but no partner role "
                            f"publishes {pin['target']}; publish the bundle first"
                        )
            target = TargetFile.from_data(RELEASES_TARGET, data, ["sha256"])
            archive.write_atomically(self.targets_dir / target.get_prefixed_paths()[0], data)
            self.targets.signed.targets[RELEASES_TARGET] = target
            self._commit_targets()

    def _is_published(self, target_path: str) -> bool:
        return any(target_path in md.signed.targets for md in self.partners.values())

    def refresh_timestamp(self) -> None:
        """Re-sign the timestamp (and snapshot/targets when they near expiry) with fresh expiry."""
        with self._lock:
            now = self.clock()
            if self.targets.signed.expires - now < RENEW_BEFORE["targets"]:
                self._commit_targets()
            elif self.snapshot.signed.expires - now < RENEW_BEFORE["snapshot"]:
                self._commit_snapshot()
            else:
                self._bump_timestamp()

    # -- signing and writing ----------------------------------------------------------------------

    def _expiry(self, role: str) -> datetime:
        return self.clock().replace(microsecond=0) + timedelta(days=EXPIRY_DAYS[role])

    def _signer(self, role: str) -> Signer:
        signer = self._signers.get(role)
        if signer is None:
            raise TrustError(f"the {role} key is not in {self.keys_dir}")
        return signer

    def _commit_targets(self) -> None:
        self.targets.signed.version += 1
        self.targets.signed.expires = self._expiry("targets")
        self._write_versioned("targets", self.targets)
        self.snapshot.signed.meta["targets.json"] = MetaFile(version=self.targets.signed.version)
        self._commit_snapshot()

    def _commit_snapshot(self) -> None:
        self.snapshot.signed.version += 1
        self.snapshot.signed.expires = self._expiry("snapshot")
        self._write_versioned("snapshot", self.snapshot)
        self._bump_timestamp()

    def _bump_timestamp(self) -> None:
        self.timestamp.signed.version += 1
        self._write_timestamp()

    def _write_root(self) -> None:
        self.root.sign(self._signer("root"))
        data = self.root.to_bytes()
        archive.write_atomically(self.metadata_dir / f"{self.root.signed.version}.root.json", data)
        archive.write_atomically(self.metadata_dir / "root.json", data)

    def _write_versioned(self, role: str, md: Metadata[Any], raw: bytes | None = None) -> None:
        if raw is None:
            md.sign(self._signer(role))
            raw = md.to_bytes()
        archive.write_atomically(self.metadata_dir / f"{md.signed.version}.{role}.json", raw)

    def _write_timestamp(self) -> None:
        snap = self.snapshot.signed.version
        snap_bytes = (self.metadata_dir / f"{snap}.snapshot.json").read_bytes()
        self.timestamp.signed.snapshot_meta = MetaFile(
            version=snap,
            length=len(snap_bytes),
            hashes={"sha256": hashlib.sha256(snap_bytes).hexdigest()},
        )
        self.timestamp.signed.expires = self._expiry("timestamp")
        self.timestamp.sign(self._signer("timestamp"))
        archive.write_atomically(self.metadata_dir / "timestamp.json", self.timestamp.to_bytes())


def _canonical(target_path: str) -> str:
    parts = target_path.split("/")
    if len(parts) != 4:
        return ""
    return releases.target_path(parts[1], parts[2])


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _pins(entry: dict[str, Any]) -> list[dict[str, Any]]:
    pins = [entry["stable"]]
    if entry.get("rollout"):
        pins.append(entry["rollout"])
    if entry.get("experiment"):
        pins.extend(entry["experiment"]["variants"].values())
    return pins
