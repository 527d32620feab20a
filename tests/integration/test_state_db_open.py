"""Two plugin processes opening the same new state file at once (an old process and its replacement)
both get it: SQLite answers "locked" at once while the other switches the journal to WAL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

OPENER = """
import sys, time
from pathlib import Path
from vehicle_host.plugins.storage import StorageDB
start = float(sys.argv[2])
while time.time() < start:
    pass
db = StorageDB(Path(sys.argv[1]))
db.set("com.test.app", sys.argv[3], '"v"')
db.close()
"""


def test_processes_opening_a_new_state_file_together_all_get_it(short_dir: Path) -> None:
    for round_ in range(6):
        path = short_dir / f"r{round_}" / "storage.db"
        path.parent.mkdir()
        start = time.time() + 1.5  # both are past their imports by then
        command = [sys.executable, "-c", OPENER, str(path), str(start)]
        children = [subprocess.Popen([*command, name], stderr=subprocess.PIPE) for name in ("a", "b")]
        errors = [child.communicate(timeout=60)[1].decode(errors="replace")[-300:] for child in children]
        assert [c.returncode for c in children] == [0, 0], errors
        with sqlite3.connect(path) as db:
            assert sorted(k for (k,) in db.execute("SELECT key FROM items")) == ["a", "b"]
