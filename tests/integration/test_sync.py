"""Head-unit sync against a real repository on 127.0.0.1: installs, gray rollout by cohort,
one-click rollback without downloading, urgent flags, per-app failures, health reports."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vehicle_host import releases
from vehicle_host.bundle_cache import BundleCache
from vehicle_host.trust.client import TrustedRepo
from vehicle_host.updates.health import HealthError, HealthLog, report_health
from vehicle_host.updates.sync import Syncer

from .trust_fixtures import Registry, registry  # noqa: F401

NAV, PAY = "com.acme.nav", "com.beta.pay"


def head_unit(base: Path, registry: Registry, vehicle_id: str) -> Syncer:  # noqa: F811
    repo = TrustedRepo(base / "tuf", registry.repo.trust_root(), registry.url)
    return Syncer(repo, BundleCache(base / "cache"), vehicle_id)


def blob_gets(registry: Registry) -> list[str]:  # noqa: F811
    assert registry.server is not None
    return [path for path, _ in registry.server.requests if path.endswith(".vhb")]


@pytest.fixture
def two_apps(registry: Registry) -> Registry:  # noqa: F811
    registry.add_partner("acme", "com.acme")
    registry.add_partner("beta", "com.beta")
    registry.publish("acme", NAV, "1.0.0")
    registry.publish("beta", PAY, "2.0.0")
    registry.release(NAV, "1.0.0")
    registry.release(PAY, "2.0.0")
    return registry


def vehicles(percent: float) -> tuple[str, str]:
    """One vehicle id inside the NAV rollout cohort and one outside it."""
    ids = [f"VIN-{n:04d}" for n in range(200)]
    inside = next(v for v in ids if releases.in_percent(NAV, v, percent))
    outside = next(v for v in ids if not releases.in_percent(NAV, v, percent))
    return inside, outside


def test_two_apps_install_then_nothing_to_do(tmp_path: Path, two_apps: Registry) -> None:
    syncer = head_unit(tmp_path / "car", two_apps, "VIN-0001")
    report = syncer.sync_once()
    assert report.errors == {}
    assert sorted((c.app_id, c.version, c.previous, c.track) for c in report.changed) == [
        (NAV, "1.0.0", None, "stable"),
        (PAY, "2.0.0", None, "stable"),
    ]
    assert sorted(i.app_id for i in syncer.cache.installed_apps()) == [NAV, PAY]
    gets = len(blob_gets(two_apps))
    again = syncer.sync_once()
    assert again.changed == [] and sorted(again.unchanged) == [NAV, PAY]
    assert len(blob_gets(two_apps)) == gets


def test_rollout_percent_chooses_by_cohort(tmp_path: Path, two_apps: Registry) -> None:
    two_apps.publish("acme", NAV, "1.1.0")
    two_apps.release(NAV, "1.0.0", rollout=("1.1.0", 25))
    inside, outside = vehicles(25)
    early = head_unit(tmp_path / "early", two_apps, inside)
    late = head_unit(tmp_path / "late", two_apps, outside)
    early_report, late_report = early.sync_once(), late.sync_once()
    assert {c.app_id: (c.version, c.track) for c in early_report.changed}[NAV] == ("1.1.0", "rollout")
    assert {c.app_id: (c.version, c.track) for c in late_report.changed}[NAV] == ("1.0.0", "stable")
    assert early.cache.active(NAV).version == "1.1.0"  # type: ignore[union-attr]
    assert late.cache.active(NAV).version == "1.0.0"  # type: ignore[union-attr]

    two_apps.release(NAV, "1.0.0", rollout=("1.1.0", 100))  # widened: everyone moves
    moved = late.sync_once()
    assert [(c.app_id, c.version, c.previous) for c in moved.changed] == [(NAV, "1.1.0", "1.0.0")]
    assert early.sync_once().changed == []


def test_one_click_rollback_switches_back_without_downloading(tmp_path: Path, two_apps: Registry) -> None:
    syncer = head_unit(tmp_path / "car", two_apps, "VIN-0001")
    syncer.sync_once()
    two_apps.publish("acme", NAV, "1.1.0")
    two_apps.release(NAV, "1.1.0", urgent=True)
    report = syncer.sync_once()
    assert report.urgent == [NAV] and report.downloaded == [NAV]
    assert syncer.cache.active(NAV).version == "1.1.0"  # type: ignore[union-attr]

    gets = len(blob_gets(two_apps))
    two_apps.release(NAV, "1.0.0")  # the registry's one-click rollback: stable := previous
    report = syncer.sync_once()
    assert [(c.app_id, c.version, c.previous, c.downloaded) for c in report.changed] == [
        (NAV, "1.0.0", "1.1.0", False)
    ]
    assert len(blob_gets(two_apps)) == gets
    assert syncer.cache.active(NAV).version == "1.0.0"  # type: ignore[union-attr]


def test_one_broken_app_does_not_stop_the_others(tmp_path: Path, two_apps: Registry) -> None:
    syncer = head_unit(tmp_path / "car", two_apps, "VIN-0001")
    two_apps.blob(PAY, "2.0.0").write_bytes(b"garbage")
    report = syncer.sync_once()
    assert "hash mismatch" in report.errors[PAY] or "longer" in report.errors[PAY]
    assert [c.app_id for c in report.changed] == [NAV]
    assert syncer.cache.active(PAY) is None and syncer.cache.versions(PAY) == []


class _Collector(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        super().__init__(("127.0.0.1", 0), _CollectorHandler)


class _CollectorHandler(http.server.BaseHTTPRequestHandler):
    server: _Collector

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/api/health" and self.server.status == 200:
            self.server.posts.append(json.loads(body))
        answer = json.dumps({"accepted": 1}).encode()
        self.send_response(self.server.status if self.path == "/api/health" else 404)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def collector() -> Iterator[_Collector]:
    server = _Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_health_runs_are_summed_and_posted_once(tmp_path: Path, collector: _Collector) -> None:
    log = HealthLog(tmp_path / "app-runs.db")
    for event in ("launch", "launch", "crash", "launch", "error"):
        log.record(NAV, "1.1.0", event)
    log.record(PAY, "2.0.0", "launch")
    with pytest.raises(HealthError, match="must be one of"):
        log.record(NAV, "1.1.0", "explode")
    url = f"http://127.0.0.1:{collector.server_address[1]}"

    collector.status = 503
    with pytest.raises(HealthError, match="HTTP 503"):
        report_health(log, url, "VIN-0001")
    assert log.reported() == 0  # still queued

    collector.status = 200
    assert report_health(log, url, "VIN-0001") == 6
    assert collector.posts == [
        {
            "vehicle_id": "VIN-0001",
            "reports": [
                {"app_id": NAV, "version": "1.1.0", "launches": 3, "crashes": 1, "errors": 1},
                {"app_id": PAY, "version": "2.0.0", "launches": 1, "crashes": 0, "errors": 0},
            ],
        }
    ]
    assert report_health(log, url, "VIN-0001") == 0  # nothing new
    log.record(NAV, "1.1.0", "launch")
    assert report_health(log, url, "VIN-0001") == 1
    assert collector.posts[-1]["reports"] == [
        {"app_id": NAV, "version": "1.1.0", "launches": 1, "crashes": 0, "errors": 0}
    ]
    assert log.since(0) == []  # delivered runs are forgotten: the table does not grow
    log.close()
