"""What a USB update snapshot may hold, and the check that walks it before anything is read.

The walk never follows links: a snapshot is plain folders and regular files, nothing else. It
stops at the first problem, so a hostile drive with millions of entries costs at most
``max_files`` directory entries of work.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from vehicle_host.errors import VehicleHostError

#: The folder at the root of the drive that holds the snapshot (``metadata/`` and ``targets/``).
REPO_DIR = "vehicle-host-repo"


class UsbImportError(VehicleHostError):
    """A USB drive was refused: nothing on it was installed. The message says what to do."""


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """Limits on a snapshot read from a drive (defaults fit 500 apps with a few versions each)."""

    max_files: int = 10_000
    max_bytes: int = 2 * 1024 * 1024 * 1024
    max_depth: int = 12


def find_repo(mount_root: Path) -> Path:
    """The snapshot folder on a mounted drive, or UsbImportError saying what is missing."""
    repo = mount_root / REPO_DIR
    if not _is_plain_dir(repo):
        raise UsbImportError(
            f"this USB drive has no {REPO_DIR} folder at its top level; export an update snapshot from "
            "the registry onto the drive and insert it again"
        )
    for part in ("metadata", "targets"):
        if not _is_plain_dir(repo / part):
            raise UsbImportError(
                f"the {REPO_DIR} folder on this USB drive has no {part}/ folder; the snapshot is "
                "incomplete: copy the whole exported snapshot onto the drive again"
            )
    if not (repo / "metadata" / "root.json").is_file():
        raise UsbImportError(
            f"{REPO_DIR}/metadata/root.json is missing on this USB drive; the snapshot is incomplete: "
            "copy the whole exported snapshot onto the drive again"
        )
    return repo


def _is_plain_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def check_tree(repo: Path, limits: ImportLimits) -> tuple[int, int]:
    """Walk the snapshot; return ``(files, bytes)`` or raise UsbImportError at the first problem."""
    files = total = 0
    stack: list[tuple[Path, int]] = [(repo, 0)]
    while stack:
        folder, depth = stack.pop()
        if depth > limits.max_depth:
            raise UsbImportError(
                f"the snapshot on the USB drive nests folders deeper than {limits.max_depth} levels; "
                "it is not an exported snapshot"
            )
        try:
            entries = os.scandir(folder)
        except OSError as exc:
            raise UsbImportError(
                f"cannot read {folder.name} on the USB drive ({exc.strerror}); the drive may be damaged "
                "or was removed"
            ) from None
        with entries:
            for entry in entries:
                files += 1
                if files > limits.max_files:
                    raise UsbImportError(
                        f"the snapshot on the USB drive has more than {limits.max_files:,} files; "
                        "export only the apps this vehicle needs"
                    )
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    raise UsbImportError(
                        f"cannot read {entry.name!r} on the USB drive ({exc.strerror}); the drive may be "
                        "damaged or was removed"
                    ) from None
                if stat.S_ISDIR(info.st_mode):
                    stack.append((Path(entry.path), depth + 1))
                elif stat.S_ISREG(info.st_mode):
                    total += info.st_size
                    if total > limits.max_bytes:
                        raise UsbImportError(
                            f"the snapshot on the USB drive is larger than {limits.max_bytes:,} bytes; "
                            "export only the apps this vehicle needs"
                        )
                else:
                    raise UsbImportError(
                        f"{entry.name!r} on the USB drive is a link or a special file; a snapshot holds "
                        "only folders and regular files: export it again onto a freshly formatted drive"
                    )
    return files, total
