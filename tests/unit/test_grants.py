"""The grant store: the driver's consent answers in SQLite, surviving restarts."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from vehicle_host.hub.grants import SCHEMA_VERSION, GrantStore, GrantStoreError


@pytest.fixture
def store(tmp_path: Path) -> GrantStore:
    return GrantStore(tmp_path / "state" / "grants.sqlite3")


def test_unknown_is_none_then_set_and_change(store: GrantStore) -> None:
    assert store.get("com.a", "vehicle.diagnostics.clear") is None
    store.set("com.a", "vehicle.diagnostics.clear", True, "driver")
    assert store.get("com.a", "vehicle.diagnostics.clear") is True
    store.set("com.a", "vehicle.diagnostics.clear", False, "driver")
    assert store.get("com.a", "vehicle.diagnostics.clear") is False
    assert store.get("com.b", "vehicle.diagnostics.clear") is None


def test_list_grants_and_revoke(store: GrantStore) -> None:
    store.set("com.a", "p.two", False, "driver")
    store.set("com.a", "p.one", True, "dealer")
    store.set("com.b", "p.one", True, "driver")
    listed = store.list("com.a")
    assert [(g.permission, g.granted, g.by) for g in listed] == [
        ("p.one", True, "dealer"),
        ("p.two", False, "driver"),
    ]
    assert store.grants("com.a") == {"p.one": True, "p.two": False}
    assert store.revoke("com.a", "p.one") == 1
    assert store.get("com.a", "p.one") is None
    assert store.revoke("com.a") == 1
    assert store.list("com.a") == []
    assert store.get("com.b", "p.one") is True


def test_answers_survive_a_restart_and_the_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "grants.sqlite3"
    first = GrantStore(path)
    first.set("com.a", "p", True, "driver")
    first.close()
    second = GrantStore(path)
    assert second.get("com.a", "p") is True
    second.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert path.stat().st_mode & 0o077 == 0


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "grants.sqlite3"
    GrantStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(GrantStoreError, match="newer"):
        GrantStore(path)


def test_a_damaged_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "grants.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(GrantStoreError, match="cannot open the permission store"):
        GrantStore(path)


@pytest.mark.parametrize(
    ("app_id", "permission", "by"),
    [
        ("", "p", "driver"),
        ("a" * 129, "p", "driver"),
        ("com.a", "p\n", "driver"),
        ("com.a", "p", ""),
        ("com.a", "p", "x" * 65),
    ],
)
def test_hostile_values_are_bounded(store: GrantStore, app_id: str, permission: str, by: str) -> None:
    with pytest.raises(GrantStoreError):
        store.set(app_id, permission, True, by)


def test_concurrent_writers_in_one_process(store: GrantStore) -> None:
    def write(n: int) -> None:
        for i in range(25):
            store.set(f"com.app{n}", f"p.{i}", i % 2 == 0, "driver")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(4):
        grants = store.grants(f"com.app{n}")
        assert len(grants) == 25 and grants["p.0"] is True and grants["p.1"] is False
