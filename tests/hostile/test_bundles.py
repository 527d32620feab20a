"""Hostile bundles, end to end: through ``vehicle-host bundle install|verify`` as processes, a real
``registry serve`` process driven by ``vehicle-host registry publish``, and a head unit's
``TrustedRepo`` + ``Syncer`` against a repository served on 127.0.0.1.

Every case asserts the refusal names what was refused, and that nothing was installed, extracted
or activated: the cache's objects, its activation links and the files around it are unchanged.
"""

from __future__ import annotations

import base64
import json
import stat
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pipeline_helpers import RegistryProcess, start_registry
from tests.integration.registry_helpers import make_bundle as review_bundle
from tests.integration.test_trust_attacks import NAV, HeadUnit, unit  # noqa: F401
from tests.integration.trust_fixtures import Registry, make_bundle, registry  # noqa: F401
from vehicle_host import releases
from vehicle_host.trust import keys, roles
from vehicle_host.trust.tufapi import DelegatedRole, Delegations, MetaFile, TargetFile

from .bundle_fixtures import (
    EXAMPLE_ID,
    ActiveCache,
    active_cache,
    entry,
    hostile_zip,
    mid_ratio_data,
    one_line_error,
    tree_state,
    vehicle_host,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def cache(tmp_path: Path) -> ActiveCache:
    return active_cache(tmp_path)


def refused_install(cache: ActiveCache, bundle: Path, *needles: str, args: tuple[str, ...] = ()) -> str:
    """``bundle install`` refuses ``bundle`` naming every needle; the cache and its neighbours are
    exactly as before (the previous version still active) and nothing appeared outside."""
    before = cache.state()
    around = sorted(p.name for p in cache.root.parent.iterdir())
    line = one_line_error(cache.install(bundle, *args))
    assert line.startswith("vehicle-host bundle install: "), line
    for needle in needles:
        assert needle in line, line
    assert cache.state() == before
    assert sorted(p.name for p in cache.root.parent.iterdir()) == around
    assert (cache.root / "apps" / EXAMPLE_ID).resolve().name == cache.digest
    return line


# -- path tricks through `vehicle-host bundle install` ---------------------------------------------


def test_control_a_hand_made_bundle_without_tricks_installs(cache: ActiveCache, tmp_path: Path) -> None:
    """The archives below differ from this one only by their trick, so each refusal is the trick's."""
    bundle = hostile_zip(tmp_path / "plain.vhb", [("pages/extra.js", b"1")])
    done = cache.install(bundle)
    assert done.returncode == 0, done.stderr
    assert (cache.root / "apps" / EXAMPLE_ID / "pages" / "extra.js").read_bytes() == b"1"


def test_dot_dot_entry_cannot_leave_the_cache(cache: ActiveCache, tmp_path: Path) -> None:
    bundle = hostile_zip(tmp_path / "slip.vhb", [("pages/../../../../slipped.js", b"owned")])
    refused_install(cache, bundle, "'pages/../../../../slipped.js'", "'..'")
    assert not list(tmp_path.rglob("slipped.js"))


def test_absolute_entry_is_refused(cache: ActiveCache, tmp_path: Path) -> None:
    target = tmp_path / "absolute-owned.js"
    bundle = hostile_zip(tmp_path / "abs.vhb", [(str(target), b"owned")])
    refused_install(cache, bundle, str(target), "absolute path")
    assert not target.exists()


def test_backslash_entry_is_refused(cache: ActiveCache, tmp_path: Path) -> None:
    bundle = hostile_zip(tmp_path / "bs.vhb", [("..\\..\\winslip.js", b"owned")])
    refused_install(cache, bundle, "winslip.js", "backslash")


def test_symlink_entry_is_refused(cache: ActiveCache, tmp_path: Path) -> None:
    link = entry("pages/passwd.js", stat.S_IFLNK | 0o777)
    bundle = hostile_zip(tmp_path / "link.vhb", [(link, b"/etc/passwd")])
    refused_install(cache, bundle, "'pages/passwd.js'", "symbolic link")


def test_entries_differing_only_by_case_are_refused(cache: ActiveCache, tmp_path: Path) -> None:
    # on a case-insensitive filesystem (a FAT stick, a dev laptop) the second would overwrite the first
    bundle = hostile_zip(tmp_path / "case.vhb", [("pages/Main.js", b"good"), ("pages/MAIN.JS", b"evil")])
    refused_install(cache, bundle, "'pages/MAIN.JS'", "duplicates 'pages/Main.js'")


def test_unicode_normalisation_twins_are_refused(cache: ActiveCache, tmp_path: Path) -> None:
    # "café.js" composed and decomposed: one file on macOS/ZFS normalising filesystems, two elsewhere
    nfc, nfd = unicodedata.normalize("NFC", "café.js"), unicodedata.normalize("NFD", "café.js")
    assert nfc != nfd
    bundle = hostile_zip(tmp_path / "nfc.vhb", [(f"pages/{nfc}", b"good"), (f"pages/{nfd}", b"evil")])
    refused_install(cache, bundle, repr(nfc), "must start with a letter")


def test_nul_in_an_entry_name_is_refused(cache: ActiveCache, tmp_path: Path) -> None:
    # zipfile cuts the name at the NUL ("evil.js"); unzip and the registry's reviewer may not
    bundle = hostile_zip(
        tmp_path / "nul.vhb", [("pages/evil.jsX../../x.js", b"owned")], rename={b"evil.jsX": b"evil.js\0"}
    )
    refused_install(cache, bundle, "NUL byte", "evil.js\\x00../../x.js")


# -- bombs -----------------------------------------------------------------------------------------


def test_compression_ratio_bomb_is_refused(cache: ActiveCache, tmp_path: Path) -> None:
    bundle = hostile_zip(tmp_path / "bomb.vhb", [("bomb.bin", bytes(16 * 1024 * 1024))])
    assert bundle.stat().st_size < 64 * 1024
    refused_install(cache, bundle, "'bomb.bin'", "zip bomb")


def test_total_unpacked_size_bomb_is_refused(cache: ActiveCache, tmp_path: Path) -> None:
    # every entry compresses only ~25:1 (no ratio alarm), together they unpack past 20 MiB
    parts: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        (f"d/f{i}.bin", mid_ratio_data(1 << 20, i)) for i in range(21)
    ]
    bundle = hostile_zip(tmp_path / "total.vhb", parts)
    assert bundle.stat().st_size < 2 * 1024 * 1024
    refused_install(cache, bundle, "more than 20 MiB", "per-app limit")


def test_too_many_files_are_refused(cache: ActiveCache, tmp_path: Path) -> None:
    bundle = hostile_zip(tmp_path / "many.vhb", [(f"f/{i}.js", b"") for i in range(1000)])
    refused_install(cache, bundle, "1001 entries", "limit is 1000 files")


def test_deep_nesting_is_refused(cache: ActiveCache, tmp_path: Path) -> None:
    deep = "/".join(f"d{i}" for i in range(40)) + "/x.js"
    bundle = hostile_zip(tmp_path / "deep.vhb", [(deep, b"")])
    refused_install(cache, bundle, "nested deeper than 16 folders")


# -- signed bundles: tampering through `vehicle-host bundle verify|install` ------------------------


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(bundle, role file, public key) of com.acme.nav 1.0.0 signed by partner acme."""
    key = tmp_path / "keys" / "acme.pem"
    keys.generate_key(key)
    bundle = make_bundle(tmp_path / "nav.vhb", NAV, "1.0.0")
    role = tmp_path / "acme.json"
    roles.sign_bundle(role, bundle, keys.load_signer(key), "acme")
    done = vehicle_host("bundle", "verify", bundle, "--role", role, "--pubkey", keys.public_key_path(key))
    assert done.returncode == 0, done.stderr
    return bundle, role, keys.public_key_path(key)


def test_a_flipped_byte_in_a_signed_bundle_fails_verify_and_install(
    signed: tuple[Path, Path, Path], cache: ActiveCache
) -> None:
    bundle, role, public = signed
    listed = roles.load_role(role).signed.targets[releases.target_path(NAV, "1.0.0")]
    data = bytearray(bundle.read_bytes())
    at = data.find(b"data.bin") + 200  # inside the stored (uncompressed) bulk: still a valid zip
    data[at] ^= 0x01
    bundle.write_bytes(bytes(data))
    line = one_line_error(vehicle_host("bundle", "verify", bundle, "--role", role, "--pubkey", public))
    assert "does not match the signed apps/com.acme.nav/1.0.0" in line
    expected = listed.hashes["sha256"]
    refused_install(cache, bundle, "differs from the expected", expected, args=("--sha256", expected))
    refused_install(cache, bundle, "'data.bin': is damaged")  # the zip's own CRC catches it unsigned


def test_an_altered_role_file_is_a_bad_signature(signed: tuple[Path, Path, Path]) -> None:
    bundle, role, public = signed
    doc = json.loads(role.read_text())
    for target in doc["signed"]["targets"].values():
        target["length"] += 4  # "wrong length" written into the role to cover an appended payload
    role.write_text(json.dumps(doc))
    with bundle.open("ab") as f:
        f.write(b"evil")
    line = one_line_error(vehicle_host("bundle", "verify", bundle, "--role", role, "--pubkey", public))
    assert "bad signature" in line and "the role file was altered" in line


# -- the head unit: TrustedRepo + Syncer against a repository on 127.0.0.1 ----------------------------


def test_a_swapped_target_is_a_hash_mismatch(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    registry.publish("acme", NAV, "1.1.0")  # validly signed, but not what 1.0.0's target says
    registry.blob(NAV, "1.0.0").write_bytes(registry.blob(NAV, "1.1.0").read_bytes())
    report = unit.syncer.sync_once()
    assert "hash mismatch" in report.errors[NAV] and "nothing was installed" in report.errors[NAV]
    assert unit.state() == [] and tree_state(unit.cache.root) == ["apps/", "downloads/", "objects/"]


def test_a_longer_download_than_signed_is_cut_off(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    blob = registry.blob(NAV, "1.0.0")
    with blob.open("ab") as f:
        f.write(b"\0" * 4096)  # a server streaming more than the signed length (endless download)
    report = unit.syncer.sync_once()
    assert "longer than its signed" in report.errors[NAV], report.errors
    assert unit.state() == [] and tree_state(unit.cache.root) == ["apps/", "downloads/", "objects/"]


def test_a_signed_target_holding_another_app_is_not_installed(
    unit: HeadUnit,  # noqa: F811
    registry: Registry,  # noqa: F811
) -> None:
    """A stolen partner key signs com.beta.pay's code under its own app's target path, and a
    compromised registry publishes it: the head unit neither activates nor keeps it."""
    unit.syncer.sync_once()
    before = tree_state(unit.cache.root)
    foreign = make_bundle(registry.base / "out" / "foreign.vhb", "com.beta.pay", "1.1.0")
    path = releases.target_path(NAV, "1.1.0")
    md = roles.load_role(registry.role_file("acme"))
    md.signed.targets[path] = TargetFile.from_file(path, str(foreign), ["sha256"])
    md.signed.version += 1
    md.sign(registry.partner_signers["acme"])
    registry.repo.publish_partner_role("acme", md.to_bytes())  # in acme's namespace: accepted
    registry.repo.add_bundle(path, foreign)
    registry.release(NAV, "1.1.0")
    report = unit.syncer.sync_once()
    assert "holds com.beta.pay 1.1.0, not com.acme.nav 1.1.0" in report.errors[NAV], report.errors
    active = unit.cache.active(NAV)
    assert active is not None and active.version == "1.0.0"
    assert unit.cache.versions("com.beta.pay") == []
    assert tree_state(unit.cache.root) == before  # not even extracted into objects/


def test_a_rolled_back_partner_role_is_refused(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    """With the registry's online snapshot and timestamp keys, an attacker re-lists acme's role at
    its old version (the one without 1.1.0): the head unit keeps what it trusts."""
    registry.publish("acme", NAV, "1.1.0")
    registry.release(NAV, "1.1.0")
    assert unit.syncer.sync_once().changed[0].version == "1.1.0"
    before = unit.state()
    repo = registry.repo
    repo.snapshot.signed.meta["acme.json"] = MetaFile(version=1)
    repo._commit_snapshot()  # signed with the real snapshot and timestamp keys
    with pytest.raises(Exception, match=r"rollback/replay refused.*acme\.json") as caught:
        unit.syncer.sync_once()
    assert type(caught.value).__name__ == "TrustError"
    assert unit.state() == before


# -- a real registry process: partners attacking each other ------------------------------------------


@pytest.fixture
def registry_process(tmp_path: Path) -> Iterator[RegistryProcess]:
    process = start_registry(tmp_path / "registry", min_launches=20, threshold=0.5)
    yield process
    process.stop()


def onboard(reg: RegistryProcess, tmp: Path, partner: str, namespace: str) -> tuple[Path, str]:
    key = tmp / "keys" / f"{partner}.pem"
    keys.generate_key(key)
    body = {
        "id": partner,
        "namespace": namespace,
        "public_key": keys.key_to_dict(keys.load_public_key(key)),
        "permissions": [],
        "domains": [],
    }
    status, doc = reg.client.request("POST", "/api/partners", body, reg.admin)
    assert status == 201, doc
    return key, str(doc["token"])


def repo_state(reg: RegistryProcess) -> list[str]:
    return tree_state(reg.data / "repo")


def approve_refused(reg: RegistryProcess, submission: int) -> str:
    done = vehicle_host("registry", "review", "approve", str(submission), *reg.admin_args())
    line = one_line_error(done)
    assert "checks_failed" in line
    return line


def test_a_partner_cannot_publish_into_another_partners_namespace(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    reg = registry_process
    acme_key, acme_token = onboard(reg, tmp_path, "acme", "com.acme")
    onboard(reg, tmp_path, "beta", "com.beta")
    before = repo_state(reg)
    rogue = review_bundle(tmp_path / "rogue", "com.beta.pay", "6.6.6")
    done = vehicle_host(
        "registry", "publish", rogue, "--partner", "acme", "--key", acme_key, "--url", reg.url,
        "--token", acme_token,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL namespace: app id com.beta.pay is outside partner acme's namespace" in done.stdout
    assert "FAIL signature: role of acme lists apps/com.beta.pay/6.6.6" in done.stdout
    assert "outside its namespace" in done.stdout
    approve_refused(reg, 1)
    assert repo_state(reg) == before  # nothing published, no new metadata signed


def test_a_partner_cannot_widen_its_own_delegation(registry_process: RegistryProcess, tmp_path: Path) -> None:
    reg = registry_process
    acme_key, acme_token = onboard(reg, tmp_path, "acme", "com.acme")
    onboard(reg, tmp_path, "beta", "com.beta")
    before = repo_state(reg)
    bundle = review_bundle(tmp_path / "app", "com.acme.nav", "1.0.0")
    role_file = tmp_path / "acme.json"
    signer = keys.load_signer(acme_key)
    roles.sign_bundle(role_file, bundle, signer, "acme")
    md = roles.load_role(role_file)
    # acme re-delegates every app path (com.beta.* included) to its own key
    acme_public = keys.load_public_key(acme_key)
    wide = DelegatedRole(
        name="acme-all", keyids=[acme_public.keyid], threshold=1, terminating=False, paths=["*"]
    )
    md.signed.delegations = Delegations(keys={acme_public.keyid: acme_public}, roles={"acme-all": wide})
    md.sign(signer)
    body = {"bundle": base64.b64encode(bundle.read_bytes()).decode(), "role": md.to_bytes().decode()}
    status, sub = reg.client.request("POST", "/api/submissions", body, acme_token)
    assert status == 201, sub
    failed = {c["name"]: c["message"] for c in sub["checks"] if not c["ok"]}
    assert list(failed) == ["signature"], sub["checks"]
    assert "delegates further; partner roles may not delegate" in failed["signature"]
    approve_refused(reg, int(sub["id"]))
    assert repo_state(reg) == before
