"""The registry's database: every SQL statement of the registry lives in this module.

SQLite (WAL, ``synchronous=FULL``) by default. Statements are written with DB-API ``qmark``
parameters and pass through :func:`_sql`, the one place that adapts them to the driver's
``paramstyle``, so a PostgreSQL driver (``format`` style) can replace ``sqlite3`` here without
touching the rest of the registry. JSON columns are stored as text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARAMSTYLE = sqlite3.paramstyle  # "qmark"; psycopg would be "format" (%s)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS partners (id TEXT PRIMARY KEY, namespace TEXT NOT NULL UNIQUE,"
    " public_key TEXT NOT NULL, permissions TEXT NOT NULL, domains TEXT NOT NULL,"
    " token_hash TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS submissions (id INTEGER PRIMARY KEY AUTOINCREMENT, partner TEXT NOT NULL,"
    " app_id TEXT NOT NULL, version TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,"
    " role_json TEXT NOT NULL, status TEXT NOT NULL, checks TEXT NOT NULL, reason TEXT NOT NULL,"
    " submitted REAL NOT NULL, decided REAL, released REAL)",
    "CREATE INDEX IF NOT EXISTS submissions_app ON submissions (app_id, version)",
    "CREATE TABLE IF NOT EXISTS releases (app_id TEXT NOT NULL, channel TEXT NOT NULL,"
    " stable TEXT NOT NULL, stable_urgent INTEGER NOT NULL, rollout TEXT, rollout_percent REAL,"
    " rollout_urgent INTEGER NOT NULL, rollout_step_at REAL, experiment TEXT, updated REAL NOT NULL,"
    " PRIMARY KEY (app_id, channel))",
    "CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY AUTOINCREMENT, app_id TEXT NOT NULL,"
    " version TEXT NOT NULL, vehicle_id TEXT NOT NULL, launches INTEGER NOT NULL,"
    " crashes INTEGER NOT NULL, errors INTEGER NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS health_app ON health (app_id, version, at)",
    "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,"
    " actor TEXT NOT NULL, action TEXT NOT NULL, app_id TEXT NOT NULL, detail TEXT NOT NULL)",
)


def _sql(statement: str) -> str:
    """Adapt a qmark statement to the driver's paramstyle (the one place that knows it)."""
    if PARAMSTYLE == "qmark":
        return statement
    return statement.replace("%", "%%").replace("?", "%s")


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    namespace: str
    public_key: dict[str, Any]
    permissions: tuple[str, ...]
    domains: tuple[str, ...]
    token_hash: str = ""
    created: float = 0.0

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "keyid": self.public_key.get("keyid", ""),
            "permissions": list(self.permissions),
            "domains": list(self.domains),
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class Submission:
    id: int
    partner: str
    app_id: str
    version: str
    sha256: str
    size: int
    role_json: str
    status: str  # pending | rejected | approved
    checks: list[dict[str, Any]]
    reason: str
    submitted: float
    decided: float | None
    released: float | None

    @property
    def checks_passed(self) -> bool:
        return bool(self.checks) and all(c.get("ok") for c in self.checks)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "partner": self.partner,
            "app_id": self.app_id,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "status": self.status,
            "checks": self.checks,
            "checks_passed": self.checks_passed,
            "reason": self.reason,
            "submitted": self.submitted,
            "decided": self.decided,
            "released": self.released,
        }


@dataclass(slots=True)
class Release:
    """One app's release state on one channel."""

    app_id: str
    channel: str
    stable: str
    stable_urgent: bool = False
    rollout: str | None = None
    rollout_percent: float = 0.0
    rollout_urgent: bool = False
    rollout_step_at: float = 0.0
    experiment: dict[str, Any] | None = None
    updated: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        rollout = None
        if self.rollout is not None:
            rollout = {
                "version": self.rollout,
                "percent": self.rollout_percent,
                "urgent": self.rollout_urgent,
                "step_started": self.rollout_step_at,
            }
        return {
            "channel": self.channel,
            "stable": {"version": self.stable, "urgent": self.stable_urgent},
            "rollout": rollout,
            "experiment": self.experiment,
            "updated": self.updated,
        }


@dataclass(frozen=True, slots=True)
class Figures:
    """Summed health reports of one app version over a period."""

    launches: int = 0
    crashes: int = 0
    errors: int = 0
    vehicles: int = 0

    @property
    def failure_rate(self) -> float:
        return (self.crashes + self.errors) / self.launches if self.launches else 0.0

    def public(self) -> dict[str, Any]:
        return {
            "launches": self.launches,
            "crashes": self.crashes,
            "errors": self.errors,
            "vehicles": self.vehicles,
            "failure_rate": round(self.failure_rate, 4),
        }


def _partner(row: tuple[Any, ...]) -> Partner:
    pid, namespace, key, permissions, domains, token_hash, created = row
    return Partner(
        pid,
        namespace,
        json.loads(key),
        tuple(json.loads(permissions)),
        tuple(json.loads(domains)),
        token_hash,
        created,
    )


def _submission(row: tuple[Any, ...]) -> Submission:
    sid, partner, app_id, version, sha, size, role, status, checks, reason, sub, dec, rel = row
    return Submission(
        sid, partner, app_id, version, sha, size, role, status, json.loads(checks), reason, sub, dec, rel
    )


def _release(row: tuple[Any, ...]) -> Release:
    app_id, channel, stable, s_urgent, rollout, percent, r_urgent, step_at, experiment, updated = row
    return Release(
        app_id,
        channel,
        stable,
        bool(s_urgent),
        rollout,
        percent or 0.0,
        bool(r_urgent),
        step_at or 0.0,
        json.loads(experiment) if experiment else None,
        updated,
    )


_SUBMISSION_COLUMNS = (
    "id, partner, app_id, version, sha256, size, role_json, status, checks, reason, "
    + "submitted, decided, released"
)


class RegistryDB:
    """Thread-safe: one connection behind a re-entrant lock; :meth:`transaction` groups writes."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self.transaction():
            for statement in _SCHEMA:
                self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together (nested uses join the outer transaction)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def _all(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(_sql(statement), params).fetchall()

    def _one(self, statement: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(_sql(statement), params).fetchone()
            return row

    def _run(self, statement: str, params: tuple[Any, ...] = ()) -> int:
        """Execute a write; return the new row id (for inserts)."""
        with self.transaction():
            cursor = self._db.execute(_sql(statement), params)
            return int(cursor.lastrowid or 0)

    # partners
    def add_partner(self, partner: Partner) -> None:
        self._run(
            "INSERT INTO partners VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                partner.id,
                partner.namespace,
                json.dumps(partner.public_key),
                json.dumps(partner.permissions),
                json.dumps(partner.domains),
                partner.token_hash,
                partner.created,
            ),
        )

    def partner(self, partner_id: str) -> Partner | None:
        row = self._one("SELECT * FROM partners WHERE id = ?", (partner_id,))
        return _partner(row) if row else None

    def partners(self) -> list[Partner]:
        return [_partner(r) for r in self._all("SELECT * FROM partners ORDER BY id")]

    # submissions
    def add_submission(
        self,
        partner: str,
        app_id: str,
        version: str,
        sha256: str,
        size: int,
        role_json: str,
        checks: list[dict[str, Any]],
        at: float,
    ) -> int:
        return self._run(
            "INSERT INTO submissions (partner, app_id, version, sha256, size, role_json, status, checks,"
            " reason, submitted) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, '', ?)",
            (partner, app_id, version, sha256, size, role_json, json.dumps(checks), at),
        )

    def submission(self, submission_id: int) -> Submission | None:
        row = self._one(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE id = ?",  # noqa: S608
            (submission_id,),
        )
        return _submission(row) if row else None

    def submissions(
        self,
        *,
        status: str | None = None,
        app_id: str | None = None,
        partner: str | None = None,
        limit: int = 200,
    ) -> list[Submission]:
        where, params = [], []
        for column, value in (("status", status), ("app_id", app_id), ("partner", partner)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._all(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions{clause} ORDER BY id DESC LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [_submission(r) for r in rows]

    def approved(self, app_id: str, version: str) -> Submission | None:
        row = self._one(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE app_id = ? AND version = ?"  # noqa: S608
            " AND status = 'approved' ORDER BY id DESC LIMIT 1",
            (app_id, version),
        )
        return _submission(row) if row else None

    def decide(self, submission_id: int, status: str, reason: str, at: float) -> None:
        self._run(
            "UPDATE submissions SET status = ?, reason = ?, decided = ? WHERE id = ?",
            (status, reason, at, submission_id),
        )

    def mark_released(self, submission_id: int, at: float | None) -> None:
        self._run("UPDATE submissions SET released = ? WHERE id = ?", (at, submission_id))

    # releases
    def release(self, app_id: str, channel: str) -> Release | None:
        row = self._one("SELECT * FROM releases WHERE app_id = ? AND channel = ?", (app_id, channel))
        return _release(row) if row else None

    def releases(self, channel: str) -> list[Release]:
        rows = self._all("SELECT * FROM releases WHERE channel = ? ORDER BY app_id", (channel,))
        return [_release(r) for r in rows]

    def put_release(self, r: Release) -> None:
        with self.transaction():
            self._run("DELETE FROM releases WHERE app_id = ? AND channel = ?", (r.app_id, r.channel))
            self._run(
                "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r.app_id,
                    r.channel,
                    r.stable,
                    int(r.stable_urgent),
                    r.rollout,
                    r.rollout_percent if r.rollout else None,
                    int(r.rollout_urgent),
                    r.rollout_step_at if r.rollout else None,
                    json.dumps(r.experiment) if r.experiment else None,
                    r.updated,
                ),
            )

    # health
    def add_health(self, vehicle_id: str, reports: list[tuple[str, str, int, int, int]], at: float) -> None:
        with self.transaction():
            for app_id, version, launches, crashes, errors in reports:
                self._run(
                    "INSERT INTO health (app_id, version, vehicle_id, launches, crashes, errors, at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (app_id, version, vehicle_id, launches, crashes, errors, at),
                )

    def figures(self, app_id: str, version: str, since: float = 0.0) -> Figures:
        row = self._one(
            "SELECT COALESCE(SUM(launches), 0), COALESCE(SUM(crashes), 0), COALESCE(SUM(errors), 0),"
            " COUNT(DISTINCT vehicle_id) FROM health WHERE app_id = ? AND version = ? AND at >= ?",
            (app_id, version, since),
        )
        return Figures(*(int(v) for v in row)) if row else Figures()

    def vehicles(self, app_id: str) -> list[str]:
        rows = self._all("SELECT DISTINCT vehicle_id FROM health WHERE app_id = ?", (app_id,))
        return [r[0] for r in rows]

    # audit
    def audit(self, actor: str, action: str, app_id: str, detail: dict[str, Any], at: float) -> None:
        self._run(
            "INSERT INTO audit (at, actor, action, app_id, detail) VALUES (?, ?, ?, ?, ?)",
            (at, actor, action, app_id, json.dumps(detail, sort_keys=True)),
        )

    def audit_log(self, *, app_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        if app_id is None:
            rows = self._all(
                "SELECT id, at, actor, action, app_id, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._all(
                "SELECT id, at, actor, action, app_id, detail FROM audit WHERE app_id = ? ORDER BY id DESC"
                " LIMIT ?",
                (app_id, limit),
            )
        return [
            {
                "id": r[0],
                "at": r[1],
                "actor": r[2],
                "action": r[3],
                "app_id": r[4],
                "detail": json.loads(r[5]),
            }
            for r in rows
        ]
