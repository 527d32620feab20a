"""The whole release pipeline against a real registry process on 127.0.0.1: a partner onboarded with
ceilings publishes through the registry CLI, a reviewer rejects and approves, gray release with
health-driven widening and rollback, one-click rollback; real head units (bundle cache + TUF client
over HTTP + syncer + run log) follow, and a real hub on one of them shows that a running app is never
swapped under the driver."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HubProcess, start_hub
from vehicle_host import releases
from vehicle_host.trust import keys

from .pipeline_helpers import (
    HeadUnit,
    RegistryProcess,
    Shell,
    cli,
    cohort_ids,
    fleet_tracks,
    head_unit,
    pack_version,
    start_registry,
)
from .registry_helpers import BAD_WXML, make_bundle

pytestmark = pytest.mark.integration
APP = "com.acme.nav"
MIN_LAUNCHES = 20
THRESHOLD = 0.05
SUBMITTED = re.compile(r"as submission (\d+) \((\w+)\)")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    process = start_registry(tmp_path / "registry", min_launches=MIN_LAUNCHES, threshold=THRESHOLD)
    yield process
    assert process.stop() == 0


@pytest.fixture
def hub_dir(short_dir: Path) -> Path:
    """Where the hub of head unit A keeps its sockets and state (short: ipc paths are limited)."""
    return short_dir


def onboard(registry: RegistryProcess, keys_dir: Path) -> tuple[Path, str]:
    """``registry partner add`` with the partner's public key and ceilings; returns (key, token)."""
    key = keys_dir / "acme.pem"
    keys.generate_key(key)
    done = cli(
        "partner",
        "add",
        "acme",
        "--namespace",
        "com.acme",
        "--pubkey",
        str(keys.public_key_path(key)),
        "--permissions",
        "vehicle.signals,storage",
        "--domains",
        "*.acme.example",
        *registry.admin_args(),
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["namespace"], doc["permissions"], doc["domains"]) == (
        "com.acme",
        ["storage", "vehicle.signals"],
        ["*.acme.example"],
    )
    return key, str(doc["token"])


def publish(registry: RegistryProcess, key: Path, token: str, bundle: Path) -> tuple[int, int, str]:
    """``registry publish`` as the partner: (exit code, submission id, output)."""
    done = cli(
        "publish",
        str(bundle),
        "--partner",
        "acme",
        "--key",
        str(key),
        "--url",
        registry.url,
        "--token",
        token,
    )
    found = SUBMITTED.search(done.stdout)
    assert found, done.stdout + done.stderr
    return done.returncode, int(found.group(1)), done.stdout


def admin(registry: RegistryProcess, verb: str, path: str, body: Any = None) -> Any:
    status, doc = registry.client.request(verb, path, body, registry.admin)
    assert status == 200, doc
    return doc


def approve(registry: RegistryProcess, submission: int) -> None:
    doc = admin(registry, "POST", f"/api/submissions/{submission}/approve", {})
    assert doc["status"] == "approved"


def sync_all(units: list[HeadUnit]) -> dict[str, tuple[str | None, bool | None]]:
    """Sync every head unit once: name -> (active version, downloaded or None when unchanged)."""
    out: dict[str, tuple[str | None, bool | None]] = {}
    for unit in units:
        report = unit.sync()
        changed = {c.app_id: c for c in report.changed}
        out[unit.name] = (unit.active(APP), changed[APP].downloaded if APP in changed else None)
    return out


def test_publish_review_gray_release_health_and_rollback(
    registry: RegistryProcess, tmp_path: Path, hub_dir: Path
) -> None:
    key, token = onboard(registry, tmp_path / "keys")
    partner = registry.client

    # a bad bundle: automated review fails, the reviewer rejects it, the partner reads why
    bad = make_bundle(tmp_path, APP, "0.9.0", wxml=BAD_WXML, permissions=("vehicle.diagnostics.clear",))
    code, bad_id, out = publish(registry, key, token, bad)
    assert code == 1 and "FAIL templates" in out and "FAIL permissions" in out
    status, doc = partner.request("POST", f"/api/submissions/{bad_id}/approve", {}, registry.admin)
    assert status == 409 and doc["error"]["code"] == "checks_failed"
    reason = "index.wxml does not compile, and vehicle.diagnostics.clear is outside your ceiling"
    done = cli("review", "reject", str(bad_id), "--reason", reason, *registry.admin_args())
    assert done.returncode == 0, done.stderr
    status, seen = partner.request("GET", f"/api/submissions/{bad_id}", token=token)
    assert status == 200 and (seen["status"], seen["reason"]) == ("rejected", reason)
    assert {c["name"] for c in seen["checks"] if not c["ok"]} == {"templates", "permissions"}

    # 1.0.0 approved and released as stable: every head unit follows
    code, first, _ = publish(registry, key, token, pack_version(tmp_path, APP, "1.0.0"))
    assert code == 0
    approve(registry, first)
    admin(registry, "POST", f"/api/apps/{APP}/release", {"version": "1.0.0"})
    status, trust_root = partner.request("GET", "/api/trust-root")
    assert status == 200
    raw_root = json.dumps(trust_root).encode()
    early, second, late = cohort_ids(APP)
    repo_url = registry.url + "/repo"
    a = head_unit(tmp_path, "a", early, raw_root, repo_url, runs_db=hub_dir / "state" / "app-runs.db")
    b = head_unit(tmp_path, "b", second, raw_root, repo_url)
    c = head_unit(tmp_path, "c", late, raw_root, repo_url)
    units = [a, b, c]
    hub: HubProcess | None = None
    shell: Shell | None = None
    try:
        assert sync_all(units) == {"a": ("1.0.0", True), "b": ("1.0.0", True), "c": ("1.0.0", True)}
        hub = start_hub(hub_dir, a.cache.apps_dir, plugins="storage")
        shell = Shell(hub.endpoint)

        # 1.1.0 approved and gray-released to the first step, 5 %
        code, sub, _ = publish(registry, key, token, pack_version(tmp_path, APP, "1.1.0"))
        assert code == 0
        approve(registry, sub)
        state = admin(registry, "POST", f"/api/apps/{APP}/rollout", {"version": "1.1.0"})
        assert state["release"]["rollout"]["percent"] == 5.0
        assert sync_all(units) == {"a": ("1.1.0", True), "b": ("1.0.0", None), "c": ("1.0.0", None)}
        fetched = a.repo.releases()  # the releases.json head unit A verified through TUF
        assert fetched[APP]["rollout"]["percent"] == 5.0
        fleet = fleet_tracks(APP, fetched)
        assert set(fleet) == {"1.0.0", "1.1.0"} and 400 <= fleet["1.1.0"] <= 600, fleet

        # A's hub runs 1.1.0 (the launcher lists apps after an update, as the shell does)
        assert {x["id"]: x["version"] for x in shell.list_apps()}[APP] == "1.1.0"
        page_id, data = shell.launch(APP)
        assert data["version"] == "1.1.0"

        # good runs reported from the rollout's head unit: the registry widens to 25 %
        a.record(APP, "1.1.0", MIN_LAUNCHES - 1)  # plus the hub's own launch above
        assert a.report(registry.url) == MIN_LAUNCHES
        assert sync_all(units) == {"a": ("1.1.0", None), "b": ("1.1.0", True), "c": ("1.0.0", None)}
        fetched = b.repo.releases()
        assert fetched[APP]["rollout"]["percent"] == 25.0
        assert 2250 <= fleet_tracks(APP, fetched)["1.1.0"] <= 2750

        # crashes on the 1.1.0 head units: a real worker crash on A's hub, and B's runs
        pid = shell.run(shell.client.request("hub.stats", "hub", {})).payload["stats"]["workers"][APP]
        os.kill(pid, signal.SIGKILL)
        crashed = shell.run(shell.client.expect("app.error", timeout=15, app_id=APP))
        assert crashed.payload["kind"] == "crashed"
        b.record(APP, "1.1.0", MIN_LAUNCHES, crashes=3)
        assert a.report(registry.url) == 1 and b.report(registry.url) == MIN_LAUNCHES + 3
        app = admin(registry, "GET", f"/api/apps/{APP}")
        assert app["release"]["rollout"] is None and app["release"]["stable"]["version"] == "1.0.0"
        audit = admin(registry, "GET", f"/api/audit?app_id={APP}")["audit"]
        rolled = next(e for e in audit if e["action"] == "auto-rollback")
        assert rolled["actor"] == "auto" and rolled["detail"]["figures"]["crashes"] == 4

        # back to 1.0.0 from the cache: nothing downloaded
        downloads = {u.name: list(u.repo.fetched) for u in units}
        assert sync_all(units) == {"a": ("1.0.0", False), "b": ("1.0.0", False), "c": ("1.0.0", None)}
        assert {u.name: u.repo.fetched for u in units} == downloads
        assert [len(d) for d in downloads.values()] == [2, 2, 1]
        assert "rollout" not in a.repo.releases()[APP]

        # 1.2.0 released as stable while A's driver has 1.0.0 open: the running app is never swapped
        shell.list_apps()
        page_id, data = shell.launch(APP)
        assert data["version"] == "1.0.0"
        code, sub, _ = publish(registry, key, token, pack_version(tmp_path, APP, "1.2.0"))
        assert code == 0
        approve(registry, sub)
        admin(registry, "POST", f"/api/apps/{APP}/release", {"version": "1.2.0"})
        assert sync_all(units) == {"a": ("1.2.0", True), "b": ("1.2.0", True), "c": ("1.2.0", True)}
        assert shell.ask_version(APP, page_id) == "1.0.0"
        assert {x["id"]: x["version"] for x in shell.list_apps()}[APP] == "1.2.0"
        assert shell.ask_version(APP, page_id) == "1.0.0"
        shell.close_app(APP)
        page_id, data = shell.launch(APP)
        assert data["version"] == "1.2.0"

        # one-click rollback: stable := the previous *released* version; 1.1.0 never was, so 1.0.0
        done = cli("rollback", APP, *registry.admin_args())
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["release"]["stable"] == {"version": "1.0.0", "urgent": True}
        reports = {u.name: u.sync() for u in units}  # within one sync, from the cache
        for unit in units:
            report = reports[unit.name]
            assert [(x.app_id, x.version, x.previous, x.downloaded) for x in report.changed] == [
                (APP, "1.0.0", "1.2.0", False)
            ]
            assert report.urgent == [APP]
            assert unit.active(APP) == "1.0.0" and unit.launchable(APP) == "1.0.0"
        assert [len(u.repo.fetched) for u in units] == [3, 3, 2]
        assert a.repo.releases()[APP]["stable"] == {
            "version": "1.0.0",
            "target": releases.target_path(APP, "1.0.0"),
            "urgent": True,
        }
        # the urgent flag makes the shell restart the app; until then the old code keeps running
        assert shell.ask_version(APP, page_id) == "1.2.0"
        shell.close_app(APP)
        _, data = shell.launch(APP)  # no listing in between: a launch itself finds the moved link
        assert data["version"] == "1.0.0"
    finally:
        if shell is not None:
            shell.close()
        if hub is not None:
            hub.stop()
        for unit in units:
            unit.close()
