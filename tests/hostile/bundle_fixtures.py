"""Shared pieces of the hostile bundle, USB and config tests: the real CLIs as processes, a bundle
cache with one app already active, hand-made hostile archives and a fingerprint of everything a
cache holds on disk (to prove a refusal changed nothing)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from vehicle_host.bundles import archive
from vehicle_host.bundles.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "vehicle-info"
EXAMPLE_ID = load_manifest(EXAMPLE).app_id
APP_JSON = (EXAMPLE / "app.json").read_bytes()
CLI_TIMEOUT = 60
#: what the cache keeps beside its objects and links; its content is checked through the cache API
CACHE_BOOKKEEPING = {"cache.db", "cache.db-wal", "cache.db-shm", ".lock"}


def vehicle_host(*args: str | Path, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``python -m vehicle_host ARGS`` as a process of its own (the command a user types)."""
    return subprocess.run(
        [sys.executable, "-m", "vehicle_host", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("VEHICLE_HOST_")},
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The refusal a command printed: exit status not 0, one stderr line, no traceback."""
    assert done.returncode != 0, f"accepted: {done.stdout}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def tree_state(root: Path) -> list[str]:
    """Every path under ``root`` with its link target or content digest (bookkeeping files aside)."""
    found: list[str] = []
    if not root.exists():
        return found
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in CACHE_BOOKKEEPING:
            continue
        if path.is_symlink():
            found.append(f"{relative} -> {os.readlink(path)}")
        elif path.is_file():
            found.append(f"{relative} {hashlib.sha256(path.read_bytes()).hexdigest()[:16]}")
        else:
            found.append(f"{relative}/")
    return found


@dataclass
class ActiveCache:
    """A bundle cache (made with ``vehicle-host bundle install``) whose one app is active."""

    root: Path
    digest: str

    def state(self) -> list[str]:
        return tree_state(self.root)

    def install(self, bundle: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return vehicle_host("bundle", "install", bundle, "--cache", self.root, *extra)


def active_cache(tmp: Path) -> ActiveCache:
    good = tmp / "good.vhb"
    packed = archive.pack(EXAMPLE, good)
    root = tmp / "cache"
    done = vehicle_host("bundle", "install", good, "--cache", root)
    assert done.returncode == 0, done.stderr
    assert os.readlink(root / "apps" / EXAMPLE_ID) == f"../objects/{packed.sha256}"
    return ActiveCache(root, packed.sha256)


def entry(name: str, mode: int = 0o100644) -> zipfile.ZipInfo:
    """A zip entry made on Unix with the file type and mode ``mode``."""
    info = zipfile.ZipInfo(name, date_time=archive.EPOCH)
    info.create_system = 3
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def hostile_zip(
    path: Path,
    entries: list[tuple[str | zipfile.ZipInfo, bytes]],
    *,
    rename: dict[bytes, bytes] | None = None,
) -> Path:
    """A bundle holding the example app's app.json and ``entries`` as given (no checks at all).

    ``rename`` replaces bytes in the finished archive (same length), for names zipfile cannot write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(entry("app.json"), APP_JSON)
        for name, data in entries:
            zf.writestr(name if isinstance(name, zipfile.ZipInfo) else entry(name), data)
    if rename:
        data = path.read_bytes()
        for old, new in rename.items():
            assert len(old) == len(new) and old in data
            data = data.replace(old, new)
        path.write_bytes(data)
    return path


def mid_ratio_data(size: int, seed: int) -> bytes:
    """``size`` bytes that deflate about 25 times (under the 100:1 bomb ratio, over 10:1)."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += bytes([rng.randrange(256)]) * rng.randrange(40, 120)
    return bytes(out[:size])
