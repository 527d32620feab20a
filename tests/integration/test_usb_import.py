"""USB import: signed registry snapshots read from a drive, verified with the head unit's trust root.

Most tests feed block-device events through ``FakeSource`` and ``DirectoryMounter``; one test uses a
real loop device with a real filesystem image, the kernel's own uevent and ``mount``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vehicle_host import releases
from vehicle_host.bundle_cache import BundleCache
from vehicle_host.bundles.archive import pack
from vehicle_host.trust import keys, roles
from vehicle_host.trust.repository import RegistryRepository
from vehicle_host.usb_import.hotplug import BlockDevice, FakeSource, PyudevSource, probe_fs_type
from vehicle_host.usb_import.importer import UsbImporter, removable_only
from vehicle_host.usb_import.limits import REPO_DIR, ImportLimits
from vehicle_host.usb_import.mount import DirectoryMounter, Mounter, MountError, SystemMounter, is_mounted

pytestmark = pytest.mark.integration

EXAMPLE_APP = Path(__file__).resolve().parents[2] / "examples" / "vehicle-info"
APP_ID = "com.acme.info"
VEHICLE = "VIN-USB-0001"


# -- a registry with one partner, built with the registry's own repository code ------------------------
@dataclass
class Registry:
    repo: RegistryRepository
    repo_dir: Path
    signer: Any
    role_file: Path
    work: Path

    def trust_root(self, where: Path) -> Path:
        where.write_bytes(self.repo.trust_root())
        return where

    def publish(self, apps: dict[str, str], *, urgent: bool = False) -> dict[str, Path]:
        """Pack, sign and publish ``{app_id: version}``; releases.json pins each as stable."""
        bundles: dict[str, Path] = {}
        pins: dict[str, Any] = {}
        for app_id, version in apps.items():
            bundle = make_bundle(self.work, app_id, version)
            roles.sign_bundle(self.role_file, bundle, self.signer, "acme")
            target = releases.target_path(app_id, version)
            self.repo.add_bundle(target, bundle)
            bundles[app_id] = bundle
            pins[app_id] = {"stable": {"version": version, "target": target, "urgent": urgent}}
        self.repo.publish_partner_role("acme", self.role_file.read_bytes())
        self.repo.set_releases({"format": releases.FORMAT, "apps": pins})
        return bundles


def make_registry(work: Path) -> Registry:
    work.mkdir(parents=True, exist_ok=True)
    repo = RegistryRepository.init(work / "repo", work / "keys")
    key_file = work / "partner" / "acme.pem"
    keys.generate_key(key_file)
    public = json.loads(keys.public_key_path(key_file).read_text())
    repo.add_partner("acme", "com.acme", public)
    return Registry(repo, work / "repo", keys.load_signer(key_file), work / "partner" / "acme.json", work)


def make_bundle(work: Path, app_id: str, version: str) -> Path:
    app_dir = work / "src" / f"{app_id}-{version}"
    shutil.copytree(EXAMPLE_APP, app_dir)
    manifest = json.loads((app_dir / "app.json").read_text())
    manifest["vehicle"].update({"id": app_id, "version": version, "name": f"Info {version}"})
    (app_dir / "app.json").write_text(json.dumps(manifest))
    out = work / "bundles" / f"{app_id}-{version}.vhb"
    out.parent.mkdir(parents=True, exist_ok=True)
    pack(app_dir, out)
    return out


def drive_with(snapshot: Path, drive: Path) -> Path:
    """A drive's content: the registry's static repository copied to ``vehicle-host-repo/``."""
    drive.mkdir(parents=True, exist_ok=True)
    shutil.copytree(snapshot, drive / REPO_DIR)
    return drive


def cache_state(cache_dir: Path) -> list[str]:
    """Everything the cache holds on disk (its objects and activation links), for before/after checks."""
    found = []
    for sub in ("objects", "apps"):
        folder = cache_dir / sub
        if folder.exists():
            for path in sorted(folder.rglob("*")):
                link = f" -> {os.readlink(path)}" if path.is_symlink() else ""
                found.append(f"{path.relative_to(cache_dir)}{link}")
    return found


STICK = BlockDevice("/dev/sdz1", "vfat", True, 16 * 1024 * 1024)


class Harness:
    """One importer over a fake source and directory mounter, run in ``asyncio.run``."""

    def __init__(self, tmp: Path, trust_root: Path, directories: dict[str, Path | None], **kw: Any) -> None:
        self.tmp = tmp
        self.trust_root = trust_root
        self.mounter = DirectoryMounter(directories)
        self.cache_dir = tmp / "cache"
        self.metadata_dir = tmp / "tuf"
        self.progress: list[dict[str, Any]] = []
        self.kw = kw

    def run(self, *devices: BlockDevice, mounter: Mounter | None = None) -> UsbImporter:
        async def main() -> UsbImporter:
            source = FakeSource()
            with BundleCache(self.cache_dir) as cache:
                importer = UsbImporter(
                    source,
                    mounter or self.mounter,
                    cache,
                    self.trust_root,
                    VEHICLE,
                    self.progress.append,
                    metadata_dir=self.metadata_dir,
                    **self.kw,
                )
                runner = asyncio.create_task(importer.run())
                for count, device in enumerate(devices, 1):
                    source.add(device)
                    async with asyncio.timeout(60):
                        while len(importer.outcomes) < count:
                            await asyncio.sleep(0.01)
                source.close()
                await asyncio.wait_for(runner, 60)
            return importer

        return asyncio.run(main())

    def last(self) -> dict[str, Any]:
        return self.progress[-1]


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return make_registry(tmp_path / "registry")


def test_a_signed_snapshot_on_a_drive_is_verified_installed_and_activated(
    tmp_path: Path, registry: Registry
) -> None:
    bundles = registry.publish({APP_ID: "1.0.0", "com.acme.maps": "2.1.0"})
    drive = drive_with(registry.repo_dir, tmp_path / "drive")
    h = Harness(tmp_path, registry.trust_root(tmp_path / "root.json"), {STICK.node: drive})
    importer = h.run(STICK)

    assert h.mounter.mounts == [STICK.node] and h.mounter.unmounts == [STICK.node] and not h.mounter.active
    assert h.last()["status"] == "done", h.progress
    assert {p["status"] for p in h.progress} <= {"running", "done"}
    assert all(set(p) == {"title", "done", "total", "status", "message"} for p in h.progress)
    assert "com.acme.info 1.0.0" in h.last()["message"]
    [outcome] = importer.outcomes
    assert outcome.ok
    assert sorted((a["app_id"], a["version"]) for a in outcome.applied) == [
        ("com.acme.info", "1.0.0"),
        ("com.acme.maps", "2.1.0"),
    ]
    with BundleCache(h.cache_dir) as cache:
        active = cache.active(APP_ID)
        assert active is not None and active.version == "1.0.0"
        assert (active.path / "app.json").is_file()
        assert cache.active("com.acme.maps") is not None
    # the drive was only read
    assert sorted(p.name for p in (drive / REPO_DIR / "targets").iterdir()) == sorted(
        p.name for p in (registry.repo_dir / "targets").iterdir()
    )
    assert bundles[APP_ID].is_file()

    # a newer snapshot on the same drive updates the app; the same one again changes nothing
    registry.publish({APP_ID: "1.1.0"})
    shutil.rmtree(drive / REPO_DIR)
    drive_with(registry.repo_dir, drive)
    h.progress.clear()
    importer = h.run(STICK, STICK)
    assert [o.ok for o in importer.outcomes] == [True, True]
    assert [a["version"] for a in importer.outcomes[0].applied] == ["1.1.0"]
    assert importer.outcomes[1].applied == []
    assert "up to date" in importer.outcomes[1].message
    with BundleCache(h.cache_dir) as cache:
        active = cache.active(APP_ID)
        assert active is not None and active.version == "1.1.0"


def test_a_snapshot_signed_by_an_unknown_root_is_refused_and_changes_nothing(
    tmp_path: Path, registry: Registry
) -> None:
    registry.publish({APP_ID: "1.0.0"})
    stranger = make_registry(tmp_path / "stranger")
    stranger.publish({APP_ID: "9.0.0"})
    good = drive_with(registry.repo_dir, tmp_path / "good")
    bad = drive_with(stranger.repo_dir, tmp_path / "bad")
    other = BlockDevice("/dev/sdy1", "exfat", True, 8 * 1024 * 1024)
    h = Harness(tmp_path, registry.trust_root(tmp_path / "root.json"), {STICK.node: good, other.node: bad})

    # first with a fresh head unit (only the provisioned root), then after a good import
    importer = h.run(other)
    assert [o.ok for o in importer.outcomes] == [False]
    assert h.last()["status"] == "failed"
    assert "signature" in h.last()["message"] and "trust" in h.last()["message"]
    assert cache_state(h.cache_dir) == []
    assert h.mounter.unmounts == [other.node] and not h.mounter.active

    h.run(STICK)
    before = cache_state(h.cache_dir)
    assert any("com.acme.info" in line for line in before)
    importer = h.run(other)
    assert not importer.outcomes[0].ok and "signature" in importer.outcomes[0].message
    assert cache_state(h.cache_dir) == before
    with BundleCache(h.cache_dir) as cache:
        active = cache.active(APP_ID)
        assert active is not None and active.version == "1.0.0"


def test_an_unsigned_or_incomplete_snapshot_and_a_drive_without_one_are_refused(
    tmp_path: Path, registry: Registry
) -> None:
    registry.publish({APP_ID: "1.0.0"})
    empty = tmp_path / "empty"
    (empty / "photos").mkdir(parents=True)
    no_targets = tmp_path / "no-targets"
    (no_targets / REPO_DIR / "metadata").mkdir(parents=True)
    unsigned = drive_with(registry.repo_dir, tmp_path / "unsigned")
    timestamp = unsigned / REPO_DIR / "metadata" / "timestamp.json"
    doc = json.loads(timestamp.read_text())
    doc["signatures"] = []
    timestamp.write_text(json.dumps(doc))
    devices = {
        "/dev/sda1": empty,
        "/dev/sdb1": no_targets,
        "/dev/sdc1": unsigned,
        "/dev/sdd1": None,  # mounting fails: a damaged filesystem
    }
    h = Harness(tmp_path, registry.trust_root(tmp_path / "root.json"), devices)
    ntfs = BlockDevice("/dev/sde1", "ntfs", True, 1 << 30)
    importer = h.run(*(BlockDevice(node, "vfat", True, 1 << 24) for node in devices), ntfs)
    messages = [o.message for o in importer.outcomes]
    assert [o.ok for o in importer.outcomes] == [False] * 5, messages
    assert "no vehicle-host-repo folder" in messages[0]
    assert "no targets/ folder" in messages[1]
    assert "signature" in messages[2] or "signed" in messages[2]
    assert "damaged" in messages[3]
    assert "ntfs" in messages[4] and "vfat" in messages[4]
    assert cache_state(h.cache_dir) == []
    assert not h.mounter.active
    assert [p["status"] for p in h.progress if p["status"] != "running"] == ["failed"] * 5


def test_a_tampered_bundle_is_refused_and_the_previous_version_stays(
    tmp_path: Path, registry: Registry
) -> None:
    registry.publish({APP_ID: "1.0.0"})
    drive = drive_with(registry.repo_dir, tmp_path / "drive")
    h = Harness(tmp_path, registry.trust_root(tmp_path / "root.json"), {STICK.node: drive})
    h.run(STICK)
    before = cache_state(h.cache_dir)

    registry.publish({APP_ID: "1.1.0"})
    shutil.rmtree(drive / REPO_DIR)
    drive_with(registry.repo_dir, drive)
    [stored] = (drive / REPO_DIR / "targets" / "apps" / APP_ID / "1.1.0").iterdir()
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, one byte flipped
    stored.write_bytes(bytes(data))

    importer = h.run(STICK)
    [outcome] = importer.outcomes
    assert not outcome.ok and "hash mismatch" in outcome.message, outcome.message
    assert h.last()["status"] == "failed"
    assert cache_state(h.cache_dir) == before
    with BundleCache(h.cache_dir) as cache:
        active = cache.active(APP_ID)
        assert active is not None and active.version == "1.0.0"


def test_size_limits_and_links_on_the_drive_are_refused(tmp_path: Path, registry: Registry) -> None:
    registry.publish({APP_ID: "1.0.0"})
    drive = drive_with(registry.repo_dir, tmp_path / "drive")
    linked = drive_with(registry.repo_dir, tmp_path / "linked")
    (linked / REPO_DIR / "targets" / "passwd").symlink_to("/etc/passwd")
    root = registry.trust_root(tmp_path / "root.json")
    other = BlockDevice("/dev/sdx1", "ext4", True, 1 << 24)

    h = Harness(tmp_path, root, {STICK.node: drive, other.node: linked}, limits=ImportLimits(max_files=5))
    importer = h.run(STICK)
    assert "more than 5 files" in importer.outcomes[0].message
    importer = Harness(tmp_path, root, {STICK.node: drive}, limits=ImportLimits(max_bytes=1000)).run(STICK)
    assert "larger than 1,000 bytes" in importer.outcomes[0].message
    importer = Harness(tmp_path, root, {other.node: linked}).run(other)
    assert "link or a special file" in importer.outcomes[0].message
    assert cache_state(h.cache_dir) == []


def test_fixed_disks_are_ignored_and_one_drive_is_read_at_a_time(tmp_path: Path, registry: Registry) -> None:
    registry.publish({APP_ID: "1.0.0"})
    drive = drive_with(registry.repo_dir, tmp_path / "drive")
    root = registry.trust_root(tmp_path / "root.json")
    fixed = BlockDevice("/dev/vda1", "ext4", False, 1 << 30)
    disk = BlockDevice("/dev/sdz", None, True, 1 << 30)  # a partition table: its partitions follow
    second = BlockDevice("/dev/sdw1", "vfat", True, 1 << 24)
    h = Harness(tmp_path, root, {STICK.node: drive, second.node: drive, fixed.node: drive})

    async def main() -> tuple[UsbImporter, list[dict[str, Any]]]:
        source = FakeSource()
        with BundleCache(h.cache_dir) as cache:
            importer = UsbImporter(
                source, h.mounter, cache, root, VEHICLE, h.progress.append, metadata_dir=h.metadata_dir
            )
            runner = asyncio.create_task(importer.run())
            for device in (fixed, disk, STICK, STICK, second):
                source.add(device)
            source.close()
            await asyncio.wait_for(runner, 60)
            return importer, h.progress

    importer, progress = asyncio.run(main())
    assert h.mounter.mounts == [STICK.node]  # never the fixed disk, the bare disk or a second drive
    assert [o.node for o in importer.outcomes] == [STICK.node] and importer.outcomes[0].ok
    refusals = [p["message"] for p in progress if p["status"] == "failed"]
    assert len(refusals) == 1 and "one USB drive at a time" in refusals[0] and second.node in refusals[0]


# -- a real block device: loop device, filesystem image, kernel uevent, mount ---------------------------
def _run(*command: str, timeout: float = 60) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout.strip()


def test_a_real_loop_device_is_seen_mounted_and_imported(tmp_path: Path, registry: Registry) -> None:
    registry.publish({APP_ID: "1.0.0"})
    content = drive_with(registry.repo_dir, tmp_path / "content")
    image = tmp_path / "stick.img"
    with image.open("wb") as f:
        f.truncate(16 * 1024 * 1024)
    # ext4 populated straight from a folder (mke2fs -d): the running kernel here has no vfat module
    _run("mkfs.ext4", "-q", "-F", "-L", "VHUPDATE", "-d", str(content), str(image))
    root = registry.trust_root(tmp_path / "root.json")
    runtime = tmp_path / "run"
    progress: list[dict[str, Any]] = []
    loop_node = ""

    async def main() -> UsbImporter:
        nonlocal loop_node
        source = PyudevSource()
        with BundleCache(tmp_path / "cache") as cache:
            importer = UsbImporter(
                source,
                SystemMounter(runtime),
                cache,
                root,
                VEHICLE,
                progress.append,
                metadata_dir=tmp_path / "tuf",
                accept=lambda d: d.node == loop_node,  # only our device, never another loop user's
            )
            runner = asyncio.create_task(importer.run())
            await asyncio.wait_for(source.listening.wait(), 30)
            loop_node = await asyncio.to_thread(_run, "losetup", "-f", "--show", str(image))
            # attaching emits "change"; announce "add" too, as a plugged-in stick does
            Path(f"/sys/class/block/{Path(loop_node).name}/uevent").write_text("add")
            deadline = time.monotonic() + 60
            while not importer.outcomes and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await importer.wait_idle()
            source.close()
            await asyncio.wait_for(runner, 30)
            return importer

    try:
        importer = asyncio.run(main())
    finally:
        if loop_node:
            subprocess.run(["losetup", "-d", loop_node], check=False, timeout=30)
    assert importer.outcomes, f"no block event was seen for the loop device; progress: {progress}"
    outcome = importer.outcomes[0]
    assert outcome.ok, outcome.message
    assert outcome.node == loop_node
    assert [a["app_id"] for a in outcome.applied] == [APP_ID]
    with BundleCache(tmp_path / "cache") as cache:
        active = cache.active(APP_ID)
        assert active is not None and active.version == "1.0.0"
    assert progress[-1]["status"] == "done"
    assert not is_mounted(loop_node)
    assert list(runtime.iterdir()) == []  # unmounted and the private mount point removed
    mounts = Path("/proc/self/mounts").read_text()
    assert str(runtime) not in mounts


def test_system_mounter_mounts_read_only_and_a_mounted_drive_is_never_imported(tmp_path: Path) -> None:
    content = tmp_path / "content"
    (content / "notes").mkdir(parents=True)
    (content / "notes" / "a.txt").write_text("hello")
    image = tmp_path / "ok.img"
    with image.open("wb") as f:
        f.truncate(8 * 1024 * 1024)
    _run("mkfs.ext4", "-q", "-F", "-d", str(content), str(image))
    node = _run("losetup", "-f", "--show", str(image))
    try:
        device = BlockDevice(node, probe_fs_type(node), True, 8 * 1024 * 1024)
        assert device.fs_type == "ext4"
        assert removable_only(device)
        with SystemMounter(tmp_path / "run").mounted(device) as root:
            assert (root / "notes" / "a.txt").read_text() == "hello"
            assert is_mounted(node) and not removable_only(device)
            options = next(
                line for line in Path("/proc/self/mounts").read_text().splitlines() if str(root) in line
            )
            assert {"ro", "nosuid", "nodev", "noexec"} <= set(options.split()[3].split(","))
            with pytest.raises(OSError):
                (root / "new.txt").write_text("x")
        assert not is_mounted(node) and list((tmp_path / "run").iterdir()) == []
    finally:
        subprocess.run(["losetup", "-d", node], check=False, timeout=30)


def test_system_mounter_refuses_a_damaged_filesystem_and_unsupported_types(tmp_path: Path) -> None:
    image = tmp_path / "junk.img"
    image.write_bytes(b"\0" * 1024 * 1024)
    node = _run("losetup", "-f", "--show", str(image))
    try:
        assert probe_fs_type(node) is None
        mounter = SystemMounter(tmp_path / "run")
        damaged = mounter.mounted(BlockDevice(node, "ext4", True, 1 << 20))
        with pytest.raises(MountError, match="damaged or not what it claims"), damaged:
            pass
        ntfs = mounter.mounted(BlockDevice(node, "ntfs", True, 1 << 20))
        with pytest.raises(MountError, match="does not read"), ntfs:
            pass
        assert list((tmp_path / "run").iterdir()) == []
    finally:
        subprocess.run(["losetup", "-d", node], check=False, timeout=30)
