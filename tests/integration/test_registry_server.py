"""The registry over real HTTP on 127.0.0.1: onboarding, publishing, review, rollout, health, auth."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vehicle_host import releases
from vehicle_host.registry import cli
from vehicle_host.registry.rollout import RolloutPolicy

from .registry_helpers import Client, Partner, Setup, make_bundle, start, stop

pytestmark = pytest.mark.integration
APP = "com.acme.nav"


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Setup]:
    setup = start(tmp_path, RolloutPolicy(threshold=0.02, min_launches=20))
    yield setup
    stop(setup)


@pytest.fixture
def acme(reg: Setup, tmp_path: Path) -> Partner:
    return reg.add_partner(tmp_path, "acme", "com.acme", ["vehicle.signals", "storage"], ["*.acme.example"])


def publish_ok(reg: Setup, partner: Partner, tmp: Path, app_id: str, version: str) -> int:
    bundle = make_bundle(
        tmp, app_id, version, permissions=("vehicle.signals",), network=("api.acme.example",)
    )
    status, sub = reg.publish(partner, bundle)
    assert status == 201, sub
    assert sub["checks_passed"], sub["checks"]
    status, sub = reg.client.request("POST", f"/api/submissions/{sub['id']}/approve", {}, reg.admin)
    assert status == 200 and sub["status"] == "approved", sub
    return int(sub["id"])


def op(reg: Setup, app_id: str, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    status, doc = reg.client.request("POST", f"/api/apps/{app_id}/{name}", body or {}, reg.admin)
    assert status == 200, doc
    return dict(doc)


def health(reg: Setup, vehicle: str, version: str, launches: int, crashes: int = 0, errors: int = 0) -> Any:
    body = {
        "vehicle_id": vehicle,
        "reports": [
            {"app_id": APP, "version": version, "launches": launches, "crashes": crashes, "errors": errors}
        ],
    }
    status, doc = reg.client.request("POST", "/api/health", body)
    assert status == 200, doc
    return doc


def published_releases(reg: Setup) -> dict[str, Any]:
    """releases.json as a head unit finds it: timestamp -> snapshot -> targets -> hashed target file."""
    c = reg.client
    _, ts = c.request("GET", "/repo/metadata/timestamp.json")
    snap_v = ts["signed"]["meta"]["snapshot.json"]["version"]
    _, snap = c.request("GET", f"/repo/metadata/{snap_v}.snapshot.json")
    targets_v = snap["signed"]["meta"]["targets.json"]["version"]
    _, targets = c.request("GET", f"/repo/metadata/{targets_v}.targets.json")
    info = targets["signed"]["targets"]["releases.json"]
    status, raw = c.request("GET", f"/repo/targets/{info['hashes']['sha256']}.releases.json")
    assert status == 200
    data = raw if isinstance(raw, bytes) else json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(data).hexdigest() == info["hashes"]["sha256"]
    return dict(json.loads(data))


def audit_actions(reg: Setup, app_id: str = APP) -> list[tuple[str, str]]:
    _, doc = reg.client.request("GET", f"/api/audit?app_id={app_id}", token=reg.admin)
    return [(e["actor"], e["action"]) for e in reversed(doc["audit"])]


def test_publish_review_release_widen_and_roll_back(reg: Setup, acme: Partner, tmp_path: Path) -> None:
    publish_ok(reg, acme, tmp_path, APP, "1.0.0")
    op(reg, APP, "release", {"version": "1.0.0"})
    assert published_releases(reg)["apps"][APP]["stable"]["version"] == "1.0.0"

    publish_ok(reg, acme, tmp_path, APP, "1.1.0")  # built on the published role (version 2)
    state = op(reg, APP, "rollout", {"version": "1.1.0"})
    assert state["release"]["rollout"]["percent"] == 5.0
    rollout = published_releases(reg)["apps"][APP]["rollout"]
    assert rollout["version"] == "1.1.0" and rollout["percent"] == 5.0
    assert rollout["target"] == releases.target_path(APP, "1.1.0")

    # healthy step: enough launches under the threshold -> widened to 25 %
    assert health(reg, "car-1", "1.1.0", 10)["decisions"] == {APP: "hold"}
    assert health(reg, "car-2", "1.1.0", 10)["decisions"] == {APP: "widen"}
    assert published_releases(reg)["apps"][APP]["rollout"]["percent"] == 25.0
    # the new step counts only its own launches; crashes above 2 % roll the rollout back
    assert health(reg, "car-3", "1.1.0", 19, crashes=1)["decisions"] == {APP: "hold"}
    assert health(reg, "car-3", "1.1.0", 1)["decisions"] == {APP: "rollback"}
    entry = published_releases(reg)["apps"][APP]
    assert "rollout" not in entry and entry["stable"]["version"] == "1.0.0"
    assert ("auto", "widen") in audit_actions(reg) and ("auto", "auto-rollback") in audit_actions(reg)
    _, audit = reg.client.request("GET", f"/api/audit?app_id={APP}", token=reg.admin)
    rollback_entry = next(e for e in audit["audit"] if e["action"] == "auto-rollback")
    assert rollback_entry["detail"]["figures"]["crashes"] == 1

    # manual widen up to 100 % promotes; one-click rollback returns to the previous released version
    publish_ok(reg, acme, tmp_path, APP, "1.2.0")
    op(reg, APP, "rollout", {"version": "1.2.0", "percent": 50})
    state = op(reg, APP, "widen")
    assert state["release"]["stable"]["version"] == "1.2.0" and state["release"]["rollout"] is None
    state = op(reg, APP, "rollback")
    assert state["release"]["stable"]["version"] == "1.0.0"  # 1.1.0 never became stable
    assert published_releases(reg)["apps"][APP]["stable"] == {
        "version": "1.0.0",
        "target": releases.target_path(APP, "1.0.0"),
        "urgent": True,
    }
    status, doc = reg.client.request("POST", f"/api/apps/{APP}/rollback", {}, reg.admin)
    assert status == 409 and doc["error"]["code"] == "no_previous"
    actions = [a for _, a in audit_actions(reg)]
    assert actions[:3] == ["submit", "approve", "release"] and actions[-2:] == ["promote", "rollback"]


def test_review_refuses_bad_bundles_with_reasons(reg: Setup, acme: Partner, tmp_path: Path) -> None:
    globex = reg.add_partner(tmp_path, "globex", "com.globex", [], [])
    cases = {
        "templates": make_bundle(tmp_path, "com.acme.broken", "1.0.0", wxml="<view>{{message</view>\n"),
        "permissions": make_bundle(
            tmp_path, "com.acme.greedy", "1.0.0", permissions=("vehicle.diagnostics.clear",)
        ),
        "domains": make_bundle(tmp_path, "com.acme.chatty", "1.0.0", network=("tracker.example",)),
        "namespace": make_bundle(tmp_path, "com.globex.fake", "1.0.0"),
    }
    for failing, bundle in cases.items():
        status, sub = reg.publish(acme, bundle)
        assert status == 201, sub
        failed = {c["name"]: c["message"] for c in sub["checks"] if not c["ok"]}
        assert failing in failed, sub["checks"]
        assert not sub["checks_passed"]
        status, doc = reg.client.request("POST", f"/api/submissions/{sub['id']}/approve", {}, reg.admin)
        assert status == 409 and doc["error"]["code"] == "checks_failed", doc
        reason = f"{failing}: {failed[failing]}"
        status, doc = reg.client.request(
            "POST", f"/api/submissions/{sub['id']}/reject", {"reason": reason}, reg.admin
        )
        assert status == 200 and doc["status"] == "rejected" and doc["reason"] == reason[:500]
    _, failed = reg.client.request("GET", "/api/submissions?status=rejected", token=reg.admin)
    messages = {s["app_id"]: s["reason"] for s in failed["submissions"]}
    assert "index.wxml" in messages["com.acme.broken"]
    assert "vehicle.diagnostics.clear" in messages["com.acme.greedy"]
    assert "tracker.example" in messages["com.acme.chatty"]
    assert "outside" in messages["com.globex.fake"]
    # a role signed with another partner's key fails the signature check
    status, sub = reg.publish(acme, make_bundle(tmp_path, "com.acme.forged", "1.0.0"), sign_as=globex)
    assert {c["name"] for c in sub["checks"] if not c["ok"]} == {"signature"}
    # a reject needs a reason, and a decided submission stays decided
    status, doc = reg.client.request(
        "POST", f"/api/submissions/{sub['id']}/reject", {"reason": " "}, reg.admin
    )
    assert status == 400 and doc["error"]["code"] == "bad_reason"
    assert [a for _, a in audit_actions(reg, "com.acme.greedy")] == ["submit", "reject"]


def test_authentication_and_limits(reg: Setup, acme: Partner, tmp_path: Path) -> None:
    c = reg.client
    other = reg.add_partner(tmp_path, "other", "org.other", [], [])
    assert c.request("GET", "/api/apps")[0] == 401
    assert c.request("GET", "/api/apps", token="wrong")[0] == 401
    assert c.request("GET", "/api/apps", token=acme.token)[0] == 401  # partners cannot manage releases
    assert c.request("GET", "/api/audit", token=acme.token[:-1] + "x")[0] == 401
    assert c.request("POST", "/api/submissions/1/approve", {}, acme.token)[0] == 401
    assert c.request("POST", "/api/submissions", {"bundle": "", "role": ""})[0] == 401
    assert c.request("POST", "/api/submissions", {"bundle": "", "role": ""}, reg.admin)[0] == 403
    assert c.request("GET", "/api/partners/acme/role", token=other.token)[0] == 403
    status, doc = c.request("POST", "/api/partners", {"id": "x"}, acme.token)
    assert status == 401 and "admin token" in doc["error"]["message"]
    status, doc = c.request("POST", "/api/health", b"x" * 70_000, headers={"Content-Length": "70000"})
    assert status == 413 and doc["error"]["code"] == "too_large"
    status, doc = c.request("POST", "/api/health", b"{nope")
    assert status == 400 and doc["error"]["code"] == "bad_json"
    status, doc = c.request("POST", "/api/health", {"vehicle_id": "car 1", "reports": []})
    assert status == 400 and doc["error"]["code"] == "bad_vehicle_id"
    status, doc = c.request("POST", "/api/health", {"vehicle_id": "car-1", "reports": [{"app_id": APP}]})
    assert status == 400 and doc["error"]["code"] == "bad_reports"
    status, doc = c.request("POST", "/api/submissions", {"bundle": "!!", "role": "{}"}, acme.token)
    assert status == 400 and doc["error"]["code"] == "bad_bundle"
    status, doc = c.request(
        "POST", "/api/submissions", {"bundle": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==", "role": "{}"}, acme.token
    )
    assert status == 400 and "app.json" in doc["error"]["message"]
    assert c.request("GET", "/api/nothing", token=reg.admin)[0] == 404
    # partner ids, namespaces and keys are checked on onboarding
    status, doc = c.request(
        "POST", "/api/partners", {"id": "targets", "namespace": "com.t", "public_key": {}}, reg.admin
    )
    assert status == 400
    pub = json.loads(acme.key.with_suffix(".pub.json").read_text())
    status, doc = c.request(
        "POST", "/api/partners", {"id": "acme2", "namespace": "com.acme.sub", "public_key": pub}, reg.admin
    )
    assert status == 409 and doc["error"]["code"] == "namespace_taken"


def test_repository_files_support_ranges(reg: Setup, acme: Partner, tmp_path: Path) -> None:
    publish_ok(reg, acme, tmp_path, APP, "1.0.0")
    bundle = (tmp_path / f"{APP}-1.0.0.vhb").read_bytes()
    digest = hashlib.sha256(bundle).hexdigest()
    path = f"/repo/targets/apps/{APP}/1.0.0/{digest}.{APP}-1.0.0.vhb"
    status, whole = reg.client.request("GET", path)
    assert status == 200 and whole == bundle
    status, part = reg.client.request("GET", path, headers={"Range": "bytes=100-"})
    assert status == 206 and part == bundle[100:]
    status, part = reg.client.request("GET", path, headers={"Range": "bytes=-10"})
    assert status == 206 and part == bundle[-10:]
    status, _ = reg.client.request("GET", path, headers={"Range": f"bytes={len(bundle)}-"})
    assert status == 416
    for bad in ("/repo/../registry.sqlite3", "/repo/%2e%2e/admin.token", "/repo/metadata/.hidden", "/repo/"):
        assert reg.client.request("GET", bad)[0] == 404, bad
    status, root = reg.client.request("GET", "/api/trust-root")
    assert status == 200 and root["signed"]["_type"] == "root"


def test_cli_publish_review_and_release(
    reg: Setup, acme: Partner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = make_bundle(tmp_path, APP, "2.0.0")
    url = ["--url", reg.server.url]
    admin = [*url, "--token-file", str(reg.data / "admin.token")]
    assert (
        cli.main(
            ["publish", str(bundle), "--partner", "acme", "--key", str(acme.key), *url, "--token", acme.token]
        )
        == 0
    )
    assert "submitted apps/com.acme.nav/2.0.0/com.acme.nav-2.0.0.vhb" in capsys.readouterr().out
    assert cli.main(["review", "list", *admin]) == 0
    pending = json.loads(capsys.readouterr().out)["submissions"]
    assert [s["version"] for s in pending] == ["2.0.0"]
    assert cli.main(["review", "approve", str(pending[0]["id"]), *admin]) == 0
    capsys.readouterr()
    assert cli.main(["release", APP, "2.0.0", *admin]) == 0
    assert json.loads(capsys.readouterr().out)["release"]["stable"]["version"] == "2.0.0"
    assert cli.main(["widen", APP, *admin]) == 1
    assert "no rollout" in capsys.readouterr().err
    assert cli.main(["audit", "--app", APP, *admin]) == 0
    assert json.loads(capsys.readouterr().out)["audit"][0]["action"] == "release"


def test_cli_init_and_serve_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = [sys.executable, "-m", "vehicle_host.registry"]
    done = subprocess.run([*run, "init", "--data", str(data)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (data / "admin.token").stat().st_mode & 0o777 == 0o600
    again = subprocess.run([*run, "init", "--data", str(data)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already holds a registry" in again.stderr
    proc = subprocess.Popen(
        [*run, "serve", "--data", str(data), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = Client(url)
        status, page = client.request("GET", "/console/")
        assert status == 200 and b"App registry" in page
        assert client.request("GET", "/")[0] == 302
        status, root = client.request("GET", "/api/trust-root")
        assert status == 200 and root["signed"]["_type"] == "root"
        token = (data / "admin.token").read_text().strip()
        assert client.request("GET", "/api/apps", token=token) == (200, {"apps": []})
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
