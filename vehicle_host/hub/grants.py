"""The driver's answers to consent requests: one SQLite file in the hub's state directory.

``get`` returns ``True`` (allowed), ``False`` (refused: do not ask again) or ``None`` (never asked).
Writes are durable when ``set``/``revoke`` return (WAL, synchronous=FULL). One store per process;
calls may come from several threads (a lock serialises them).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vehicle_host.errors import VehicleHostError

FILENAME = "grants.sqlite3"
SCHEMA_VERSION = 1
MAX_APP_ID_CHARS = 128
MAX_PERMISSION_CHARS = 128
MAX_BY_CHARS = 64
MAX_GRANTS_PER_APP = 1000

_MIGRATIONS: tuple[str, ...] = (
    # version 1
    """
    CREATE TABLE grants (
        app_id TEXT NOT NULL,
        permission TEXT NOT NULL,
        granted INTEGER NOT NULL CHECK (granted IN (0, 1)),
        granted_by TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (app_id, permission)
    ) WITHOUT ROWID;
    """,
)


class GrantStoreError(VehicleHostError):
    """A grant cannot be read or stored (bad value, or the database is unusable)."""


@dataclass(frozen=True, slots=True)
class Grant:
    app_id: str
    permission: str
    granted: bool
    by: str  # who answered: "driver", "dealer", "policy", ...
    at: float  # unix time of the answer


class GrantStore:
    def __init__(self, path: Path) -> None:
        """Open (or create) the store at ``path``, a file such as ``<state dir>/grants.sqlite3``."""
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise GrantStoreError(
                f"cannot open the permission store {path}: {exc}. "
                "Check the state directory's permissions and free space, or remove the damaged file."
            ) from None

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise GrantStoreError(
                f"{self.path} was written by a newer vehicle-host (schema {version}); update the host"
            )
        for number in range(version, SCHEMA_VERSION):
            # one transaction per step: the schema change and its version number land together
            script = f"BEGIN IMMEDIATE;\n{_MIGRATIONS[number]}\nPRAGMA user_version={number + 1};\nCOMMIT;"
            try:
                self._db.executescript(script)
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def get(self, app_id: str, permission: str) -> bool | None:
        _check(app_id, permission)
        with self._lock:
            row = self._db.execute(
                "SELECT granted FROM grants WHERE app_id = ? AND permission = ?", (app_id, permission)
            ).fetchone()
        return None if row is None else bool(row[0])

    def set(self, app_id: str, permission: str, granted: bool, by: str) -> None:
        _check(app_id, permission)
        if not isinstance(granted, bool):
            raise GrantStoreError("granted must be true or false")
        if not isinstance(by, str) or not 0 < len(by) <= MAX_BY_CHARS:
            raise GrantStoreError(f"'by' must name who answered in 1 to {MAX_BY_CHARS} characters")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (count,) = self._db.execute(
                    "SELECT COUNT(*) FROM grants WHERE app_id = ? AND permission != ?", (app_id, permission)
                ).fetchone()
                if count >= MAX_GRANTS_PER_APP:
                    raise GrantStoreError(f"{app_id} already has {MAX_GRANTS_PER_APP} stored answers")
                self._db.execute(
                    "INSERT INTO grants (app_id, permission, granted, granted_by, at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (app_id, permission) DO UPDATE SET granted = excluded.granted, "
                    "granted_by = excluded.granted_by, at = excluded.at",
                    (app_id, permission, int(granted), by, time.time()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def revoke(self, app_id: str, permission: str | None = None) -> int:
        """Forget the answer for ``permission`` (or every answer of the app); returns how many."""
        params: tuple[str, ...]
        if permission is None:
            _check(app_id, "x")
            query, params = "DELETE FROM grants WHERE app_id = ?", (app_id,)
        else:
            _check(app_id, permission)
            query, params = "DELETE FROM grants WHERE app_id = ? AND permission = ?", (app_id, permission)
        with self._lock:
            return self._db.execute(query, params).rowcount

    def list(self, app_id: str) -> list[Grant]:
        _check(app_id, "x")
        with self._lock:
            rows = self._db.execute(
                "SELECT permission, granted, granted_by, at FROM grants WHERE app_id = ? ORDER BY permission",
                (app_id,),
            ).fetchall()
        return [Grant(app_id, perm, bool(granted), by, at) for perm, granted, by, at in rows]

    def grants(self, app_id: str) -> dict[str, bool]:
        """permission -> granted for one app: the gateway's ``grants`` input."""
        return {g.permission: g.granted for g in self.list(app_id)}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _check(app_id: str, permission: str) -> None:
    for what, value, limit in (
        ("app id", app_id, MAX_APP_ID_CHARS),
        ("permission", permission, MAX_PERMISSION_CHARS),
    ):
        if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
            raise GrantStoreError(f"{what} must be 1 to {limit} printable characters")
