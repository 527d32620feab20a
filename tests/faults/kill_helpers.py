"""Helpers for the kill -9 fault tests: the seeded chaos plan, killing and waiting for processes, a
mini-app that writes under load and reports every acknowledged write, and the on-disk checks.

``VH_FAULT_ROUNDS`` sets the number of kill rounds (short by default, for CI); ``VH_FAULT_SEED``
replays a failing run (every failure message names the seed and the plan so far).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.faults.io_helpers import ROUNDS_ENV, SEED_ENV, fault_seed
from vehicle_host.bundle_cache import BundleCache
from vehicle_host.bundles import archive

T = TypeVar("T")

#: storage writes the load app makes: the pad makes each a few hundred bytes (a page of SQLite per
#: few writes) without nearing the 10 MB quota over a long run
PAD = "x" * 200
LOAD_PERMISSIONS = ("parts.read", "parts.order")
#: permissions the test answers for the driver, again and again (no plugin uses them)
GRANT_PERMISSIONS = ("fault.grant.a", "fault.grant.b", "fault.grant.c")


@dataclass
class Chaos:
    """A seeded random plan: which process dies and when. Its ``log`` is part of every failure."""

    seed: int
    random: random.Random = field(init=False)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    @classmethod
    def from_env(cls) -> Chaos:
        return cls(fault_seed())

    def victims(self, kinds: Sequence[str], rounds: int) -> list[str]:
        """``rounds`` victims: each kind once per shuffled cycle, so a short run still kills them all."""
        plan: list[str] = []
        while len(plan) < rounds:
            cycle = list(kinds)
            self.random.shuffle(cycle)
            plan += cycle
        return plan[:rounds]

    def delay(self, low: float, high: float) -> float:
        return round(self.random.uniform(low, high), 3)

    def note(self, text: str) -> None:
        self.log.append(text)

    def why(self, problem: str) -> str:
        """A failure message that lets the run be replayed."""
        plan = "\n  ".join(self.log[-40:])
        return f"{problem}\nreplay with {SEED_ENV}={self.seed} ({ROUNDS_ENV} for the rounds)\n  {plan}"


def kill9(pid: int) -> bool:
    """SIGKILL one process (not its group). False when it was already gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until none of ``pids`` runs; the ones still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [pid for pid in left if alive(pid)]
    return left


def describe(pids: Iterable[int]) -> str:
    """``pid: command line`` of each of ``pids``, for a failure message."""
    lines = []
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            command = "(gone)"
        lines.append(f"{pid}: {command.strip()[:300]}")
    return "; ".join(lines)


def kill_groups(leaders: Iterable[int]) -> None:
    """SIGKILL the process group of each of ``leaders`` (hubs started with their own session): whatever
    a killed hub left behind does not outlive the test."""
    for pgid in leaders:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


# -- databases ----------------------------------------------------------------------------------


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of ``db`` (``ok`` when sound), opened as the product opens it."""
    con = sqlite3.connect(db, timeout=10)
    try:
        return "; ".join(str(row[0]) for row in con.execute("PRAGMA integrity_check"))
    finally:
        con.close()


def rows(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db, timeout=10)
    try:
        return list(con.execute(sql, params))
    finally:
        con.close()


def stored_items(db: Path, app_id: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in rows(db, "SELECT key, value FROM items WHERE app_id = ?", (app_id,))}


def outbox_notes(db: Path) -> dict[str, dict[str, Any]]:
    """order id -> its payload, for every order in the parts outbox."""
    return {rid: json.loads(payload) for rid, payload in rows(db, "SELECT id, payload FROM outbox")}


def stored_grants(db: Path, app_id: str) -> dict[str, bool]:
    found = rows(db, "SELECT permission, granted FROM grants WHERE app_id = ?", (app_id,))
    return {permission: bool(granted) for permission, granted in found}


def store_value(key: str) -> str:
    """The JSON text the load app stores under ``key`` (so a torn or mixed-up value shows)."""
    return json.dumps({"k": key, "pad": PAD}, separators=(",", ":"))


# -- apps ---------------------------------------------------------------------------------------

LOAD_PAGE_JS = """
var page = null;
var run = Date.now().toString(36) + Math.floor(Math.random() * 1e6).toString(36);
var PAD = '%(pad)s';

function store(i) {
  var key = 'k-' + run + '-' + i;
  fc.storage.set({
    key: key,
    value: JSON.stringify({ k: key, pad: PAD }),
    success: function () { page.setData({ s: key }); setTimeout(function () { store(i + 1); }, 25); },
    fail: function () { setTimeout(function () { store(i + 1); }, 100); }
  });
}

function order(i) {
  var note = 'n-' + run + '-' + i;
  var again = function () { setTimeout(function () { order(i + 1); }, 150); };
  fc.parts.cartAdd({
    partNumber: 'BP-' + (i %% 7), quantity: 1 + (i %% 3),
    success: function () {
      fc.parts.order({
        note: note,
        success: function (r) { page.setData({ o: r.orderId + ' ' + note }); again(); },
        fail: again
      });
    },
    fail: again
  });
}

Page({
  data: { s: '', o: '' },
  onLoad: function () { page = this; store(1); order(1); }
});
"""


def write_load_app(root: Path, app_id: str, version: str = "1.0.0") -> Path:
    """A mini-app that stores values and places parts orders in a loop while it runs; every write
    the host acknowledged reaches the shell as ``page.setData`` (``s``: the stored key; ``o``:
    ``"<orderId> <note>"``)."""
    (root / "pages/index").mkdir(parents=True, exist_ok=True)
    manifest = {
        "pages": ["pages/index/index"],
        "vehicle": {
            "id": app_id,
            "name": "Fault load",
            "version": version,
            "publisher": "vehicle-host tests",
            "permissions": [*LOAD_PERMISSIONS, *GRANT_PERMISSIONS],
        },
    }
    (root / "app.json").write_text(json.dumps(manifest))
    (root / "app.js").write_text("App({});\n")
    (root / "pages/index/index.js").write_text(LOAD_PAGE_JS % {"pad": PAD})
    (root / "pages/index/index.wxml").write_text("<view><text>{{s}}</text><text>{{o}}</text></view>\n")
    return root


def versioned_copy(source: Path, target: Path, version: str) -> Path:
    """A copy of the app at ``source`` whose manifest says ``version`` and whose files differ."""
    shutil.copytree(source, target)
    manifest = json.loads((target / "app.json").read_text())
    manifest["vehicle"]["version"] = version
    (target / "app.json").write_text(json.dumps(manifest))
    (target / "version.txt").write_text(f"{version}\n" * 64)
    return target


def pack(app_dir: Path, out: Path) -> Path:
    archive.pack(app_dir, out)
    return out


def install(cache_root: Path, bundle: Path) -> str:
    """Install and activate ``bundle`` in the cache at ``cache_root``; the active version."""
    with BundleCache(cache_root) as cache:
        installed = cache.install(bundle)
        cache.activate(installed.app_id, installed.digest)
        return installed.version


def active_version(cache_root: Path, app_id: str) -> tuple[str, Path] | None:
    """The active version of ``app_id`` and its object folder, read through a fresh cache (which
    also cleans up what a killed installer left half made)."""
    with BundleCache(cache_root) as cache:
        active = cache.active(app_id)
        return None if active is None else (active.version, active.path)
