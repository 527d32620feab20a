"""Telling a full disk apart from other SQLite (and file system) write failures, so every store can
say "free some space" only when that is the problem."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

__all__ = ["NEARLY_FULL", "is_disk_full"]

#: SQLite's own text for ``SQLITE_FULL``, for an error that carries no code
FULL_MESSAGE = "database or disk is full"
#: below this many free bytes a failing SQLite call on ``path`` is taken for a full disk (SQLite reports
#: a full disk as "disk I/O error" when it cannot create its ``-shm`` file)
NEARLY_FULL = 64 * 1024


def is_disk_full(exc: BaseException, path: Path | None = None) -> bool:
    """Whether ``exc`` means the disk is full: SQLite's ``SQLITE_FULL``, or ``ENOSPC`` from the OS.

    With ``path`` (the database file), any other SQLite error also counts while the disk holding it
    has less than :data:`NEARLY_FULL` bytes free."""
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    if not isinstance(exc, sqlite3.Error):
        return False
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or FULL_MESSAGE in str(exc):
        return True
    if path is None:
        return False
    try:
        return shutil.disk_usage(path.parent).free < NEARLY_FULL
    except OSError:
        return False
