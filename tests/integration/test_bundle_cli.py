"""`python -m vehicle_host.bundles.cli`: new, pack, inspect, sign, verify and install, as users run them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vehicle_host.bundles import catalog

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "vehicle-info"
APP = "org.vehiclehost.samples.vehicleinfo"


def cli(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "vehicle_host.bundles.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


def field(output: str, name: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith(name + " ")]
    return line.split()[1]


def test_pack_inspect_install(tmp_path: Path) -> None:
    packed = cli("pack", EXAMPLE, cwd=tmp_path)
    assert packed.returncode == 0, packed.stderr
    bundle = tmp_path / f"{APP}-1.0.0.vhb"
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert field(packed.stdout, "sha256") == digest
    assert int(field(packed.stdout, "size")) == bundle.stat().st_size
    assert int(field(packed.stdout, "files")) == 7

    again = cli("pack", EXAMPLE, "-o", tmp_path / "again.vhb")
    assert field(again.stdout, "sha256") == digest  # deterministic

    shown = cli("inspect", bundle, "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["manifest"]["id"] == APP and doc["manifest"]["version"] == "1.0.0"
    assert doc["sha256"] == digest and doc["size"] == bundle.stat().st_size
    assert "pages/index/index.wxml" in doc["files"]
    text = cli("inspect", bundle)
    assert text.returncode == 0 and APP in text.stdout and digest in text.stdout

    cache = tmp_path / "cache"
    installed = cli("install", bundle, "--cache", cache, "--sha256", digest)
    assert installed.returncode == 0, installed.stderr
    apps, broken = catalog.scan(cache / "apps")
    assert broken == [] and [a.manifest.app_id for a in apps] == [APP]
    assert apps[0].path == cache / "objects" / digest
    assert cli("install", bundle, "--cache", cache).returncode == 0  # idempotent


def test_new_then_pack(tmp_path: Path) -> None:
    created = cli("new", "trip-log", "--dir", tmp_path / "trip-log", "--id", "com.acme.triplog")
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "trip-log" / "app.json").is_file()
    packed = cli("pack", tmp_path / "trip-log", "-o", tmp_path / "trip.vhb")
    assert packed.returncode == 0, packed.stderr
    doc = json.loads(cli("inspect", tmp_path / "trip.vhb", "--json").stdout)
    assert doc["manifest"]["id"] == "com.acme.triplog"


def test_sign_and_verify(tmp_path: Path) -> None:
    from vehicle_host.trust import keys

    bundle = tmp_path / "app.vhb"
    assert cli("pack", EXAMPLE, "-o", bundle).returncode == 0
    key = tmp_path / "keys" / "acme.pem"
    made = cli("keygen", key)
    assert made.returncode == 0, made.stderr
    assert (key.stat().st_mode & 0o777) == 0o600 and keys.load_public_key(tmp_path / "keys" / "acme.pub.json")
    assert cli("keygen", key).returncode == 1  # never overwrites a key
    role = tmp_path / "acme.json"
    signed = cli("sign", bundle, "--key", key, "--role", role, "--partner", "acme")
    assert signed.returncode == 0, signed.stderr
    assert role.is_file()
    public = tmp_path / "keys" / "acme.pub.json"
    verified = cli("verify", bundle, "--role", role, "--pubkey", public)
    assert verified.returncode == 0, verified.stderr

    with bundle.open("ab") as f:
        f.write(b"tampered")
    refused = cli("verify", bundle, "--role", role, "--pubkey", public)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1 and "does not match" in refused.stderr


def test_errors_are_one_line_with_exit_codes(tmp_path: Path) -> None:
    missing = cli("inspect", tmp_path / "nope.vhb")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [missing.stderr.strip()]
    assert "cannot read the bundle" in missing.stderr

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "app.json").write_text((EXAMPLE / "app.json").read_text())
    for name in ("app.js", "app.wxss"):
        (broken / name).write_text((EXAMPLE / name).read_text())
    page = broken / "pages" / "index"
    page.mkdir(parents=True)
    (page / "index.js").write_text("Page({})")
    (page / "index.wxml").write_text("<view>\n  <text>\n</view>\n")
    failed = cli("pack", broken, "-o", tmp_path / "b.vhb")
    assert failed.returncode == 1
    assert (
        "pages/index/index.wxml:3:1: </view> does not match" in failed.stderr
        and len(failed.stderr.strip().splitlines()) == 1
    )
    assert not (tmp_path / "b.vhb").exists()

    assert cli("pack", tmp_path).returncode == 2  # no app.json: wrong folder given
    assert cli("frobnicate").returncode == 2
    assert cli("sign", tmp_path / "x.vhb").returncode == 2  # --key, --role, --partner missing


def test_rollback_switches_back_without_the_bundle(tmp_path: Path) -> None:
    app = tmp_path / "app"
    created = cli("new", "trip-log", "--dir", app, "--id", "com.acme.triplog")
    assert created.returncode == 0, created.stderr
    cache = tmp_path / "cache"
    for version in ("1.0.0", "1.1.0"):
        doc = json.loads((app / "app.json").read_text())
        doc["vehicle"]["version"] = version
        (app / "app.json").write_text(json.dumps(doc))
        out = tmp_path / f"{version}.vhb"
        assert cli("pack", app, "-o", out).returncode == 0
        assert cli("install", out, "--cache", cache).returncode == 0
        out.unlink()
    back = cli("rollback", "com.acme.triplog", "--cache", cache)
    assert back.returncode == 0, back.stderr
    assert "1.0.0 active (was 1.1.0)" in back.stdout
    (installed,), _ = catalog.scan(cache / "apps")
    assert installed.manifest.version == "1.0.0"
    forward = cli("rollback", "com.acme.triplog", "--cache", cache, "--to", "1.1.0")
    assert forward.returncode == 0, forward.stderr
    missing = cli("rollback", "com.acme.triplog", "--cache", cache, "--to", "9.9.9")
    assert missing.returncode == 1 and "9.9.9" in missing.stderr
