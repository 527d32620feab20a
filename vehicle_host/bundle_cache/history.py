"""The cache's install and activation history (``cache.db``): every SQL statement of the cache.

The file system is the truth (an object directory exists or not, a link points somewhere); this
history orders what the file system cannot: when each object was installed and which objects were
activated in turn, for ``rollback`` and ``gc``. SQLite in WAL mode with ``synchronous=FULL``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vehicle_host.errors import VehicleHostError
from vehicle_host.sqlite_full import is_disk_full

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS objects ("
    " digest TEXT PRIMARY KEY, app_id TEXT NOT NULL, version TEXT NOT NULL, installed_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS activations ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, app_id TEXT NOT NULL, digest TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS activations_app ON activations (app_id, seq)",
)


class HistoryError(VehicleHostError):
    """The history could not be written (the disk is full or failing); the disk stays the truth."""


def _why(exc: BaseException, path: Path) -> str:
    if is_disk_full(exc, path):
        return f"no space left on the disk of {path} (ENOSPC: {exc}); free some space"
    return str(exc)


@dataclass(frozen=True, slots=True)
class ObjectRow:
    digest: str
    app_id: str
    version: str
    installed_at: float


class History:
    """``cache.db``: created mode 0600; one connection, used under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open the bundle cache history {path}: {_why(exc, path)}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                why = _why(exc, self.path)
                raise HistoryError(f"cannot update the bundle cache history {self.path}: {why}") from None

    def add_object(self, digest: str, app_id: str, version: str) -> None:
        with self._writing():
            self._db.execute(
                "INSERT OR IGNORE INTO objects (digest, app_id, version, installed_at) VALUES (?, ?, ?, ?)",
                (digest, app_id, version, time.time()),
            )

    def remove_object(self, digest: str) -> None:
        with self._writing():
            self._db.execute("DELETE FROM objects WHERE digest = ?", (digest,))

    def objects(self, app_id: str | None = None) -> list[ObjectRow]:
        """Installed objects, newest install first."""
        query = "SELECT digest, app_id, version, installed_at FROM objects"
        args: tuple[str, ...] = ()
        if app_id is not None:
            query += " WHERE app_id = ?"
            args = (app_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY installed_at DESC, rowid DESC", args).fetchall()
        return [ObjectRow(*row) for row in rows]

    def object(self, digest: str) -> ObjectRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT digest, app_id, version, installed_at FROM objects WHERE digest = ?", (digest,)
            ).fetchone()
        return ObjectRow(*row) if row else None

    def add_activation(self, app_id: str, digest: str) -> None:
        with self._writing():
            self._db.execute(
                "INSERT INTO activations (app_id, digest, at) VALUES (?, ?, ?)", (app_id, digest, time.time())
            )

    def activations(self, app_id: str) -> list[str]:
        """Digests activated for ``app_id``, most recent first (repeats included)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT digest FROM activations WHERE app_id = ? ORDER BY seq DESC", (app_id,)
            ).fetchall()
        return [row[0] for row in rows]

    def last_used(self, app_id: str) -> dict[str, float]:
        """Per digest of ``app_id``: the later of its install and its last activation."""
        with self._lock:
            rows = self._db.execute(
                "SELECT o.digest, MAX(o.installed_at, COALESCE(MAX(a.at), 0)) FROM objects o"
                " LEFT JOIN activations a ON a.digest = o.digest WHERE o.app_id = ? GROUP BY o.digest",
                (app_id,),
            ).fetchall()
        return {digest: at for digest, at in rows}
