"""The head unit's bundle cache: content-addressed app objects and one activation link per app.

Layout under ``root``::

    objects/<sha256>/     one extracted bundle, never changed (made in objects/.tmp-*, every file
                          and folder fsynced, then renamed into place)
    apps/<app_id>         symlink to ../objects/<sha256>: the hub's apps directory
    cache.db              install and activation history (SQLite, WAL, synchronous FULL)
    .lock                 serializes changes between processes (flock)

Activation writes ``apps/.<app_id>.new``, ``os.replace``-s it over ``apps/<app_id>`` and fsyncs
``apps/``, so a crash at any point leaves the old or the new version active. ``catalog.scan``
resolves the links, so a running app keeps reading its own object after the link moves. A fresh
``BundleCache`` clears what a crash left half-made and brings the history up to date with the disk.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import logging
import os
import re
import shutil
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vehicle_host.bundle_cache.history import History, HistoryError
from vehicle_host.bundles.archive import extract_bytes, fsync_dir, read_bundle
from vehicle_host.bundles.archive_rules import DEFAULT_LIMITS, Limits
from vehicle_host.bundles.manifest import APP_ID, load_manifest
from vehicle_host.errors import BundleError, VehicleHostError

__all__ = ["BundleCache", "CacheError", "Installed"]

log = logging.getLogger(__name__)

DIGEST = re.compile(r"^[0-9a-f]{64}$")
#: what one extracted file or folder costs beyond its bytes, for the free-space check before installing
ENTRY_OVERHEAD = 4096
NO_SPACE = os.strerror(errno.ENOSPC)
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"


class CacheError(VehicleHostError):
    """The cache cannot do what was asked (unknown app or digest, nothing to roll back to, disk)."""


@dataclass(frozen=True, slots=True)
class Installed:
    app_id: str
    version: str
    digest: str
    path: Path


class BundleCache:
    """Installed bundles under ``root``; ``apps_dir`` is what the hub scans."""

    def __init__(self, root: Path, limits: Limits = DEFAULT_LIMITS) -> None:
        self.root = root
        self.limits = limits
        self.objects_dir = root / "objects"
        self.apps_dir = root / "apps"
        try:
            for folder in (root, self.objects_dir, self.apps_dir):
                folder.mkdir(mode=0o755, parents=True, exist_ok=True)
            self._lock_fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise CacheError(f"cannot use {root} as the bundle cache: {exc.strerror}") from None
        self._thread_lock = threading.Lock()
        try:
            self.history = History(root / "cache.db")
        except HistoryError as exc:  # e.g. a full disk: the active apps still serve from apps/
            os.close(self._lock_fd)
            raise CacheError(str(exc)) from None
        with self._locked():
            try:
                self._recover()
            except OSError as exc:
                raise CacheError(f"cannot check the bundle cache {root}: {exc.strerror}") from None
            except HistoryError as exc:  # e.g. a full disk: the links and objects still serve
                log.warning("bundle cache history not brought up to date: %s", exc)

    def close(self) -> None:
        self.history.close()
        os.close(self._lock_fd)

    def __enter__(self) -> BundleCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API --------------------------------------------------------------------------------

    def install(
        self,
        bundle: Path,
        expected_sha256: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Installed:
        """Check and extract ``bundle`` into its object (nothing to do when that digest is present).

        Does not activate it. Raises BundleError for a bad bundle or a digest that differs from
        ``expected_sha256``."""
        data = read_bundle(bundle, self.limits)
        digest = hashlib.sha256(data).hexdigest()
        if expected_sha256 is not None and expected_sha256.lower() != digest:
            raise BundleError(
                f"{bundle}: sha256 {digest} differs from the expected {expected_sha256}; download it again"
            )
        with self._locked():
            path = self.objects_dir / digest
            if path.is_dir():
                return self._known(digest)
            self._check_space(bundle, data)
            try:
                manifest = extract_bytes(data, path, self.limits, progress=progress)
            except BundleError:
                raise
            except VehicleHostError as exc:  # the disk refused a write; the temp dir is gone already
                hint = (
                    " (ENOSPC: the disk is full; the active versions are untouched, free some space and "
                    "install again)"
                    if NO_SPACE in str(exc)
                    else ""
                )
                raise CacheError(f"cannot install {bundle.name}: {exc}{hint}") from None
            self._record(digest, manifest.app_id, manifest.version)
            return Installed(manifest.app_id, manifest.version, digest, path)

    def activate(self, app_id: str, digest: str) -> Installed:
        """Point ``apps/<app_id>`` at an installed object (atomic and durable on return)."""
        with self._locked():
            return self._activate(app_id, digest)

    def active(self, app_id: str) -> Installed | None:
        """The object ``apps/<app_id>`` points at, or None when the app is not installed."""
        digest = self._link_digest(app_id)
        if digest is None or not (self.objects_dir / digest).is_dir():
            return None
        return self._known(digest)

    def versions(self, app_id: str) -> list[Installed]:
        """Every installed object of ``app_id``, newest install first."""
        return [
            Installed(row.app_id, row.version, row.digest, self.objects_dir / row.digest)
            for row in self.history.objects(app_id)
            if (self.objects_dir / row.digest).is_dir()
        ]

    def rollback(self, app_id: str, version: str | None = None) -> Installed:
        """Activate the previously activated object of ``app_id`` (or its newest object of
        ``version``). Local only: nothing is fetched."""
        with self._locked():
            current = self._link_digest(app_id)
            on_disk = {i.digest: i for i in self.versions(app_id) if i.digest != current}
            if version is None:
                order = [d for d in self.history.activations(app_id) if d in on_disk]
            else:
                activated = self.history.activations(app_id)
                matching = [d for d, i in on_disk.items() if i.version == version]
                rank = {d: i for i, d in reversed(list(enumerate(activated)))}
                order = sorted(matching, key=lambda d: rank.get(d, len(activated)))
            if not order:
                wanted = f"version {version} of {app_id}" if version else f"an earlier version of {app_id}"
                raise CacheError(f"{wanted} is not in the bundle cache; install it first")
            return self._activate(app_id, order[0])

    def gc(self, keep: int = 3) -> list[str]:
        """Delete objects beyond the ``keep`` most recently installed or activated per app; an
        object an ``apps/`` link points at is never deleted. Returns the deleted digests."""
        removed: list[str] = []
        with self._locked():
            linked = {d for d in (self._link_digest(n) for n in self._app_names()) if d}
            apps = {row.app_id for row in self.history.objects()}
            for app_id in sorted(apps):
                used = self.history.last_used(app_id)
                ranked = sorted(used, key=lambda d: used[d], reverse=True)
                for digest in ranked[max(keep, 0) :]:
                    if digest in linked:
                        continue
                    self._delete_object(digest)
                    removed.append(digest)
        return removed

    def installed_apps(self) -> list[Installed]:
        """The active object of every installed app, by app id."""
        out = []
        for name in self._app_names():
            installed = self.active(name)
            if installed is not None:
                out.append(installed)
        return out

    # -- internals ---------------------------------------------------------------------------------

    def _check_space(self, bundle: Path, data: bytes) -> None:
        """Refuse early (nothing written) when the bundle's files cannot fit on the cache's disk."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                declared = [i.file_size for i in zf.infolist()]
            free = shutil.disk_usage(self.objects_dir).free
        except (OSError, zipfile.BadZipFile, ValueError):
            return  # extraction reports the real problem
        if sum(declared) > self.limits.max_total_bytes or len(declared) > self.limits.max_files:
            return  # over the bundle limits whatever the disk has: extraction refuses it by name
        needed = sum(declared) + ENTRY_OVERHEAD * len(declared)
        if needed > free:
            raise CacheError(
                f"cannot install {bundle.name}: no space left on the device (ENOSPC): it needs about "
                f"{needed // 1024} KiB and {self.root} has {free // 1024} KiB free; the active versions are "
                "untouched, free some space (or run gc) and install again"
            )

    def _record(self, digest: str, app_id: str, version: str) -> None:
        """Add an object to the history; when the disk refuses, the object (the truth) is kept and a
        later ``BundleCache`` records it."""
        try:
            self.history.add_object(digest, app_id, version)
        except HistoryError as exc:
            log.warning("bundle %s installed, but %s", digest, exc)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _activate(self, app_id: str, digest: str) -> Installed:
        if not APP_ID.match(app_id) or len(app_id) > 64:
            raise CacheError(f"{app_id!r} is not an app id")
        if not DIGEST.match(digest) or not (self.objects_dir / digest).is_dir():
            raise CacheError(f"bundle {digest} is not installed in the cache; install it first")
        installed = self._known(digest)
        if installed.app_id != app_id:
            raise CacheError(f"bundle {digest} holds {installed.app_id}, not {app_id}")
        link = self.apps_dir / app_id
        if link.exists() and not link.is_symlink():
            raise CacheError(f"{link} is a folder the cache does not manage; move it away first")
        if self._link_digest(app_id) != digest:
            staged = self.apps_dir / f".{app_id}.new"
            try:
                staged.unlink(missing_ok=True)
                os.symlink(f"../objects/{digest}", staged)
                os.replace(staged, link)
                fsync_dir(self.apps_dir)
            except OSError as exc:
                raise CacheError(f"cannot activate {app_id} in {self.apps_dir}: {exc.strerror}") from None
        try:
            self.history.add_activation(app_id, digest)
        except HistoryError as exc:  # the link is the truth; a later BundleCache records it
            log.warning("%s activated, but %s", app_id, exc)
        return installed

    def _known(self, digest: str) -> Installed:
        """The object ``digest`` (on disk), recorded in the history if a crash left it out."""
        path = self.objects_dir / digest
        row = self.history.object(digest)
        if row is None:
            manifest = load_manifest(path)
            self._record(digest, manifest.app_id, manifest.version)
            return Installed(manifest.app_id, manifest.version, digest, path)
        return Installed(row.app_id, row.version, digest, path)

    def _link_digest(self, app_id: str) -> str | None:
        try:
            target = os.readlink(self.apps_dir / app_id)
        except OSError:
            return None
        digest = target.rsplit("/", 1)[-1]
        return digest if target == f"../objects/{digest}" and DIGEST.match(digest) else None

    def _app_names(self) -> list[str]:
        try:
            return sorted(
                e.name for e in os.scandir(self.apps_dir) if not e.name.startswith(".") and e.is_symlink()
            )
        except OSError as exc:
            raise CacheError(f"cannot list {self.apps_dir}: {exc.strerror}") from None

    def _delete_object(self, digest: str) -> None:
        """Rename the object out of the way first, so a crash never leaves a half-deleted object
        under its digest."""
        trash = self.objects_dir / f"{TRASH_PREFIX}{digest}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.objects_dir / digest, trash)
            fsync_dir(self.objects_dir)
        except OSError as exc:
            raise CacheError(f"cannot delete bundle {digest}: {exc.strerror}") from None
        shutil.rmtree(trash, ignore_errors=True)  # frees space before the history needs any
        try:
            self.history.remove_object(digest)
        except HistoryError as exc:  # a later BundleCache drops rows of objects that are gone
            log.warning("bundle %s deleted, but %s", digest, exc)

    def _recover(self) -> None:
        """Clear what an interrupted install, activation or gc left, and record objects and
        activations that reached the disk but not the history."""
        for entry in os.scandir(self.objects_dir):
            if entry.name.startswith((TMP_PREFIX, TRASH_PREFIX)):
                shutil.rmtree(entry.path, ignore_errors=True)
        for entry in os.scandir(self.apps_dir):
            if entry.name.startswith(".") and entry.name.endswith(".new") and entry.is_symlink():
                os.unlink(entry.path)
        on_disk = {e.name for e in os.scandir(self.objects_dir) if DIGEST.match(e.name) and e.is_dir()}
        for row in self.history.objects():
            if row.digest not in on_disk:
                self.history.remove_object(row.digest)
        for digest in sorted(on_disk):
            try:
                self._known(digest)
            except BundleError:  # made by hand, not by install: left alone, never activated by rollback
                continue
        for name in self._app_names():
            linked = self._link_digest(name)
            if linked in on_disk and self.history.activations(name)[:1] != [linked]:
                self.history.add_activation(name, linked)
