"""Updating apps from a USB drive: the same signed snapshot the registry serves, read from a stick.

:class:`UsbImporter` listens to a :class:`~vehicle_host.usb_import.hotplug.HotplugSource`. For each
drive it accepts (by default: removable media and USB devices) it mounts the drive read-only, finds
``vehicle-host-repo/`` (``metadata/`` + ``targets/``, exactly the registry's static repository),
checks it against :class:`~vehicle_host.usb_import.limits.ImportLimits`, verifies it with the head
unit's own trust root and TUF metadata (``TrustedRepo`` on a local directory: an unknown key, a
missing or bad signature, an expired or older snapshot are refused) and installs through the same
``Syncer`` as the network path, then unmounts. A refused drive changes nothing in the cache.

Progress goes to ``progress(state)`` with ``state = {title, done, total, status, message}``,
``status`` one of ``running``, ``done``, ``failed``; it may be called from a worker thread. One
drive is imported at a time: a second drive inserted meanwhile is refused with a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vehicle_host.bundle_cache import BundleCache
from vehicle_host.errors import VehicleHostError
from vehicle_host.trust.client import TrustedRepo
from vehicle_host.updates.sync import Syncer, SyncReport
from vehicle_host.usb_import.hotplug import BlockDevice, HotplugSource
from vehicle_host.usb_import.limits import ImportLimits, check_tree, find_repo
from vehicle_host.usb_import.mount import Mounter, is_mounted

log = logging.getLogger("vehicle_host.usb_import")

TITLE = "Updating apps from USB"
Progress = Callable[[dict[str, Any]], None]
Accept = Callable[[BlockDevice], bool]
DEFAULT_LIMITS = ImportLimits()


def removable_only(device: BlockDevice) -> bool:
    """The default drive filter: removable media and USB devices not mounted already (never the
    system disk, even when the head unit boots from USB)."""
    return device.removable and not is_mounted(device.node)


@dataclass
class ImportOutcome:
    """What one drive did: ``ok`` with the syncer's result, or the refusal ``message``."""

    node: str
    ok: bool
    message: str
    result: SyncReport | None = None
    files: int = 0
    bytes: int = 0
    applied: list[dict[str, Any]] = field(default_factory=list)


class UsbImporter:
    """Imports signed update snapshots from USB drives as they are inserted."""

    def __init__(
        self,
        source: HotplugSource,
        mounter: Mounter,
        cache: BundleCache,
        trust_root: Path,
        vehicle_id: str,
        progress: Progress,
        *,
        metadata_dir: Path,
        download_dir: Path | None = None,
        accept: Accept = removable_only,
        limits: ImportLimits = DEFAULT_LIMITS,
        lock: asyncio.Lock | None = None,
        on_outcome: Callable[[ImportOutcome], Awaitable[None]] | None = None,
    ) -> None:
        self.source = source
        self.mounter = mounter
        self.cache = cache
        self.trust_root = trust_root
        self.vehicle_id = vehicle_id
        self.progress = progress
        self.metadata_dir = metadata_dir
        self.download_dir = download_dir
        self.accept = accept
        self.limits = limits
        self.lock = lock or asyncio.Lock()
        self.on_outcome = on_outcome
        self.outcomes: list[ImportOutcome] = []
        self._current: BlockDevice | None = None
        self._removed = threading.Event()
        self._task: asyncio.Task[ImportOutcome] | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        """Handle events until the source ends; an import in progress is finished first."""
        try:
            async for event in self.source.events():
                if event.action == "remove":
                    current = self._current
                    if current is not None and current.node == event.device.node:
                        self._removed.set()
                    continue
                await self._on_add(event.device)
        finally:
            if self._task is not None:
                with contextlib.suppress(Exception):
                    await self._task

    async def _on_add(self, device: BlockDevice) -> None:
        if not self.accept(device):
            log.info("ignored a block device", extra={"node": device.node, "removable": device.removable})
            return
        if device.fs_type is None:
            # e.g. a whole disk with a partition table: its partitions arrive as their own events
            log.info("ignored a drive without a filesystem", extra={"node": device.node})
            return
        if self.busy and self._current is not None and self._current.node == device.node:
            return  # the same drive announced twice (e.g. media change, then add)
        if self.busy:
            current = self._current.node if self._current is not None else "another drive"
            self._report(
                "failed",
                0,
                0,
                f"{device.node}: one USB drive at a time; {current} is being read. "
                "Insert this drive again when the current update has finished.",
            )
            return
        self._current = device  # busy from now on, before the task first runs
        self._task = asyncio.create_task(self.import_device(device))

    async def wait_idle(self) -> None:
        """Wait for the import in progress (if any) to end."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    async def import_device(self, device: BlockDevice) -> ImportOutcome:
        """Import one drive now (mount, verify, install, unmount); never raises for a bad drive."""
        self._current = device
        self._removed.clear()
        self._report("running", 0, 0, f"Reading the USB drive {device.node}")
        try:
            async with self.lock:
                outcome = await asyncio.to_thread(self._import_blocking, device)
        except Exception:
            log.exception("USB import failed unexpectedly", extra={"node": device.node})
            message = "the USB import failed unexpectedly; see the host log"
            outcome = ImportOutcome(device.node, False, message)
        finally:
            self._current = None
        if outcome.ok:
            self._report("done", 1, 1, outcome.message)
        else:
            self._report("failed", 0, 0, outcome.message)
        self.outcomes.append(outcome)
        log.info(
            "USB import finished",
            extra={"node": device.node, "ok": outcome.ok, "message": outcome.message[:300]},
        )
        if self.on_outcome is not None:
            try:
                await self.on_outcome(outcome)
            except Exception:
                log.exception("the USB import outcome handler failed")
        return outcome

    def _import_blocking(self, device: BlockDevice) -> ImportOutcome:
        try:
            with self.mounter.mounted(device) as root:
                repo_dir = find_repo(root)
                files, size = check_tree(repo_dir, self.limits)
                result = self._sync(repo_dir)
        except VehicleHostError as exc:
            message = str(exc) or type(exc).__name__
            if self._removed.is_set():
                message = (
                    f"the USB drive {device.node} was removed during the update; nothing more was "
                    f"installed from it. Insert it again to finish. ({message[:300]})"
                )
            return ImportOutcome(device.node, False, message)
        except OSError as exc:
            if self._removed.is_set():
                message = f"the USB drive {device.node} was removed during the update; insert it again"
            else:
                message = f"the USB drive {device.node} could not be read ({exc.strerror}); it may be damaged"
            return ImportOutcome(device.node, False, message)
        ok, message = summary(result, "the USB drive")
        return ImportOutcome(device.node, ok, message, result, files, size, applied_apps(result))

    def _sync(self, repo_dir: Path) -> SyncReport:
        repo = TrustedRepo(self.metadata_dir, self.trust_root, repo_dir)
        syncer = Syncer(repo, self.cache, self.vehicle_id, download_dir=self.download_dir)
        return syncer.sync_once(self._sync_progress)

    def _sync_progress(self, app_id: str, done: int, total: int) -> None:
        self._report("running", done, total, f"Copying {app_id} from the USB drive")

    def _report(self, status: str, done: int, total: int, message: str) -> None:
        state = {"title": TITLE, "done": done, "total": total, "status": status, "message": message[:500]}
        try:
            self.progress(state)
        except Exception:
            log.exception("the progress callback failed")


def applied_apps(report: SyncReport) -> list[dict[str, Any]]:
    """``[{app_id, version, urgent}]`` of the apps a sync activated."""
    return [{"app_id": c.app_id, "version": c.version, "urgent": c.urgent} for c in report.changed]


def summary(report: SyncReport, source: str) -> tuple[bool, str]:
    """``(ok, message)`` for a finished sync: ok when no app failed."""
    applied = applied_apps(report)
    names = ", ".join(f"{a['app_id']} {a['version']}" for a in applied[:5])
    more = f" and {len(applied) - 5} more" if len(applied) > 5 else ""
    installed = f"Installed from {source}: {names}{more}" if applied else ""
    if not report.errors:
        return True, installed or f"Apps are up to date: {source} holds nothing newer"
    failed = "; ".join(f"{app_id}: {error}" for app_id, error in sorted(report.errors.items())[:3])
    more = f" (and {len(report.errors) - 3} more)" if len(report.errors) > 3 else ""
    lead = f"{installed}. " if installed else ""
    return False, f"{lead}Not installed, the previous version stays: {failed}{more}"
