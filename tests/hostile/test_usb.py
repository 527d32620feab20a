"""Hostile USB sticks on a real loop device, mounted by the real ``SystemMounter`` (root, as in CI)
and read by the real ``UsbImporter``: each is refused with a reason the driver can act on, the
bundle cache stays exactly as it was, and the drive is always unmounted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_usb_import import APP_ID, VEHICLE, Registry, drive_with, make_registry
from vehicle_host.bundle_cache import BundleCache
from vehicle_host.trust.client import TrustedRepo
from vehicle_host.updates.sync import Syncer
from vehicle_host.usb_import.hotplug import BlockDevice, FakeSource, probe_fs_type
from vehicle_host.usb_import.importer import ImportOutcome, UsbImporter
from vehicle_host.usb_import.limits import REPO_DIR
from vehicle_host.usb_import.mount import SystemMounter, is_mounted

from .bundle_fixtures import tree_state

pytestmark = pytest.mark.integration
MIB = 1024 * 1024


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout.strip()


def ext4_image(content: Path, image: Path, size: int = 32 * MIB, *extra: str) -> Path:
    with image.open("wb") as f:
        f.truncate(size)
    _run("mkfs.ext4", "-q", "-F", *extra, "-d", str(content), str(image))
    return image


@contextlib.contextmanager
def loop(image: Path) -> Iterator[str]:
    """``image`` as a loop device; afterwards nothing of it stays mounted or attached, even when the
    code under test left a mount behind (the test has failed on that already)."""
    node = _run("losetup", "-f", "--show", str(image))
    try:
        yield node
    finally:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        for point in [line.split(" ")[1] for line in mounts if line.split(" ", 1)[0] == node][::-1]:
            subprocess.run(["umount", "-l", point], check=False, timeout=30)
        subprocess.run(["losetup", "-d", node], check=False, timeout=30)


@contextlib.contextmanager
def writable(image: Path, where: Path) -> Iterator[Path]:
    """The image mounted read-write at ``where``, as the attacker prepares the stick."""
    where.mkdir()
    with loop(image) as node:
        _run("mount", "-t", "ext4", node, str(where))
        try:
            yield where
        finally:
            _run("umount", str(where))


class Unit:
    """A head unit: its trust root, TUF metadata, bundle cache and where drives get mounted."""

    def __init__(self, tmp: Path, registry: Registry) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.root = registry.trust_root(tmp / "root.json")
        self.metadata = tmp / "tuf"
        self.cache_dir = tmp / "cache"
        self.runtime = tmp / "run"
        self.progress: list[dict[str, Any]] = []
        BundleCache(self.cache_dir).close()  # a head unit always has its (maybe empty) cache

    def seed(self, repo_dir: Path) -> None:
        """Bring the unit up to date from ``repo_dir`` (as an earlier import would have)."""
        with BundleCache(self.cache_dir) as cache:
            report = Syncer(TrustedRepo(self.metadata, self.root, repo_dir), cache, VEHICLE).sync_once()
        assert report.errors == {} and report.changed, report

    def state(self) -> tuple[list[str], list[str]]:
        """The cache on disk, and the TUF metadata the unit trusts beyond its provisioned root (which
        the client writes down as version 1 on first use)."""
        provisioned = ("root.json -> root_history/1.root.json", "root_history/", "root_history/1.root.json ")
        return tree_state(self.cache_dir), [
            m for m in tree_state(self.metadata) if not m.startswith(provisioned)
        ]

    def insert(self, image: Path) -> tuple[ImportOutcome, str]:
        """Attach ``image`` as a loop device and import it as a plugged-in stick."""
        with loop(image) as node:
            device = BlockDevice(node, probe_fs_type(node), True, image.stat().st_size)

            async def main() -> ImportOutcome:
                with BundleCache(self.cache_dir) as cache:
                    importer = UsbImporter(
                        FakeSource(),
                        SystemMounter(self.runtime),
                        cache,
                        self.root,
                        VEHICLE,
                        self.progress.append,
                        metadata_dir=self.metadata,
                    )
                    return await importer.import_device(device)

            outcome = asyncio.run(main())
            assert not is_mounted(node)
        assert list(self.runtime.iterdir()) == []  # unmounted, private mount point removed
        assert str(self.runtime) not in Path("/proc/self/mounts").read_text()
        assert self.progress[-1]["status"] == ("done" if outcome.ok else "failed")
        return outcome, str(device.fs_type)

    def refused(self, image: Path, *needles: str) -> str:
        before = self.state()
        outcome, _ = self.insert(image)
        assert not outcome.ok, outcome.message
        for needle in needles:
            assert needle in outcome.message, outcome.message
        assert "Traceback" not in outcome.message and len(outcome.message) <= 2000
        assert self.state() == before
        return outcome.message


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = make_registry(tmp_path / "registry")
    reg.publish({APP_ID: "1.0.0"})
    return reg


@pytest.fixture
def unit(tmp_path: Path, registry: Registry) -> Unit:
    return Unit(tmp_path / "unit", registry)


def stick(tmp: Path, repo_dir: Path, name: str) -> Path:
    return drive_with(repo_dir, tmp / name)


def test_control_a_signed_stick_imports(tmp_path: Path, registry: Registry, unit: Unit) -> None:
    image = ext4_image(stick(tmp_path, registry.repo_dir, "good"), tmp_path / "good.img")
    outcome, fs_type = unit.insert(image)
    assert fs_type == "ext4" and outcome.ok, outcome.message
    assert [a["app_id"] for a in outcome.applied] == [APP_ID]


def test_unsigned_snapshot_on_a_stick_is_refused(tmp_path: Path, registry: Registry, unit: Unit) -> None:
    content = stick(tmp_path, registry.repo_dir, "unsigned")
    for meta in (content / REPO_DIR / "metadata").glob("*.json"):
        if "root" not in meta.name:
            doc = json.loads(meta.read_text())
            doc["signatures"] = []
            meta.write_text(json.dumps(doc))
    unit.refused(ext4_image(content, tmp_path / "unsigned.img"), "bad signature", "does not trust")


def test_stick_signed_by_an_unknown_root_is_refused(tmp_path: Path, registry: Registry, unit: Unit) -> None:
    unit.seed(registry.repo_dir)
    stranger = make_registry(tmp_path / "stranger")
    stranger.publish({APP_ID: "9.9.9"})
    content = stick(tmp_path, stranger.repo_dir, "stranger")
    unit.refused(ext4_image(content, tmp_path / "stranger.img"), "signature", "does not trust")
    with BundleCache(unit.cache_dir) as cache:
        active = cache.active(APP_ID)
        assert active is not None and active.version == "1.0.0"


def test_an_older_snapshot_replayed_from_a_stick_is_refused(
    tmp_path: Path, registry: Registry, unit: Unit
) -> None:
    old = stick(tmp_path, registry.repo_dir, "old")  # a validly signed export of 1.0.0, kept aside
    registry.publish({APP_ID: "1.1.0"})
    unit.seed(registry.repo_dir)
    unit.refused(ext4_image(old, tmp_path / "old.img"), "rollback/replay refused", "older metadata")


def test_a_frozen_expired_snapshot_on_a_stick_is_refused(tmp_path: Path, unit: Unit) -> None:
    frozen = make_registry(tmp_path / "frozen")
    frozen.repo.clock = lambda: datetime.now(UTC) - timedelta(days=3)
    frozen.publish({APP_ID: "1.0.0"})
    trusting = Unit(tmp_path / "trusting", frozen)
    content = stick(tmp_path, frozen.repo_dir, "frozen")
    trusting.refused(ext4_image(content, tmp_path / "frozen.img"), "expired metadata", "timestamp")


def _scramble_after(image: Path, keep: int) -> None:
    """Random bytes over everything after the first ``keep`` bytes (the signature stays)."""
    with image.open("r+b") as f:
        f.seek(keep)
        size = image.stat().st_size - keep
        f.write(os.urandom(size))


def test_random_bytes_behind_an_ext4_signature_are_refused(tmp_path: Path, unit: Unit) -> None:
    image = tmp_path / "bad-ext4.img"
    with image.open("wb") as f:
        f.truncate(8 * MIB)
    _run("mkfs.ext4", "-q", "-F", str(image))
    _scramble_after(image, 2048)  # boot block + superblock kept: blkid still says ext4
    message = unit.refused(image, "ext4 filesystem", "damaged or not what it claims")
    assert "mount said" in message


def test_random_bytes_behind_a_vfat_signature_are_refused(tmp_path: Path, unit: Unit) -> None:
    image = tmp_path / "bad-vfat.img"
    with image.open("wb") as f:
        f.truncate(8 * MIB)
    _run("mkfs.vfat", "-F", "32", str(image))
    with image.open("r+b") as f:  # keep the boot sector, scramble FATs and data
        f.seek(512 * 32)
        f.write(os.urandom(8 * MIB - 512 * 32))
    before = unit.state()
    outcome, fs_type = unit.insert(image)
    assert fs_type == "vfat" and not outcome.ok
    # a kernel without vfat says so; one with it finds the filesystem damaged or the snapshot missing
    assert any(
        needle in outcome.message
        for needle in ("cannot read vfat", "damaged or not what it claims", "no vehicle-host-repo folder")
    ), outcome.message
    assert unit.state() == before


def test_a_stick_with_too_many_files_is_refused(tmp_path: Path, registry: Registry, unit: Unit) -> None:
    image = ext4_image(
        stick(tmp_path, registry.repo_dir, "many"), tmp_path / "many.img", 48 * MIB, "-N", "12000"
    )
    with writable(image, tmp_path / "prepare") as root:
        junk = root / REPO_DIR / "targets" / "junk"
        junk.mkdir()
        for i in range(10_001):
            (junk / f"{i}").touch()
    unit.refused(image, "more than 10,000 files", "export only the apps")


def test_an_oversize_stick_is_refused(tmp_path: Path, registry: Registry, unit: Unit) -> None:
    content = stick(tmp_path, registry.repo_dir, "huge")
    with (content / REPO_DIR / "targets" / "huge.bin").open("wb") as f:
        f.truncate(3 * 1024 * MIB)  # sparse: 3 GiB as the drive reports it, a few blocks on disk
    image = ext4_image(content, tmp_path / "huge.img")
    unit.refused(image, "larger than 2,147,483,648 bytes", "export only the apps")
    shutil.rmtree(content)
