"""is_disk_full: SQLite's SQLITE_FULL and the OS's ENOSPC count, other failures do not."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from vehicle_host.sqlite_full import is_disk_full


def test_a_database_out_of_pages_is_a_full_disk(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "small.db", isolation_level=None)
    db.execute("CREATE TABLE t (v BLOB)")
    db.execute("PRAGMA max_page_count = 4")
    with pytest.raises(sqlite3.Error) as full:
        db.execute("INSERT INTO t VALUES (?)", (b"x" * 65536,))
    db.close()
    assert is_disk_full(full.value)


def test_other_sqlite_errors_are_not_even_when_they_say_full(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "names.db", isolation_level=None)
    db.execute("CREATE TABLE people (fullname TEXT UNIQUE)")
    db.execute("INSERT INTO people VALUES ('a')")
    with pytest.raises(sqlite3.IntegrityError) as clash:
        db.execute("INSERT INTO people VALUES ('a')")
    db.close()
    assert "fullname" in str(clash.value)
    assert not is_disk_full(clash.value)
    assert not is_disk_full(clash.value, tmp_path / "names.db")  # the disk has room
    assert not is_disk_full(ValueError("the queue is full"))


def test_enospc_is_a_full_disk_and_other_os_errors_are_not() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_disk_full(OSError(errno.EIO, "Input/output error"))
