"""App run health on the head unit: the hub records launches, crashes and errors per app version;
the updater sums the new ones and posts them to the registry, which widens or rolls back gray
releases from them.

``<state_dir>/app-runs.db`` (SQLite, WAL) holds ``runs(app_id, version, event, at)`` with events
``launch``, ``crash`` and ``error``, plus the id of the last run already reported.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vehicle_host.errors import VehicleHostError
from vehicle_host.sqlite_full import is_disk_full

EVENTS = ("launch", "crash", "error")
FIELD = {"launch": "launches", "crash": "crashes", "error": "errors"}
MAX_REPORTS = 200  # the registry accepts at most this many entries per post
MAX_COUNT = 1_000_000
MAX_RESPONSE = 64 * 1024
MAX_TEXT = 128
TIMEOUT = 10.0
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, app_id TEXT NOT NULL,"
    " version TEXT NOT NULL, event TEXT NOT NULL CHECK (event IN ('launch', 'crash', 'error')),"
    " at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reported (one INTEGER PRIMARY KEY CHECK (one = 1), last_id INTEGER NOT NULL)",
)


class HealthError(VehicleHostError):
    """Health figures could not be recorded or delivered (they stay queued for the next try)."""


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    app_id: str
    version: str
    event: str
    at: float


class HealthLog:
    """The run log; safe to share between threads, and between the hub and updater processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=5.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # the hub writes here on its event loop: in WAL mode NORMAL keeps the file consistent and
            # skips the fsync per insert (a power cut may lose the last few figures, never corrupt them)
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error as e:
            raise HealthError(f"cannot open the run log {path}: {e}") from e

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, app_id: str, version: str, event: str, at: float | None = None) -> None:
        if event not in EVENTS:
            raise HealthError(f"run event {event!r} must be one of {', '.join(EVENTS)}")
        if not app_id or not version or len(app_id) > MAX_TEXT or len(version) > MAX_TEXT:
            raise HealthError(f"run of {app_id!r} {version!r}: app id and version need 1 to {MAX_TEXT} chars")
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO runs (app_id, version, event, at) VALUES (?, ?, ?, ?)",
                    (app_id, version, event, time.time() if at is None else at),
                )
        except sqlite3.Error as e:
            if is_disk_full(e):
                raise HealthError(
                    f"run of {app_id} {version} not recorded: no space left on the disk of {self.path} "
                    "(ENOSPC); earlier runs are kept. Free some space"
                ) from None
            raise HealthError(f"run of {app_id} {version} not recorded in {self.path}: {e}") from None

    def since(self, cursor: int, limit: int = 100_000) -> list[Run]:
        """Runs with an id above ``cursor``, oldest first (the last one's id is the next cursor)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, app_id, version, event, at FROM runs WHERE id > ? ORDER BY id LIMIT ?",
                (cursor, limit),
            ).fetchall()
        return [Run(*row) for row in rows]

    def reported(self) -> int:
        """The id of the last run already delivered to the registry (0 when none)."""
        with self._lock:
            row = self._db.execute("SELECT last_id FROM reported WHERE one = 1").fetchone()
        return int(row[0]) if row else 0

    def mark_reported(self, cursor: int) -> None:
        """Remember that runs up to ``cursor`` reached the registry, and forget them."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT INTO reported (one, last_id) VALUES (1, ?)"
                    " ON CONFLICT (one) DO UPDATE SET last_id = MAX(last_id, excluded.last_id)",
                    (cursor,),
                )
                self._db.execute("DELETE FROM runs WHERE id <= ?", (cursor,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


def summarize(rows: Iterable[Run]) -> list[dict[str, Any]]:
    """Per app and version: ``{"app_id", "version", "launches", "crashes", "errors"}``."""
    sums: dict[tuple[str, str], dict[str, Any]] = {}
    for run in rows:
        entry = sums.setdefault(
            (run.app_id, run.version),
            {"app_id": run.app_id, "version": run.version, "launches": 0, "crashes": 0, "errors": 0},
        )
        key = FIELD.get(run.event)
        if key is not None:
            entry[key] = min(entry[key] + 1, MAX_COUNT)
    return [sums[k] for k in sorted(sums)]


def post_health(base_url: str, vehicle_id: str, rows: Iterable[Run]) -> dict[str, Any]:
    """POST the summed ``rows`` to ``<base_url>/api/health``; return the registry's answer."""
    reports = summarize(rows)
    if len(reports) > MAX_REPORTS:
        raise HealthError(f"{len(reports)} app versions to report, more than {MAX_REPORTS} per post")
    body = json.dumps({"vehicle_id": vehicle_id, "reports": reports}).encode()
    url = base_url.rstrip("/") + "/api/health"
    if not url.startswith(("http://", "https://")):
        raise HealthError(f"registry URL {base_url!r} must start with http:// or https://")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:  # noqa: S310
            raw = resp.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as e:
        detail = e.read(MAX_RESPONSE).decode(errors="replace")
        raise HealthError(f"registry refused the health report (HTTP {e.code}): {detail}") from e
    except (urllib.error.URLError, OSError) as e:
        raise HealthError(f"cannot reach the registry at {url}: {e}; the report stays queued") from e
    if len(raw) > MAX_RESPONSE:
        raise HealthError(f"registry answer is larger than {MAX_RESPONSE} bytes")
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError as e:
        raise HealthError(f"registry answered with invalid JSON: {e}") from e
    return answer if isinstance(answer, dict) else {}


def report_health(log: HealthLog, base_url: str, vehicle_id: str, batch: int = 10_000) -> int:
    """Post every run not yet reported (in batches); return how many runs were delivered."""
    sent = 0
    while True:
        rows = log.since(log.reported(), limit=batch)
        if not rows:
            return sent
        # keep each post within the registry's per-post limit of distinct app versions
        chunk: list[Run] = []
        seen: set[tuple[str, str]] = set()
        for run in rows:
            if (run.app_id, run.version) not in seen and len(seen) == MAX_REPORTS:
                break
            seen.add((run.app_id, run.version))
            chunk.append(run)
        post_health(base_url, vehicle_id, chunk)
        log.mark_reported(chunk[-1].id)
        sent += len(chunk)
