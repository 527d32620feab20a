"""The ``updates`` plugin: keeps the installed apps in line with the registry and with USB drives.

Config (the plugin's section of the host configuration):

``trust_root``
    Path of the provisioned ``root.json`` (the registry's trust anchor). Required.
``cache_dir``
    The bundle cache root; its ``apps/`` folder is the hub's apps directory. Required.
``vehicle_id``
    This vehicle's id (picks its gray-release cohort; sent with health reports). Required.
``registry_url``
    The registry's base URL (``https://registry.example``): signed metadata and bundles are read
    from ``<registry_url>/repo`` (or ``repo_url`` when set), health is posted to
    ``<registry_url>/api/health``. Without it the vehicle updates from USB drives only.
``interval_s``
    Seconds between background syncs (default 3600; the first runs when the plugin starts).
``usb``
    ``true`` to watch for USB drives holding a ``vehicle-host-repo/`` snapshot and import them
    (default ``false``). Mounting needs root (CAP_SYS_ADMIN): on the head unit this plugin runs in
    the root USB-import service, see ``systemd/README.md``.
``health_db``
    The hub's run log (``<hub state dir>/app-runs.db``). After each registry sync the runs not yet
    reported are summed and posted; the reported position is kept in that file.
``mount_dir``
    Where drives are mounted (private folders, mode 0700); default ``<state dir>/mnt``.

Verified TUF metadata is kept in ``<state dir>/tuf`` and shared by both sources, so a USB drive
can never install anything older than what the vehicle already trusts.

State published for the shell:

- ``updates.progress`` ``{title, done, total, status, message}`` (``status``: ``running``, ``done``,
  ``failed``) while bundles download or a USB drive is read. A background sync with nothing to
  download shows nothing.
- ``updates.applied`` ``{apps: [{app_id, version, urgent}]}`` after new versions were activated;
  a running app keeps its version until restarted, urgent ones should be restarted now.

Methods (permission ``system.updates``): ``updates.status`` and ``updates.syncNow``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vehicle_host.bundle_cache import BundleCache
from vehicle_host.errors import VehicleHostError
from vehicle_host.plugins.contract import NO_ARGS, CallContext, Plugin, PluginContext, PluginError, method
from vehicle_host.plugins.contract import now_ms as _now_ms  # tests set the clock here
from vehicle_host.trust.client import TrustedRepo
from vehicle_host.updates.health import HealthLog, report_health
from vehicle_host.updates.sync import Syncer, SyncReport
from vehicle_host.usb_import.hotplug import HotplugSource, PyudevSource
from vehicle_host.usb_import.importer import ImportOutcome, UsbImporter, applied_apps, summary
from vehicle_host.usb_import.mount import Mounter, SystemMounter

PERMISSION = "system.updates"
DEFAULT_INTERVAL_S = 3600.0
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 7 * 24 * 3600.0
VEHICLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
PROGRESS_MIN_INTERVAL_S = 0.1
MAX_MESSAGE = 500
TITLE = "Updating apps"
REQUIRED = ("trust_root", "cache_dir", "vehicle_id")

_APPLIED: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "app_id": {"type": "string"},
            "version": {"type": "string"},
            "urgent": {"type": "boolean"},
        },
        "required": ["app_id", "version", "urgent"],
    },
}
_RESULT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "message": {"type": "string"},
        "applied": _APPLIED,
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["ok", "message", "applied", "errors"],
}


class UpdatesConfigError(PluginError):
    code = "unavailable"


@dataclass(frozen=True, slots=True)
class UpdatesConfig:
    trust_root: Path
    cache_dir: Path
    vehicle_id: str
    registry_url: str | None
    repo_url: str | None
    interval_s: float
    usb: bool
    health_db: Path | None
    mount_dir: Path
    metadata_dir: Path


def parse_config(config: Mapping[str, Any], state_dir: str) -> UpdatesConfig:
    """The typed configuration, or UpdatesConfigError naming the first bad setting."""
    if not state_dir:
        raise UpdatesConfigError("the updates plugin needs a state directory (--state-dir)")
    missing = [name for name in REQUIRED if not config.get(name)]
    if missing:
        raise UpdatesConfigError(
            f"updates are off: set {', '.join(missing)} in the updates plugin's configuration"
        )
    trust_root = Path(str(config["trust_root"]))
    if not trust_root.is_file():
        raise UpdatesConfigError(f"trust_root {trust_root} is not a file; provision the registry's root.json")
    vehicle_id = config["vehicle_id"]
    if not isinstance(vehicle_id, str) or not VEHICLE_ID.match(vehicle_id):
        raise UpdatesConfigError("vehicle_id must be 1-128 letters, digits, '_', '.', ':' or '-'")
    registry_url = _url(config, "registry_url")
    repo_url = _url(config, "repo_url") or (registry_url.rstrip("/") + "/repo" if registry_url else None)
    interval = config.get("interval_s", DEFAULT_INTERVAL_S)
    if (
        not isinstance(interval, int | float)
        or isinstance(interval, bool)
        or not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S
    ):
        raise UpdatesConfigError(f"interval_s must be a number from {MIN_INTERVAL_S:g} to {MAX_INTERVAL_S:g}")
    usb = config.get("usb", False)
    if not isinstance(usb, bool):
        raise UpdatesConfigError("usb must be true or false")
    health_db = config.get("health_db")
    state = Path(state_dir)
    return UpdatesConfig(
        trust_root=trust_root,
        cache_dir=Path(str(config["cache_dir"])),
        vehicle_id=vehicle_id,
        registry_url=registry_url,
        repo_url=repo_url,
        interval_s=float(interval),
        usb=usb,
        health_db=Path(str(health_db)) if health_db else None,
        mount_dir=Path(str(config.get("mount_dir") or state / "mnt")),
        metadata_dir=state / "tuf",
    )


def _url(config: Mapping[str, Any], name: str) -> str | None:
    value = config.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 2000 or not URL.match(value):
        raise UpdatesConfigError(f"{name} must be an http:// or https:// URL")
    return value


class Banner:
    """The ``updates.progress`` state: updated from any thread, published coalesced (<= 10 a second)."""

    def __init__(self, plugin: UpdatesPlugin) -> None:
        self._plugin = plugin
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._latest: dict[str, Any] | None = None
        self._wake = asyncio.Event()
        self.current: dict[str, Any] | None = None

    def update(self, state: Mapping[str, Any]) -> None:
        value = {
            "title": str(state.get("title", TITLE))[:100],
            "done": max(0, int(state.get("done", 0))),
            "total": max(0, int(state.get("total", 0))),
            "status": str(state.get("status", "running")),
            "message": str(state.get("message", ""))[:MAX_MESSAGE],
        }
        with self._lock:
            self._latest = value
            self.current = value
        self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self._lock:
                value, self._latest = self._latest, None
            if value is not None:
                try:
                    await self._plugin.context.publish_state("updates.progress", value)
                except VehicleHostError:
                    self._plugin.context.log.exception("cannot publish update progress")
                await asyncio.sleep(PROGRESS_MIN_INTERVAL_S)


class UpdatesPlugin(Plugin):
    name = "updates"
    version = "1.0.0"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.config: UpdatesConfig | None = None
        self.problem = ""
        self.cache: BundleCache | None = None
        self.health: HealthLog | None = None
        self.lock = asyncio.Lock()  # one sync or USB import at a time: they share the TUF metadata
        self._tasks: list[asyncio.Task[Any]] = []
        self._running: asyncio.Future[dict[str, Any]] | None = None
        self._banner: Banner | None = None
        self._source: HotplugSource | None = None
        self.last_sync: dict[str, Any] | None = None
        self.last_usb: dict[str, Any] | None = None
        self.last_health: dict[str, Any] | None = None
        self.next_sync_ms: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            self.config = parse_config(self.context.config, self.context.state_dir)
        except UpdatesConfigError as exc:
            self.problem = str(exc)
            self.context.log.warning("updates are off", extra={"reason": self.problem})
            return
        config = self.config
        self.cache = await asyncio.to_thread(BundleCache, config.cache_dir)
        if config.health_db is not None:
            self.health = await asyncio.to_thread(HealthLog, config.health_db)
        self._banner = Banner(self)
        self._tasks.append(asyncio.create_task(self._banner.run()))
        if config.repo_url is not None:
            self._tasks.append(asyncio.create_task(self._periodic(config.interval_s)))
        if config.usb:
            self._source = self.usb_source()
            importer = UsbImporter(
                self._source,
                self.mounter(config.mount_dir),
                self.cache,
                config.trust_root,
                config.vehicle_id,
                self._banner.update,
                metadata_dir=config.metadata_dir,
                lock=self.lock,
                on_outcome=self._usb_done,
            )
            self._tasks.append(asyncio.create_task(self._watch_usb(importer)))

    def usb_source(self) -> HotplugSource:
        """Where drive events come from (kernel uevents; a drive already present counts too)."""
        return PyudevSource(existing=True)

    def mounter(self, mount_dir: Path) -> Mounter:
        return SystemMounter(mount_dir)

    async def stop(self) -> None:
        if self._source is not None:
            self._source.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        async with self.lock:  # a sync running in a thread finishes before the cache closes
            if self.cache is not None:
                await asyncio.to_thread(self.cache.close)
                self.cache = None
            if self.health is not None:
                await asyncio.to_thread(self.health.close)
                self.health = None

    async def _periodic(self, interval_s: float) -> None:
        while True:
            try:
                await self.sync()
            except Exception:
                self.context.log.exception("the background update sync failed")
            self.next_sync_ms = _now_ms() + int(interval_s * 1000)
            await asyncio.sleep(interval_s)

    async def _watch_usb(self, importer: UsbImporter) -> None:
        try:
            await importer.run()
        except OSError as exc:
            self.last_usb = {"at": _now_ms(), "ok": False, "message": f"USB drives cannot be watched: {exc}"}
            self.context.log.error("USB drives cannot be watched", extra={"error": str(exc)})

    async def _usb_done(self, outcome: ImportOutcome) -> None:
        self.last_usb = {"at": _now_ms(), "ok": outcome.ok, "message": outcome.message[:MAX_MESSAGE]}
        await self._announce(outcome.applied)

    async def _announce(self, applied: list[dict[str, Any]]) -> None:
        if applied:
            await self.context.publish_state("updates.applied", {"apps": applied})

    # -- registry sync --------------------------------------------------------------------------
    async def sync(self) -> dict[str, Any]:
        """Sync with the registry now; a sync already running is joined rather than repeated."""
        if self.config is None or self.cache is None:
            raise UpdatesConfigError(self.problem or "updates are not running")
        if self.config.repo_url is None:
            raise UpdatesConfigError(
                "no registry_url is configured: this vehicle updates from USB drives only"
            )
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._sync())
        return await asyncio.shield(self._running)

    async def _sync(self) -> dict[str, Any]:
        assert self.config is not None and self._banner is not None
        config, banner = self.config, self._banner
        shown = threading.Event()

        def progress(app_id: str, done: int, total: int) -> None:
            shown.set()
            banner.update(
                {"status": "running", "done": done, "total": total, "message": f"Downloading {app_id}"}
            )

        async with self.lock:
            cache = self.cache
            if cache is None:
                raise UpdatesConfigError("updates are stopping")
            report: SyncReport | None = None
            try:
                report = await asyncio.to_thread(self._sync_blocking, config, cache, progress)
            except VehicleHostError as exc:
                ok, message = False, str(exc) or type(exc).__name__
            else:
                ok, message = summary(report, "the registry")
        applied = applied_apps(report) if report is not None else []
        errors = dict(report.errors) if report is not None else {}
        self.last_sync = {"at": _now_ms(), "ok": ok, "message": message[:MAX_MESSAGE]}
        if shown.is_set():
            banner.update({"status": "done" if ok else "failed", "done": 1, "total": 1, "message": message})
        await self._announce(applied)
        if report is not None:
            await self._post_health(config)
        return {"ok": ok, "message": message[:MAX_MESSAGE], "applied": applied, "errors": errors}

    @staticmethod
    def _sync_blocking(config: UpdatesConfig, cache: BundleCache, progress: Any) -> SyncReport:
        assert config.repo_url is not None
        repo = TrustedRepo(config.metadata_dir, config.trust_root, config.repo_url)
        return Syncer(repo, cache, config.vehicle_id).sync_once(progress)

    async def _post_health(self, config: UpdatesConfig) -> None:
        if self.health is None or config.registry_url is None:
            return
        health, url = self.health, config.registry_url
        try:
            sent = await asyncio.to_thread(report_health, health, url, config.vehicle_id)
        except VehicleHostError as exc:
            self.last_health = {"at": _now_ms(), "ok": False, "message": str(exc)[:MAX_MESSAGE]}
            self.context.log.warning("health report not delivered", extra={"error": str(exc)[:300]})
            return
        self.last_health = {"at": _now_ms(), "ok": True, "message": f"{sent} runs reported"}

    # -- methods --------------------------------------------------------------------------------
    @method(
        "updates.status",
        permission=PERMISSION,
        args=NO_ARGS,
        result={
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "problem": {"type": "string"},
                "registry": {"type": "boolean"},
                "usb": {"type": "boolean"},
                "syncing": {"type": "boolean"},
                "apps": {"type": "array"},
            },
            "required": ["enabled", "registry", "usb", "syncing", "apps"],
        },
    )
    async def status(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """What is installed, the last sync and USB import, and any update in progress."""
        apps: list[dict[str, Any]] = []
        if self.cache is not None:
            installed = await asyncio.to_thread(self.cache.installed_apps)
            apps = [{"app_id": i.app_id, "version": i.version} for i in installed]
        banner = self._banner.current if self._banner is not None else None
        return {
            "enabled": self.config is not None,
            "problem": self.problem,
            "registry": self.config is not None and self.config.repo_url is not None,
            "usb": self.config is not None and self.config.usb,
            "syncing": self._running is not None and not self._running.done(),
            "apps": apps,
            "progress": banner if banner is not None and banner["status"] == "running" else None,
            "last_sync": self.last_sync,
            "last_usb": self.last_usb,
            "last_health": self.last_health,
            "next_sync_at": self.next_sync_ms,
        }

    @method(
        "updates.syncNow",
        permission=PERMISSION,
        args=NO_ARGS,
        result=_RESULT,
        timeout_s=600.0,
    )
    async def sync_now(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Check the registry for updates now and install them (joins a sync already running)."""
        self.context.log.info("sync requested", extra={"app_id": call.app_id})
        return await self.sync()
