"""The ``.vhb`` bundle file: pack an app directory, inspect a bundle, extract it safely.

A bundle is a deterministic zip (deflate, entries sorted, 1980 timestamps, mode 0644) of an app
directory with ``app.json`` at its root, so the same tree always packs to the same sha256. Packing
compiles every page, so a broken template fails on the publisher's machine with ``file:line:col``.
Extraction trusts nothing in the archive: paths, kinds and sizes follow ``archive_rules``, the
bytes really unpacked are counted while streaming, and the result appears at ``dest`` only when
complete and on disk (every file and folder fsynced, then one rename).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vehicle_host.bundles.archive_rules import (
    DEFAULT_LIMITS,
    Limits,
    archive_error,
    check_entries,
    check_path,
    check_ratio,
    is_directory,
    total_error,
)
from vehicle_host.bundles.catalog import InstalledApp, check_app
from vehicle_host.bundles.manifest import MAX_MANIFEST_BYTES, Manifest, load_manifest, parse_manifest
from vehicle_host.errors import BundleError, VehicleHostError

__all__ = [
    "SUFFIX",
    "BundleInfo",
    "Limits",
    "PackResult",
    "extract",
    "extract_bytes",
    "fsync_dir",
    "inspect",
    "pack",
    "read_bundle",
    "sha256_file",
    "write_atomically",
]

SUFFIX = ".vhb"
CHUNK = 64 * 1024
EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
Progress = Callable[[int, int], None]
#: what zipfile and zlib raise on a damaged archive
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError, NotImplementedError)


@dataclass(frozen=True, slots=True)
class PackResult:
    manifest: Manifest
    sha256: str
    size: int
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BundleInfo:
    manifest: Manifest
    files: tuple[str, ...]
    size: int
    sha256: str
    unpacked: int = 0  # the sum of the sizes the entries declare


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise VehicleHostError(f"{path}: cannot read: {exc.strerror}") from None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(out: Path, data: bytes) -> None:
    """Write ``data`` to ``out`` so a crash leaves the old or the new content, never a mix: a
    temporary file beside it, fsynced, renamed over it, then the folder fsynced. Raises OSError."""
    parent = out.parent if str(out.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(parent)


# -- pack ------------------------------------------------------------------------------------------


def pack(app_dir: Path, out: Path, limits: Limits = DEFAULT_LIMITS) -> PackResult:
    """Check, compile and zip ``app_dir`` into ``out`` (replaced atomically).

    Files and folders whose name starts with ``.`` and ``*.vhb`` files are left out. Raises
    BundleError (TemplateError with file:line:col for template and style problems)."""
    manifest = load_manifest(app_dir)
    check_app(InstalledApp(app_dir, manifest))
    files = _collect(app_dir, out, limits)
    if "app.json" not in files:
        raise BundleError(f"{app_dir}: app.json must be a regular file at the app's root")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name], compresslevel=9)
    data = buffer.getvalue()
    if len(data) > limits.max_archive_bytes:
        raise BundleError(f"{app_dir}: {archive_error(len(data), limits)}")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        check_entries(zf.infolist(), limits)  # what extract would refuse (e.g. ratio) fails here
    try:
        write_atomically(out, data)
    except OSError as exc:
        raise VehicleHostError(f"cannot write {out}: {exc.strerror}") from None
    return PackResult(manifest, hashlib.sha256(data).hexdigest(), len(data), tuple(sorted(files)))


def _collect(app_dir: Path, out: Path, limits: Limits) -> dict[str, bytes]:
    """The app's files by bundle path, read with the bundle's limits."""
    skip = out.resolve()
    files: dict[str, bytes] = {}
    total = 0
    for folder, dirs, names in os.walk(app_dir):
        base = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in dirs:
            if (base / d).is_symlink():
                raise BundleError(f"{base / d}: is a symbolic link; copy the folder into the app instead")
        for name in sorted(names):
            path = base / name
            if name.startswith(".") or name.endswith(SUFFIX) or path.resolve() == skip:
                continue
            relative = path.relative_to(app_dir).as_posix()
            check_path(relative, limits)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode):
                    raise BundleError(f"{path}: is a link or device; copy the file into the app instead")
                total += st.st_size
                if total > limits.max_total_bytes:
                    raise BundleError(f"{app_dir}: {total_error(limits)}")
                files[relative] = path.read_bytes()
            except OSError as exc:
                raise BundleError(f"{path}: cannot be read: {exc.strerror}") from None
            if len(files) > limits.max_files:
                raise BundleError(f"{app_dir}: more than {limits.max_files} files; the limit is per app")
    return files


# -- read and inspect ------------------------------------------------------------------------------


def read_bundle(path: Path, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The bytes of a bundle file (a regular file within the per-package limit)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise BundleError(f"{path}: is not a regular file")
            if st.st_size > limits.max_archive_bytes:
                raise BundleError(f"{path}: {archive_error(st.st_size, limits)}")
            data = f.read(limits.max_archive_bytes + 1)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the bundle: {exc.strerror}") from None
    if len(data) > limits.max_archive_bytes:
        raise BundleError(f"{path}: {archive_error(len(data), limits)}")
    return data


def _open(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except _CORRUPT as exc:
        raise BundleError(f"not a bundle (a .vhb zip file): {exc}") from None


def _manifest(zf: zipfile.ZipFile) -> Manifest:
    try:
        info = zf.getinfo("app.json")
    except KeyError:
        raise BundleError("the bundle has no app.json at its root; pack the app's folder itself") from None
    if info.file_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"bundle entry 'app.json': larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        with zf.open(info) as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
        doc = json.loads(raw)
    except _CORRUPT as exc:
        raise BundleError(f"bundle entry 'app.json': cannot be read: {exc}") from None
    except UnicodeDecodeError:
        raise BundleError("bundle entry 'app.json': is not UTF-8 JSON") from None
    except RecursionError:
        raise BundleError("bundle entry 'app.json': nests too deeply") from None
    return parse_manifest(doc, where="bundle app.json")


def inspect(path: Path, limits: Limits = DEFAULT_LIMITS) -> BundleInfo:
    """The manifest, file list, size and sha256 of a bundle, with every entry checked (nothing is
    written)."""
    data = read_bundle(path, limits)
    with _open(data) as zf:
        entries = check_entries(zf.infolist(), limits)
        manifest = _manifest(zf)
    files = tuple(i.filename for i in entries if not is_directory(i))
    unpacked = sum(i.file_size for i in entries)
    return BundleInfo(manifest, files, len(data), hashlib.sha256(data).hexdigest(), unpacked)


# -- extract ---------------------------------------------------------------------------------------


def extract(
    path: Path, dest: Path, limits: Limits = DEFAULT_LIMITS, *, progress: Progress | None = None
) -> Manifest:
    """Extract bundle ``path`` into the new directory ``dest`` and return its manifest.

    ``dest`` must not exist (or be an empty directory); it is left untouched on failure."""
    return extract_bytes(read_bundle(path, limits), dest, limits, progress=progress)


def extract_bytes(
    data: bytes, dest: Path, limits: Limits = DEFAULT_LIMITS, *, progress: Progress | None = None
) -> Manifest:
    """``extract`` for bundle bytes already read (and hashed) by the caller."""
    if len(data) > limits.max_archive_bytes:
        raise BundleError(archive_error(len(data), limits))
    with _open(data) as zf:
        entries = check_entries(zf.infolist(), limits)
        manifest = _manifest(zf)
        empty_dir = dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir())
        if os.path.lexists(dest) and not empty_dir:
            raise VehicleHostError(f"{dest} already exists; extract into a new directory")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest.parent))
        except OSError as exc:
            raise VehicleHostError(f"cannot create {dest}: {exc.strerror}") from None
        try:
            _unpack(zf, entries, tmp, limits, progress)
            _fsync_tree(tmp)
            os.rename(tmp, dest)
            fsync_dir(dest.parent)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise VehicleHostError(f"cannot extract into {dest}: {exc.strerror or exc}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return manifest


def _unpack(
    zf: zipfile.ZipFile, entries: list[zipfile.ZipInfo], root: Path, limits: Limits, progress: Progress | None
) -> None:
    declared = sum(i.file_size for i in entries)
    written = 0
    os.chmod(root, 0o755)  # noqa: S103 - the app's files are read by the hub and its workers
    for info in entries:
        parts = check_path(info.filename, limits)  # checked already; the parts build the target
        target = root.joinpath(*parts)
        if is_directory(info):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            entry = 0
            try:
                with zf.open(info) as src:
                    while chunk := src.read(CHUNK):
                        entry += len(chunk)
                        written += len(chunk)
                        if written > limits.max_total_bytes:
                            raise BundleError(total_error(limits))
                        check_ratio(info.filename, entry, info.compress_size, limits)
                        out.write(chunk)
                        if progress is not None:
                            progress(written, max(declared, written))
            except _CORRUPT as exc:
                why = f"bundle entry {info.filename!r}: is damaged ({exc}); download it again"
                raise BundleError(why) from None
            out.flush()
            os.fsync(out.fileno())


def _fsync_tree(root: Path) -> None:
    """fsync every folder under ``root``, deepest first (files were synced as they were written)."""
    folders = [Path(folder) for folder, _, _ in os.walk(root)]
    for folder in reversed(folders):
        fsync_dir(folder)
