"""Mounting a USB drive read-only for the length of one import.

The base class :class:`Mounter` owns the public :meth:`Mounter.mounted` context manager: it checks
the filesystem type against :data:`FILESYSTEMS` and always unmounts when the block ends, whatever
happened inside. Backends override ``_mount``/``_unmount``:

- :class:`SystemMounter` runs ``mount -o ro,nosuid,nodev,noexec`` into a fresh private directory
  (mode 0700) under a runtime directory (needs root, or CAP_SYS_ADMIN); ext4 also gets ``noload`` so
  a dirty journal is not replayed onto the drive.
- :class:`DirectoryMounter` maps device nodes to ordinary directories (tests, development).
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from vehicle_host.errors import DeviceError
from vehicle_host.usb_import.hotplug import NODE, BlockDevice

log = logging.getLogger("vehicle_host.usb_import")

#: The filesystems a USB update drive may use, with their extra mount options.
FILESYSTEMS: Mapping[str, tuple[str, ...]] = {
    "vfat": ("utf8", "shortname=mixed"),
    "exfat": (),
    "ext4": ("noload",),
    "iso9660": (),
}
BASE_OPTIONS = ("ro", "nosuid", "nodev", "noexec")
MOUNT_TIMEOUT_S = 30.0
UNMOUNT_TIMEOUT_S = 30.0
MAX_TOOL_OUTPUT = 2000


def is_mounted(node: str, mounts: Path = Path("/proc/self/mounts")) -> bool:
    """Whether ``node`` is mounted already (e.g. a head unit booting from a USB disk)."""
    try:
        with mounts.open(encoding="utf-8", errors="replace") as f:
            return any(line.split(" ", 1)[0] == node for line in f)
    except OSError:
        return False


class MountError(DeviceError):
    """The drive cannot be mounted: unsupported or damaged filesystem, or no permission."""


class Mounter:
    """Mounts a block device read-only for the duration of a ``with`` block."""

    @contextlib.contextmanager
    def mounted(self, device: BlockDevice) -> Iterator[Path]:
        """Yield the directory where ``device``'s filesystem is readable; unmount at the end."""
        fs_type = check_filesystem(device)
        target = self._mount(device, fs_type)
        try:
            yield target
        finally:
            try:
                self._unmount(device, target)
            except MountError:
                log.exception("the drive could not be unmounted", extra={"node": device.node})

    def _mount(self, device: BlockDevice, fs_type: str) -> Path:
        raise NotImplementedError

    def _unmount(self, device: BlockDevice, target: Path) -> None:
        raise NotImplementedError


def check_filesystem(device: BlockDevice) -> str:
    """The device's filesystem type if a USB update drive may use it, else MountError saying why."""
    supported = ", ".join(sorted(FILESYSTEMS))
    if device.fs_type is None:
        raise MountError(
            f"{device.node} has no filesystem this head unit can read; format the drive as {supported} "
            "(FAT32 is the usual choice) and copy the update onto it again"
        )
    if device.fs_type not in FILESYSTEMS:
        raise MountError(
            f"{device.node} is formatted as {device.fs_type[:32]}, which this head unit does not read; "
            f"use one of: {supported} (FAT32 is the usual choice)"
        )
    return device.fs_type


def _tool_message(done: subprocess.CompletedProcess[bytes]) -> str:
    text = (done.stderr or done.stdout or b"").decode("utf-8", "replace").strip()
    return text[:MAX_TOOL_OUTPUT]


class SystemMounter(Mounter):
    """Mounts with the system's ``mount``/``umount`` into a private directory under ``runtime_dir``."""

    def __init__(
        self,
        runtime_dir: Path,
        *,
        mount_timeout_s: float = MOUNT_TIMEOUT_S,
        unmount_timeout_s: float = UNMOUNT_TIMEOUT_S,
    ) -> None:
        self.runtime_dir = runtime_dir
        self.mount_timeout_s = mount_timeout_s
        self.unmount_timeout_s = unmount_timeout_s

    def _mount(self, device: BlockDevice, fs_type: str) -> Path:
        if not NODE.match(device.node):
            raise MountError(f"{device.node[:140]!r} is not a device path under /dev")
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(prefix="usb-", dir=self.runtime_dir))  # mode 0700
        options = ",".join((*BASE_OPTIONS, *FILESYSTEMS[fs_type]))
        command = ["mount", "-t", fs_type, "-o", options, "--", device.node, str(target)]
        try:
            done = subprocess.run(command, capture_output=True, timeout=self.mount_timeout_s, check=False)
        except subprocess.TimeoutExpired:
            self._cleanup(device, target, mounted=True)
            raise MountError(
                f"mounting {device.node} took longer than {self.mount_timeout_s:g} s; "
                "the drive may be failing: remove it and try another one"
            ) from None
        except OSError as exc:
            target.rmdir()
            raise MountError(f"cannot run mount: {exc.strerror}; is util-linux installed?") from None
        if done.returncode != 0:
            target.rmdir()
            raise MountError(self._explain(device, fs_type, done))
        log.info("mounted a USB drive", extra={"node": device.node, "fs": fs_type, "at": str(target)})
        return target

    @staticmethod
    def _explain(device: BlockDevice, fs_type: str, done: subprocess.CompletedProcess[bytes]) -> str:
        detail = _tool_message(done)
        lower = detail.lower()
        if "permission denied" in lower or "only root" in lower or "must be superuser" in lower:
            return (
                f"no permission to mount {device.node}: USB import needs root (CAP_SYS_ADMIN); run it "
                f"through the host's USB import service. mount said: {detail}"
            )
        if "unknown filesystem type" in lower:
            return (
                f"this head unit's kernel cannot read {fs_type} (the {fs_type} module is missing); "
                f"reformat the drive as one the kernel supports. mount said: {detail}"
            )
        return (
            f"the {fs_type} filesystem on {device.node} is damaged or not what it claims to be; "
            f"check it on a computer (or reformat it) and copy the update onto it again. mount said: {detail}"
        )

    def _unmount(self, device: BlockDevice, target: Path) -> None:
        self._cleanup(device, target, mounted=True)

    def _cleanup(self, device: BlockDevice, target: Path, *, mounted: bool) -> None:
        problem = ""
        if mounted:
            problem = self._umount(target, lazy=False)
            if problem:
                log.warning("unmount failed; detaching lazily", extra={"at": str(target), "error": problem})
                problem = self._umount(target, lazy=True)
        try:
            target.rmdir()
        except OSError as exc:
            problem = problem or f"cannot remove the mount directory {target}: {exc.strerror}"
        if problem:
            raise MountError(f"{device.node} could not be unmounted cleanly: {problem}")
        log.info("unmounted a USB drive", extra={"node": device.node})

    def _umount(self, target: Path, *, lazy: bool) -> str:
        command = ["umount", *(["-l"] if lazy else []), "--", str(target)]
        try:
            done = subprocess.run(command, capture_output=True, timeout=self.unmount_timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return f"umount took longer than {self.unmount_timeout_s:g} s"
        except OSError as exc:
            return f"cannot run umount: {exc.strerror}"
        if done.returncode == 0:
            return ""
        message = _tool_message(done)
        return "" if "not mounted" in message.lower() else message


class DirectoryMounter(Mounter):
    """Serves ``{device node: directory}``; a node mapped to ``None`` fails like a damaged drive.

    ``mounts`` and ``unmounts`` record the nodes in call order, ``active`` those mounted right now.
    """

    def __init__(self, directories: Mapping[str, Path | None]) -> None:
        self.directories = dict(directories)
        self.mounts: list[str] = []
        self.unmounts: list[str] = []
        self.active: set[str] = set()

    def _mount(self, device: BlockDevice, fs_type: str) -> Path:
        if device.node not in self.directories:
            raise MountError(f"{device.node} is not a known test device")
        directory = self.directories[device.node]
        if directory is None:
            raise MountError(f"the {fs_type} filesystem on {device.node} is damaged or not what it claims")
        self.mounts.append(device.node)
        self.active.add(device.node)
        return directory

    def _unmount(self, device: BlockDevice, target: Path) -> None:
        self.unmounts.append(device.node)
        self.active.discard(device.node)
