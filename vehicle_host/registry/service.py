"""The registry: partners, the review queue, releases, health and the audit log on one data directory.

Layout of ``DATA``: ``registry.sqlite3`` (see ``db``), ``repo/`` (the TUF repository: ``metadata/``
and ``targets/``, served as static files), ``keys/`` (the registry's top-level role keys; in
production the root key is kept offline), ``blobs/`` (uploaded bundles by sha256) and
``admin.token`` (mode 0600; reviewers and release managers send it as a bearer token).

Publishing: a partner uploads a bundle with its delegated role file, signed by its own key after
adding the bundle (``vehicle_host.trust.roles.sign_bundle``). The submission enters the review queue
with the automated checks' results; a reviewer approves (refused while a check fails) or rejects
with a reason. Approval copies the bundle into the repository and publishes the role; releasing
is a separate step (``rollout``). Every change is written to the audit log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vehicle_host import releases
from vehicle_host.bundles import archive
from vehicle_host.bundles.manifest import HOST
from vehicle_host.errors import VehicleHostError
from vehicle_host.registry import review
from vehicle_host.registry.db import Partner, RegistryDB, Submission
from vehicle_host.registry.errors import RegistryError
from vehicle_host.registry.rollout import RolloutPolicy, Rollouts
from vehicle_host.trust import keys, roles
from vehicle_host.trust.errors import TrustError
from vehicle_host.trust.repository import RegistryRepository

PERMISSION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
VEHICLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_CEILING = 64
MAX_REPORTS = 200
MAX_COUNT = 1_000_000
MAX_REASON = 500
MAX_PENDING = 50  # submissions per partner waiting for review


@dataclass(frozen=True, slots=True)
class Layout:
    data: Path

    @property
    def db(self) -> Path:
        return self.data / "registry.sqlite3"

    @property
    def repo(self) -> Path:
        return self.data / "repo"

    @property
    def keys(self) -> Path:
        return self.data / "keys"

    @property
    def blobs(self) -> Path:
        return self.data / "blobs"

    @property
    def admin_token(self) -> Path:
        return self.data / "admin.token"


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def _ceiling(values: Any, what: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if not isinstance(values, list) or len(values) > MAX_CEILING:
        raise RegistryError(400, f"bad_{what}", f"{what} must be a list of at most {MAX_CEILING} names")
    out = []
    for v in values:
        if not isinstance(v, str) or len(v) > 253 or not pattern.match(v.lower()):
            raise RegistryError(400, f"bad_{what}", f"{what} entry {v!r} is not a valid name")
        out.append(v.lower())
    return tuple(sorted(set(out)))


@dataclass
class Registry:
    """One registry on one data directory; thread-safe (writes are serialised by one lock)."""

    layout: Layout
    db: RegistryDB
    repo: RegistryRepository
    policy: RolloutPolicy = field(default_factory=RolloutPolicy)
    limits: archive.Limits = field(default_factory=archive.Limits)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.rollouts = Rollouts(self.db, self.repo, self.policy, self.clock)
        try:
            self._admin_hash = _hash_token(self.layout.admin_token.read_text().strip())
        except OSError as exc:
            raise RegistryError(
                500, "no_admin_token", f"cannot read {self.layout.admin_token}: {exc}"
            ) from None

    # lifecycle
    @classmethod
    def init(cls, data: Path) -> str:
        """Create a registry in ``data`` (new or empty); return the admin token (also in admin.token)."""
        layout = Layout(data)
        if layout.db.exists() or layout.repo.exists():
            raise RegistryError(
                409, "exists", f"{data} already holds a registry; use it or pick a new directory"
            )
        data.mkdir(parents=True, exist_ok=True)
        layout.blobs.mkdir(exist_ok=True)
        RegistryRepository.init(layout.repo, layout.keys)
        token = secrets.token_urlsafe(32)
        _write_private(layout.admin_token, token)
        db = RegistryDB(layout.db)
        try:
            db.audit("admin", "init", "", {"data": str(data)}, time.time())
        finally:
            db.close()
        return token

    @classmethod
    def open(
        cls, data: Path, *, policy: RolloutPolicy | None = None, limits: archive.Limits | None = None
    ) -> Registry:
        layout = Layout(data)
        if not layout.db.is_file() or not (layout.repo / "metadata").is_dir():
            raise RegistryError(
                500, "no_registry", f"{data} holds no registry; run 'registry init --data {data}'"
            )
        repo = RegistryRepository.open(layout.repo, layout.keys)
        return cls(layout, RegistryDB(layout.db), repo, policy or RolloutPolicy(), limits or archive.Limits())

    def close(self) -> None:
        self.db.close()

    def trust_root(self) -> bytes:
        return self.repo.trust_root()

    def refresh(self) -> None:
        """Re-sign the timestamp (run at least daily: it expires after one day)."""
        with self.lock:
            self.repo.refresh_timestamp()

    # authentication
    def is_admin(self, token: str) -> bool:
        return hmac.compare_digest(_hash_token(token), self._admin_hash)

    def partner_for_token(self, token: str) -> Partner | None:
        partner_id, dot, _ = token.partition(".")
        partner = self.db.partner(partner_id) if dot else None
        if partner is None:
            hmac.compare_digest(_hash_token(token), _hash_token("x"))  # same work either way
            return None
        return partner if hmac.compare_digest(_hash_token(token), partner.token_hash) else None

    # partners
    def add_partner(
        self, actor: str, partner_id: Any, namespace: Any, public_key: Any, permissions: Any, domains: Any
    ) -> tuple[Partner, str]:
        """Onboard a partner with its ceilings; return it and its API token (shown once)."""
        try:
            roles.check_partner_name(partner_id)
            key = keys.key_from_dict(public_key)
        except TrustError as exc:
            raise RegistryError(400, "bad_partner", str(exc)) from None
        if not isinstance(namespace, str) or len(namespace) > 48 or not releases.APP_ID.match(namespace):
            raise RegistryError(400, "bad_namespace", "namespace must be reverse-DNS like 'com.acme'")
        perms = _ceiling(permissions, "permissions", PERMISSION)
        doms = _ceiling(domains, "domains", HOST)
        with self.lock:
            if self.db.partner(partner_id) is not None:
                raise RegistryError(409, "partner_exists", f"partner {partner_id} already exists")
            for other in self.db.partners():
                a, b = namespace + ".", other.namespace + "."
                if a.startswith(b) or b.startswith(a):
                    raise RegistryError(
                        409,
                        "namespace_taken",
                        f"namespace {namespace} overlaps {other.id}'s {other.namespace}",
                    )
            token = f"{partner_id}.{secrets.token_urlsafe(32)}"
            key_dict = keys.key_to_dict(key)
            partner = Partner(partner_id, namespace, key_dict, perms, doms, _hash_token(token), self.clock())
            try:
                self.repo.add_partner(partner_id, namespace, key_dict)
            except TrustError as exc:
                raise RegistryError(400, "bad_partner", str(exc)) from None
            with self.db.transaction():
                self.db.add_partner(partner)
                self.db.audit(actor, "add-partner", "", partner.public(), self.clock())
        return partner, token

    def partners(self) -> list[Partner]:
        return self.db.partners()

    def published_role(self, partner_id: str) -> bytes | None:
        """The partner's currently published role file (the base for its next signature), if any."""
        return self.repo.published_role(partner_id)

    # submissions
    def submit(self, partner: Partner, bundle_b64: str, role_json: str) -> Submission:
        """Store an uploaded bundle and its signed role, run the automated checks, queue it."""
        if len(self.db.submissions(status="pending", partner=partner.id, limit=MAX_PENDING)) >= MAX_PENDING:
            raise RegistryError(
                429,
                "queue_full",
                f"partner {partner.id} has {MAX_PENDING} submissions waiting; wait for review",
            )
        try:
            data = base64.b64decode(bundle_b64, validate=True)
        except (binascii.Error, ValueError):
            raise RegistryError(400, "bad_bundle", "bundle must be the .vhb file in base64") from None
        if len(data) > self.limits.max_archive_bytes:
            raise RegistryError(
                413, "bundle_too_large", f"the bundle is larger than {self.limits.max_archive_bytes} bytes"
            )
        sha = hashlib.sha256(data).hexdigest()
        self.layout.blobs.mkdir(exist_ok=True)
        blob = self.layout.blobs / f"{sha}{archive.SUFFIX}"
        tmp = self.layout.blobs / f".{sha}.{secrets.token_hex(4)}.tmp"
        tmp.write_bytes(data)
        try:
            info = archive.inspect(tmp, self.limits)
        except VehicleHostError as exc:
            tmp.unlink()
            raise RegistryError(400, "bad_bundle", f"{exc}") from None
        os.replace(tmp, blob)
        app_id, version = info.manifest.app_id, info.manifest.version
        known = [s.version for s in self.db.submissions(app_id=app_id, status="approved", limit=10_000)]
        checks = review.review(
            blob, info, partner, role_json.encode(), self.repo, known_versions=known, limits=self.limits
        )
        at = self.clock()
        with self.lock, self.db.transaction():
            sid = self.db.add_submission(
                partner.id, app_id, version, sha, info.size, role_json, [c.public() for c in checks], at
            )
            failed = [c.name for c in checks if not c.ok]
            self.db.audit(
                f"partner:{partner.id}",
                "submit",
                app_id,
                {"submission": sid, "version": version, "failed": failed},
                at,
            )
        return self.submission(sid)

    def submission(self, submission_id: int) -> Submission:
        sub = self.db.submission(submission_id)
        if sub is None:
            raise RegistryError(404, "no_submission", f"there is no submission {submission_id}")
        return sub

    def submissions(self, status: str | None = None, partner: str | None = None) -> list[Submission]:
        if status is not None and status not in ("pending", "rejected", "approved"):
            raise RegistryError(400, "bad_status", "status must be pending, rejected or approved")
        return self.db.submissions(status=status, partner=partner)

    def approve(self, submission_id: int, actor: str, note: str = "") -> Submission:
        """The human gate: publish the bundle and the partner's role (refused while a check fails)."""
        with self.lock:
            sub = self.submission(submission_id)
            if sub.status != "pending":
                raise RegistryError(409, "not_pending", f"submission {sub.id} is already {sub.status}")
            if not sub.checks_passed:
                failed = ", ".join(c["name"] for c in sub.checks if not c.get("ok"))
                raise RegistryError(
                    409, "checks_failed", f"submission {sub.id} failed automated checks ({failed}); reject it"
                )
            if self.db.approved(sub.app_id, sub.version) is not None:
                raise RegistryError(409, "version_exists", f"{sub.app_id} {sub.version} is already approved")
            target = releases.target_path(sub.app_id, sub.version)
            blob = self.layout.blobs / f"{sub.sha256}{archive.SUFFIX}"
            try:
                self.repo.check_partner_role(sub.partner, sub.role_json.encode())
                self.repo.add_bundle(target, blob)
                self.repo.publish_partner_role(sub.partner, sub.role_json.encode())
            except TrustError as exc:
                raise RegistryError(
                    409, "role_refused", f"{exc}; the partner must re-sign and resubmit"
                ) from None
            at = self.clock()
            with self.db.transaction():
                self.db.decide(sub.id, "approved", note[:MAX_REASON], at)
                self.db.audit(
                    actor, "approve", sub.app_id, {"submission": sub.id, "version": sub.version}, at
                )
            return self.submission(sub.id)

    def reject(self, submission_id: int, actor: str, reason: Any) -> Submission:
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            raise RegistryError(400, "bad_reason", f"give a reason of 1 to {MAX_REASON} characters")
        with self.lock:
            sub = self.submission(submission_id)
            if sub.status != "pending":
                raise RegistryError(409, "not_pending", f"submission {sub.id} is already {sub.status}")
            at = self.clock()
            with self.db.transaction():
                self.db.decide(sub.id, "rejected", reason.strip(), at)
                detail = {"submission": sub.id, "version": sub.version, "reason": reason.strip()}
                self.db.audit(actor, "reject", sub.app_id, detail, at)
            return self.submission(sub.id)

    # apps and releases
    def apps(self) -> list[dict[str, Any]]:
        by_app: dict[str, list[Submission]] = {}
        for s in self.db.submissions(limit=10_000):
            by_app.setdefault(s.app_id, []).append(s)
        return [self._app(app_id, subs) for app_id, subs in sorted(by_app.items())]

    def app(self, app_id: str) -> dict[str, Any]:
        subs = self.db.submissions(app_id=app_id, limit=10_000)
        if not subs:
            raise RegistryError(404, "no_app", f"no submission of {app_id} exists")
        return self._app(app_id, subs)

    def _app(self, app_id: str, subs: list[Submission]) -> dict[str, Any]:
        state = self.rollouts.state(app_id)
        return {
            "app_id": app_id,
            "partner": subs[0].partner,
            "versions": [
                {"version": s.version, "submission": s.id, "status": s.status, "released": s.released}
                for s in subs
            ],
            "release": state.public() if state else None,
            "health": self.rollouts.health(app_id),
        }

    def release_op(self, app_id: str, op: str, actor: str, body: dict[str, Any]) -> dict[str, Any]:
        """``release``, ``rollout``, ``widen``, ``rollback`` or ``experiment`` with the request body."""
        r = self.rollouts
        with self.lock:
            if op == "release":
                r.release(app_id, body.get("version", ""), actor, urgent=bool(body.get("urgent", False)))
            elif op == "rollout" and body.get("stop"):
                r.stop_rollout(app_id, actor)
            elif op == "rollout":
                r.start_rollout(
                    app_id,
                    body.get("version", ""),
                    actor,
                    percent=body.get("percent"),
                    urgent=bool(body.get("urgent", False)),
                )
            elif op == "widen":
                r.widen(app_id, actor, percent=body.get("percent"))
            elif op == "rollback":
                r.rollback(app_id, actor, version=body.get("version"))
            elif op == "experiment" and body.get("stop"):
                r.stop_experiment(app_id, actor)
            elif op == "experiment":
                r.start_experiment(
                    app_id,
                    body.get("name", ""),
                    body.get("a", ""),
                    body.get("b", ""),
                    body.get("split", 50),
                    actor,
                )
            else:
                raise RegistryError(404, "not_found", f"no release operation {op!r}")
            return self.app(app_id)

    # health
    def ingest_health(self, vehicle_id: Any, reports: Any) -> dict[str, Any]:
        """Store one vehicle's usage report and apply automatic rollout decisions."""
        if not isinstance(vehicle_id, str) or not VEHICLE_ID.match(vehicle_id):
            raise RegistryError(400, "bad_vehicle_id", "vehicle_id must be 1 to 128 letters, digits or ._:-")
        if not isinstance(reports, list) or len(reports) > MAX_REPORTS:
            raise RegistryError(
                400, "bad_reports", f"reports must be a list of at most {MAX_REPORTS} entries"
            )
        rows: list[tuple[str, str, int, int, int]] = []
        ignored = 0
        for rep in reports:
            if not isinstance(rep, dict):
                raise RegistryError(400, "bad_reports", "each report must be an object")
            counts = [rep.get(k) for k in ("launches", "crashes", "errors")]
            if not all(type(c) is int and 0 <= c <= MAX_COUNT for c in counts):
                raise RegistryError(
                    400, "bad_reports", f"launches, crashes and errors must be integers from 0 to {MAX_COUNT}"
                )
            app_id, version = rep.get("app_id"), rep.get("version")
            if (
                not isinstance(app_id, str)
                or not isinstance(version, str)
                or len(app_id) + len(version) > 200
            ):
                raise RegistryError(400, "bad_reports", "each report needs app_id and version strings")
            if self.db.approved(app_id, version) is None:
                ignored += 1
                continue
            rows.append((app_id, version, counts[0], counts[1], counts[2]))  # type: ignore[arg-type]
        with self.lock:
            self.db.add_health(vehicle_id, rows, self.clock())
            decisions = {app_id: self.rollouts.evaluate(app_id) for app_id in sorted({r[0] for r in rows})}
        return {"accepted": len(rows), "ignored": ignored, "decisions": decisions}

    def audit_log(self, app_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        return self.db.audit_log(app_id=app_id, limit=max(1, min(limit, 1000)))

    def releases_document(self) -> dict[str, Any]:
        return self.rollouts.document()
