"""Pieces of the release-pipeline tests: a registry process, the registry CLI, versioned test apps,
head units (bundle cache + TUF client over HTTP + syncer + run log) and a long-lived hub shell."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from vehicle_host import releases
from vehicle_host.bundle_cache import BundleCache
from vehicle_host.bundles import archive, catalog
from vehicle_host.hub.client import HubClient
from vehicle_host.trust.client import Progress, TrustedRepo
from vehicle_host.updates.health import HealthLog, report_health
from vehicle_host.updates.sync import Syncer, SyncReport

from .registry_helpers import Client, write_app

T = TypeVar("T")
CLI_TIMEOUT = 60


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m vehicle_host registry ARGS`` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "vehicle_host", "registry", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("VEHICLE_HOST_REGISTRY_")},
    )


@dataclass
class RegistryProcess:
    """``registry init`` + ``registry serve --port 0`` on 127.0.0.1 in a process of its own."""

    data: Path
    process: subprocess.Popen[str]
    url: str

    @property
    def token_file(self) -> Path:
        return self.data / "admin.token"

    @property
    def admin(self) -> str:
        return self.token_file.read_text().strip()

    @property
    def client(self) -> Client:
        return Client(self.url)

    def admin_args(self) -> list[str]:
        return ["--url", self.url, "--token-file", str(self.token_file)]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_registry(data: Path, *, min_launches: int, threshold: float) -> RegistryProcess:
    done = cli("init", "--data", str(data))
    assert done.returncode == 0, done.stderr
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vehicle_host",
            "registry",
            "serve",
            "--data",
            str(data),
            "--port",
            "0",
            "--min-launches",
            str(min_launches),
            "--threshold",
            str(threshold),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        process.kill()
        process.wait(5)
        raise AssertionError(f"registry serve printed {url!r} instead of its URL")
    return RegistryProcess(data, process, url)


def version_app(root: Path, app_id: str, version: str) -> Path:
    """An app whose page data carries its version; ``onWhich`` re-reads the version of the running code."""
    wxml = "<view bindtap='onWhich'>Version {{version}}</view>\n"
    app = write_app(
        root, app_id, version, permissions=("vehicle.signals",), network=("api.acme.example",), wxml=wxml
    )
    (app / "pages/index/index.js").write_text(
        f"const VERSION = '{version}';\n"
        "Page({\n"
        "  data: { version: VERSION, asked: 0 },\n"
        "  onWhich() { this.setData({ version: VERSION, asked: this.data.asked + 1 }); },\n"
        "});\n"
    )
    return app


def pack_version(root: Path, app_id: str, version: str) -> Path:
    out = root / f"{app_id}-{version}.vhb"
    archive.pack(version_app(root, app_id, version), out)
    return out


class CountingRepo(TrustedRepo):
    """A TrustedRepo that remembers every bundle it downloads."""

    def __init__(self, metadata_dir: Path, trust_root: bytes | Path, source: str | Path) -> None:
        super().__init__(metadata_dir, trust_root, source)
        self.fetched: list[str] = []

    def fetch_bundle(self, target_path: str, dest_dir: Path, progress: Progress | None = None) -> Path:
        self.fetched.append(target_path)
        return super().fetch_bundle(target_path, dest_dir, progress)


@dataclass
class HeadUnit:
    """One vehicle: its bundle cache, TUF client over HTTP, syncer and run log."""

    name: str
    vehicle_id: str
    cache: BundleCache
    repo: CountingRepo
    syncer: Syncer
    runs: HealthLog
    reports: list[SyncReport] = field(default_factory=list)

    def sync(self) -> SyncReport:
        report = self.syncer.sync_once()
        assert report.errors == {}, report.errors
        self.reports.append(report)
        return report

    def active(self, app_id: str) -> str | None:
        found = self.cache.active(app_id)
        return None if found is None else found.version

    def launchable(self, app_id: str) -> str | None:
        """The version a hub scanning this head unit's apps dir would launch."""
        apps, broken = catalog.scan(self.cache.apps_dir)
        assert broken == [], broken
        return next((a.manifest.version for a in apps if a.manifest.app_id == app_id), None)

    def record(self, app_id: str, version: str, launches: int, crashes: int = 0) -> None:
        for _ in range(launches):
            self.runs.record(app_id, version, "launch")
        for _ in range(crashes):
            self.runs.record(app_id, version, "crash")

    def report(self, registry_url: str) -> int:
        return report_health(self.runs, registry_url, self.vehicle_id)

    def close(self) -> None:
        self.runs.close()
        self.cache.close()


def head_unit(
    base: Path, name: str, vehicle_id: str, trust_root: bytes, repo_url: str, runs_db: Path | None = None
) -> HeadUnit:
    """A head unit under ``base/name``; ``runs_db`` is a hub's run log when a hub runs on it."""
    root = base / name
    cache = BundleCache(root / "cache")
    repo = CountingRepo(root / "tuf", trust_root, repo_url)
    runs = HealthLog(runs_db or root / "state" / "app-runs.db")
    return HeadUnit(name, vehicle_id, cache, repo, Syncer(repo, cache, vehicle_id), runs)


def cohort_ids(app_id: str, count: int = 2000) -> tuple[str, str, str]:
    """Vehicle ids: one inside the 5 % cohort, one inside 25 % but not 5 %, one outside 50 %."""
    ids = [f"VIN{n:06d}" for n in range(count)]
    early = next(v for v in ids if releases.in_percent(app_id, v, 5))
    second = next(
        v for v in ids if releases.in_percent(app_id, v, 25) and not releases.in_percent(app_id, v, 5)
    )
    late = next(v for v in ids if not releases.in_percent(app_id, v, 50))
    return early, second, late


def fleet_tracks(app_id: str, doc: dict[str, dict[str, Any]], size: int = 10_000) -> dict[str, int]:
    """How many of ``size`` simulated vehicles ``releases.choose`` puts on each version."""
    counts: dict[str, int] = {}
    for n in range(size):
        choice = releases.choose(app_id, doc[app_id], f"FLEET-{n:05d}")
        counts[choice.version] = counts.get(choice.version, 0) + 1
    return counts


class Shell:
    """A shell-role HubClient on its own event loop, kept across the synchronous steps of a test."""

    def __init__(self, endpoint: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = HubClient(endpoint, role="shell")
        self.run(self.client.connect())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.close()

    def list_apps(self) -> list[dict[str, Any]]:
        reply = self.run(self.client.request("app.list", "hub", {}))
        return list(reply.payload["apps"])

    def launch(self, app_id: str) -> tuple[str, dict[str, Any]]:
        """Launch ``app_id``; returns its page id and first rendered page data."""

        async def go() -> tuple[str, dict[str, Any]]:
            self.client.send("app.launch", "hub", {"app_id": app_id})
            opened = await self.client.expect("page.open", timeout=15, app_id=app_id)
            page_id = opened.payload["page_id"]
            rendered = await self.client.expect("page.render", timeout=15, page_id=page_id)
            return page_id, dict(rendered.payload["data"])

        return self.run(go())

    def ask_version(self, app_id: str, page_id: str) -> str:
        """Tap the page: the running code answers with its own version."""

        async def go() -> str:
            event = {"page_id": page_id, "handler": "onWhich", "event": {"type": "tap"}}
            self.client.send("page.event", f"app:{app_id}", event)
            update = await self.client.expect("page.setData", timeout=15, page_id=page_id)
            return str(update.payload["diff"]["version"])

        return self.run(go())

    def close_app(self, app_id: str) -> None:
        async def go() -> None:
            self.client.send("app.close", "hub", {"app_id": app_id})
            await self.client.expect("app.closed", timeout=15, app_id=app_id)

        self.run(go())
