"""Bring the bundle cache in line with the registry's signed ``releases.json``.

Per app the vehicle's cohort picks stable, rollout or an experiment variant
(``releases.choose``). A version whose bundle is already cached is activated without any
download (so a registry rollback switches back at once); otherwise the bundle is downloaded,
verified against its signed length and sha256, installed and activated. A running app keeps its
old object until restarted; urgent releases are flagged so the shell restarts the app and tells
the user. One failing app never stops the others, and nothing that failed verification is
activated.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vehicle_host import releases
from vehicle_host.bundle_cache import BundleCache
from vehicle_host.errors import VehicleHostError
from vehicle_host.trust.client import TrustedRepo
from vehicle_host.trust.errors import TrustError

log = logging.getLogger(__name__)

#: ``progress(app_id, done_bytes, total_bytes)`` while a bundle downloads
SyncProgress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class AppChange:
    """One app whose active version changed."""

    app_id: str
    version: str
    previous: str | None  # the version active before, None on first install
    track: str  # "stable", "rollout" or "variant:<A|B>"
    urgent: bool
    downloaded: bool  # False when the version was already in the cache


@dataclass
class SyncReport:
    changed: list[AppChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def urgent(self) -> list[str]:
        """Apps the shell should restart now (and tell the user about)."""
        return [c.app_id for c in self.changed if c.urgent]

    @property
    def downloaded(self) -> list[str]:
        return [c.app_id for c in self.changed if c.downloaded]


class Syncer:
    def __init__(
        self, repo: TrustedRepo, cache: BundleCache, vehicle_id: str, download_dir: Path | None = None
    ) -> None:
        self.repo = repo
        self.cache = cache
        self.vehicle_id = vehicle_id
        self.download_dir = download_dir if download_dir is not None else cache.root / "downloads"

    def sync_once(self, progress: SyncProgress | None = None) -> SyncReport:
        """One pass over every released app. Raises TrustError only when the repository metadata
        itself cannot be trusted or reached (then nothing changed)."""
        self.repo.refresh()
        apps = self.repo.releases()
        report = SyncReport()
        for app_id in sorted(apps):
            try:
                choice = releases.choose(app_id, apps[app_id], self.vehicle_id)
                change = self._sync_app(app_id, choice, progress)
            except VehicleHostError as e:
                log.warning("update of %s failed: %s", app_id, e)
                report.errors[app_id] = str(e)
                continue
            if change is None:
                report.unchanged.append(app_id)
            else:
                report.changed.append(change)
        return report

    def _download_failed(self, target: str, exc: OSError) -> VehicleHostError:
        """The error for a download the disk refused. On a full disk the partial ``.part`` files are
        deleted so the space goes back to orders, storage and logs (the next sync starts over)."""
        if exc.errno != errno.ENOSPC:
            return VehicleHostError(f"cannot save the download of {target} in {self.download_dir}: {exc}")
        for part in self.download_dir.glob("*.part"):
            part.unlink(missing_ok=True)
        return VehicleHostError(
            f"cannot download {target}: no space left on the device (ENOSPC) in {self.download_dir}; the "
            "partial download was deleted and the active version is unchanged. Free some space and sync again"
        )

    def _sync_app(
        self, app_id: str, choice: releases.Choice, progress: SyncProgress | None
    ) -> AppChange | None:
        info = self.repo.target_info(choice.target)
        digest = info.hashes["sha256"]
        active = self.cache.active(app_id)
        if active is not None and active.digest == digest:
            return None
        cached = any(i.digest == digest for i in self.cache.versions(app_id))
        if not cached:
            step = (lambda done, total: progress(app_id, done, total)) if progress else None
            try:
                path = self.repo.fetch_bundle(choice.target, self.download_dir, step)
            except OSError as exc:
                raise self._download_failed(choice.target, exc) from None
            try:
                installed = self.cache.install(path, expected_sha256=digest)
            finally:
                path.unlink(missing_ok=True)
            if (installed.app_id, installed.version) != (app_id, choice.version):
                raise TrustError(
                    f"{choice.target} holds {installed.app_id} {installed.version}, not {app_id} "
                    f"{choice.version}; not activated"
                )
        self.cache.activate(app_id, digest)
        return AppChange(
            app_id=app_id,
            version=choice.version,
            previous=active.version if active else None,
            track=choice.track,
            urgent=choice.urgent,
            downloaded=not cached,
        )
