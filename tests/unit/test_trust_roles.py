"""Partner roles: keys on disk, signing a bundle into the role, verifying it."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from vehicle_host import releases
from vehicle_host.errors import BundleError
from vehicle_host.trust import keys, roles
from vehicle_host.trust.errors import TrustError


def make_bundle(path: Path, app_id: str, version: str, body: str = "App({})") -> Path:
    app_json = {
        "pages": ["pages/index/index"],
        "vehicle": {"id": app_id, "name": "Test", "version": version},
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.json", json.dumps(app_json))
        zf.writestr("app.js", body)
    return path


def test_generate_key_writes_private_0600_and_public_json(tmp_path: Path) -> None:
    keyid = keys.generate_key(tmp_path / "acme.pem")
    assert stat.S_IMODE(os.stat(tmp_path / "acme.pem").st_mode) == 0o600
    assert (tmp_path / "acme.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    public = json.loads((tmp_path / "acme.pub.json").read_text())
    assert public["keyid"] == keyid and public["keytype"] == "ed25519"
    assert keys.load_signer(tmp_path / "acme.pem").public_key.keyid == keyid
    assert keys.load_public_key(tmp_path / "acme.pub.json").keyid == keyid
    with pytest.raises(TrustError, match="already exists"):
        keys.generate_key(tmp_path / "acme.pem")


def test_mismatched_key_pair_is_refused(tmp_path: Path) -> None:
    keys.generate_key(tmp_path / "a.pem")
    keys.generate_key(tmp_path / "b.pem")
    os.replace(tmp_path / "b.pub.json", tmp_path / "a.pub.json")
    with pytest.raises(TrustError, match="does not match"):
        keys.load_signer(tmp_path / "a.pem")


def test_sign_then_verify_bundle(tmp_path: Path) -> None:
    keys.generate_key(tmp_path / "acme.pem")
    signer = keys.load_signer(tmp_path / "acme.pem")
    bundle = make_bundle(tmp_path / "nav.vhb", "com.acme.nav", "1.0.0")
    role_file = tmp_path / "acme.json"
    target = roles.sign_bundle(role_file, bundle, signer, "acme")
    assert target.path == releases.target_path("com.acme.nav", "1.0.0")
    assert target.length == bundle.stat().st_size
    checked = roles.verify_bundle(role_file, bundle, tmp_path / "acme.pub.json")
    assert checked.hashes == target.hashes
    assert roles.load_role(role_file).signed.version == 1

    second = make_bundle(tmp_path / "nav2.vhb", "com.acme.nav", "1.1.0")
    roles.sign_bundle(role_file, second, signer, "acme")
    role = roles.load_role(role_file).signed
    assert role.version == 2 and len(role.targets) == 2
    # signing the same bundle again is a no-op
    roles.sign_bundle(role_file, second, signer, "acme")
    assert roles.load_role(role_file).signed.version == 2


def test_resigning_a_version_with_other_content_is_refused(tmp_path: Path) -> None:
    keys.generate_key(tmp_path / "acme.pem")
    signer = keys.load_signer(tmp_path / "acme.pem")
    role_file = tmp_path / "acme.json"
    roles.sign_bundle(role_file, make_bundle(tmp_path / "a.vhb", "com.acme.nav", "1.0.0"), signer, "acme")
    other = make_bundle(tmp_path / "b.vhb", "com.acme.nav", "1.0.0", body="App({x:1})")
    with pytest.raises(TrustError, match=r"raise vehicle\.version"):
        roles.sign_bundle(role_file, other, signer, "acme")


def test_tampered_bundle_fails_verification(tmp_path: Path) -> None:
    keys.generate_key(tmp_path / "acme.pem")
    bundle = make_bundle(tmp_path / "nav.vhb", "com.acme.nav", "1.0.0")
    role_file = tmp_path / "acme.json"
    roles.sign_bundle(role_file, bundle, keys.load_signer(tmp_path / "acme.pem"), "acme")
    make_bundle(bundle, "com.acme.nav", "1.0.0", body="App({evil:1})")
    with pytest.raises(TrustError, match="does not match the signed"):
        roles.verify_bundle(role_file, bundle, tmp_path / "acme.pub.json")


def test_tampered_role_or_wrong_key_fails_verification(tmp_path: Path) -> None:
    keys.generate_key(tmp_path / "acme.pem")
    keys.generate_key(tmp_path / "other.pem")
    bundle = make_bundle(tmp_path / "nav.vhb", "com.acme.nav", "1.0.0")
    role_file = tmp_path / "acme.json"
    roles.sign_bundle(role_file, bundle, keys.load_signer(tmp_path / "acme.pem"), "acme")
    with pytest.raises(TrustError, match="not signed by key"):
        roles.verify_bundle(role_file, bundle, tmp_path / "other.pub.json")
    doc = json.loads(role_file.read_text())
    doc["signed"]["version"] = 7
    role_file.write_text(json.dumps(doc))
    with pytest.raises(TrustError, match="bad signature"):
        roles.verify_bundle(role_file, bundle, tmp_path / "acme.pub.json")


def test_unsigned_path_and_garbage_role_are_refused(tmp_path: Path) -> None:
    keys.generate_key(tmp_path / "acme.pem")
    role_file = tmp_path / "acme.json"
    signer = keys.load_signer(tmp_path / "acme.pem")
    roles.sign_bundle(role_file, make_bundle(tmp_path / "a.vhb", "com.acme.nav", "1.0.0"), signer, "acme")
    unsigned = make_bundle(tmp_path / "b.vhb", "com.acme.nav", "2.0.0")
    with pytest.raises(TrustError, match="does not list"):
        roles.verify_bundle(role_file, unsigned, tmp_path / "acme.pub.json")
    (tmp_path / "junk.json").write_bytes(b"{not json")
    with pytest.raises(TrustError, match="not TUF targets metadata"):
        roles.load_role(tmp_path / "junk.json")


def test_bad_partner_names_and_bad_bundles(tmp_path: Path) -> None:
    for name in ("targets", "Acme", "../x", ""):
        with pytest.raises(TrustError, match="partner id"):
            roles.new_role(name)
    (tmp_path / "not.vhb").write_bytes(b"plain text")
    with pytest.raises(BundleError):
        roles.bundle_target(tmp_path / "not.vhb")
