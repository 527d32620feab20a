"""The rules a ``.vhb`` bundle archive must follow: limits, entry paths and entry kinds (pure: no I/O).

A bundle is a zip whose entries sit at the root (``app.json`` at top level). Every entry path is
relative, ``/``-separated, at most ``Limits.max_depth`` components each matching
``[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}``, unique case-insensitively, free of NUL bytes (which zipfile
would silently cut off), and names a regular file (or a directory entry). Every refusal is a
``BundleError`` naming the entry and the rule broken.
"""

from __future__ import annotations

import re
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from vehicle_host.errors import BundleError

MIB = 1024 * 1024
COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
#: the zip methods a bundle may use (``pack`` writes deflate)
METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
UNIX = 3  # ZipInfo.create_system of archives made on Unix (external_attr holds st_mode << 16)


@dataclass(frozen=True, slots=True)
class Limits:
    """What a bundle may hold; every field can be overridden (e.g. ``Limits(max_files=50)``).

    ``max_ratio`` bounds each entry's uncompressed/compressed size; entries that unpack to at most
    ``ratio_grace_bytes`` are exempt (a small, very regular file legitimately compresses well)."""

    max_archive_bytes: int = 2 * MIB  # per package: the .vhb file
    max_total_bytes: int = 20 * MIB  # per app: everything unpacked
    max_files: int = 1000
    max_ratio: int = 100
    ratio_grace_bytes: int = 64 * 1024
    max_depth: int = 16
    max_path_chars: int = 1024


DEFAULT_LIMITS = Limits()


def check_path(name: str, limits: Limits) -> tuple[str, ...]:
    """The components of entry ``name`` (a trailing ``/`` marks a directory), or BundleError."""
    where = f"bundle entry {name!r}"
    if not name or len(name) > limits.max_path_chars:
        raise BundleError(f"{where}: a path must hold 1 to {limits.max_path_chars} characters")
    if "\\" in name:
        raise BundleError(f"{where}: backslash in the path; bundle paths use '/' (repack with vehicle-host)")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BundleError(f"{where}: absolute path; bundle paths are relative to the app's root")
    parts = tuple(name[:-1].split("/") if name.endswith("/") else name.split("/"))
    if ".." in parts:
        raise BundleError(f"{where}: '..' in the path would leave the app's directory")
    if len(parts) > limits.max_depth:
        raise BundleError(f"{where}: nested deeper than {limits.max_depth} folders")
    for part in parts:
        if not COMPONENT.match(part):
            raise BundleError(
                f"{where}: component {part!r} must start with a letter, digit or '_' and hold only "
                "letters, digits, '_', '.' and '-' (at most 100 characters)"
            )
    return parts


def is_directory(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith("/")


def check_kind(info: zipfile.ZipInfo) -> None:
    """Refuse symlinks, devices, FIFOs and sockets (by the Unix mode in ``external_attr``), encrypted
    entries and compression methods other than stored and deflate."""
    where = f"bundle entry {info.filename!r}"
    mode = info.external_attr >> 16
    if info.create_system == UNIX and stat.S_IFMT(mode):
        wanted = stat.S_ISDIR if is_directory(info) else stat.S_ISREG
        if not wanted(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "a device, FIFO or socket"
            raise BundleError(f"{where}: is {kind}; a bundle holds regular files only")
    if info.flag_bits & 0x1:
        raise BundleError(f"{where}: is encrypted; bundles are signed, not encrypted")
    if info.compress_type not in METHODS:
        raise BundleError(f"{where}: compression method {info.compress_type} is not stored or deflate")


def check_ratio(name: str, unpacked: int, compressed: int, limits: Limits) -> None:
    """Refuse an entry that unpacks to more than ``max_ratio`` times its compressed size."""
    if unpacked > limits.ratio_grace_bytes and unpacked > limits.max_ratio * max(compressed, 1):
        raise BundleError(
            f"bundle entry {name!r}: unpacks to more than {limits.max_ratio} times its compressed size "
            f"({compressed} bytes); the archive looks like a zip bomb"
        )


def check_entries(infos: Iterable[zipfile.ZipInfo], limits: Limits) -> list[zipfile.ZipInfo]:
    """Check every entry's path, kind, declared sizes and uniqueness; return them in archive order.

    Declared sizes are only a first filter: extraction counts the bytes it really writes."""
    entries = list(infos)
    if len(entries) > limits.max_files:
        raise BundleError(f"the bundle holds {len(entries)} entries; the limit is {limits.max_files} files")
    files: dict[str, str] = {}  # case-folded path -> entry name
    folders: dict[str, str] = {}  # case-folded folder path -> entry name that implies it
    declared = 0
    for info in entries:
        if "\0" in info.orig_filename:  # zipfile cuts the name at the NUL; other tools may not
            raise BundleError(
                f"bundle entry {info.orig_filename!r}: NUL byte in the path; tools would disagree on its name"
            )
        parts = check_path(info.filename, limits)
        check_kind(info)
        folded = "/".join(parts).casefold()
        if is_directory(info):
            if folded in files:
                raise BundleError(f"bundle entry {info.filename!r}: duplicates file {files[folded]!r}")
            folders.setdefault(folded, info.filename)
        else:
            other = files.get(folded) or folders.get(folded)
            if other is not None:
                raise BundleError(
                    f"bundle entry {info.filename!r}: duplicates {other!r} (paths are compared ignoring case)"
                )
            files[folded] = info.filename
            declared += info.file_size
            check_ratio(info.filename, info.file_size, info.compress_size, limits)
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth]).casefold()
            if folder in files:
                raise BundleError(
                    f"bundle entry {info.filename!r}: {files[folder]!r} is a file, not a folder"
                )
            folders.setdefault(folder, info.filename)
        if declared > limits.max_total_bytes:
            raise BundleError(total_error(limits))
    return entries


def total_error(limits: Limits) -> str:
    return (
        f"the bundle unpacks to more than {limits.max_total_bytes // MIB} MiB (the per-app limit); "
        "shrink images or move data to a server"
    )


def archive_error(size: int, limits: Limits) -> str:
    return (
        f"the bundle is {size} bytes; the per-package limit is {limits.max_archive_bytes} bytes "
        f"({limits.max_archive_bytes / MIB:g} MiB): shrink images or remove unused files"
    )
