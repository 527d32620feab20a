"""Helpers for the disk, power and CAN fault tests: a small real file system to fill, seeded kill
schedules, and a dealer service on 127.0.0.1 that records the idempotency key of every POST.

The small file system is a ``tmpfs`` mounted with ``size=``, so it needs root (CI runs as root); a
test without root fails with a message saying so instead of silently testing nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.dealer_service import DealerHandler, DealerServer, serve

ROUNDS_ENV = "VH_FAULT_ROUNDS"
SEED_ENV = "VH_FAULT_SEED"
NO_SPACE = ("no space left", "enospc")


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "the disk-full tests mount a small tmpfs and need root (CI runs them as root); "
            "run them with sudo or in the CI container"
        )


@contextlib.contextmanager
def small_disk(where: Path, size_kib: int) -> Iterator[Path]:
    """A fresh ``tmpfs`` of ``size_kib`` KiB mounted on ``where`` (created), unmounted afterwards."""
    require_root()
    where.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.fail(f"cannot mount a {size_kib} KiB tmpfs on {where}: {mount.stderr.strip()}")
    try:
        yield where
    finally:
        done = subprocess.run(["umount", str(where)], capture_output=True, check=False)
        if done.returncode != 0:  # something still holds a file open: detach it anyway
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@dataclass
class Filler:
    """Fills a file system to the last byte; :meth:`free` gives the space back."""

    root: Path
    files: list[Path] = field(default_factory=list)

    def fill(self) -> None:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 512, 1):
            path = self.root / f".filler-{uuid.uuid4().hex[:8]}"
            self.files.append(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                data = b"\xa5" * chunk
                while True:
                    try:
                        os.write(fd, data)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
            finally:
                os.close(fd)
        assert self.free_bytes() < 4096, f"{self.root} still has {self.free_bytes()} bytes free"

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def free(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)
        self.files.clear()


def says_disk_full(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in NO_SPACE)


def fault_rounds(default: int) -> int:
    """How many kill rounds to run: ``VH_FAULT_ROUNDS`` (for long runs) or ``default``."""
    raw = os.environ.get(ROUNDS_ENV, "")
    try:
        return max(1, int(raw)) if raw else default
    except ValueError:
        pytest.fail(f"{ROUNDS_ENV} must be a whole number of rounds, not {raw!r}")


def fault_seed() -> int:
    """The seed of this run's kill schedule: ``VH_FAULT_SEED`` to replay one, else a fresh one."""
    raw = os.environ.get(SEED_ENV, "")
    try:
        return int(raw) if raw else random.SystemRandom().randrange(1 << 32)
    except ValueError:
        pytest.fail(f"{SEED_ENV} must be an integer seed, not {raw!r}")


def replay_hint(seed: int) -> str:
    return f"seed {seed} (replay with {SEED_ENV}={seed})"


@dataclass(frozen=True)
class Post:
    key: str
    path: str
    status: int
    record: dict[str, Any]


class KeyLog:
    """Every POST a dealer answered: its ``Idempotency-Key``, path, status and the record sent back."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self._lock = threading.Lock()

    def add(self, post: Post) -> None:
        with self._lock:
            self.posts.append(post)

    def by_key(self) -> dict[str, set[str]]:
        """Idempotency key -> the dealer ids answered for it (one id per key unless duplicated)."""
        out: dict[str, set[str]] = {}
        with self._lock:
            for post in self.posts:
                if 200 <= post.status < 300:
                    dealer_id = str(post.record.get("orderId") or post.record.get("bookingId"))
                    out.setdefault(post.key, set()).add(dealer_id)
        return out


def recording_dealer(db: Path, port: int = 0) -> tuple[DealerServer, KeyLog]:
    """The reference dealer service on 127.0.0.1 (a daemon thread) with a :class:`KeyLog`."""
    keys = KeyLog()

    class Recording(DealerHandler):
        def respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            if self.command == "POST":
                record = body if isinstance(body, dict) else {}
                keys.add(Post(self.headers.get("Idempotency-Key", ""), self.path, status, record))
            super().respond(status, body, headers)

    return serve("127.0.0.1", port, db, handler=Recording), keys


def free_port() -> int:
    """A loopback port nobody listens on (yet): a dealer URL that stays offline until one is served."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_dealer(server: DealerServer) -> None:
    server.shutdown()
    server.server_close()
