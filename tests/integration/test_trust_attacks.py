"""Attacks on the update channel, against a real repository served on 127.0.0.1 and a real
TrustedRepo + BundleCache: each must fail with a clear error and install nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api.exceptions import DownloadError

from vehicle_host import releases
from vehicle_host.bundle_cache import BundleCache
from vehicle_host.trust import keys, roles
from vehicle_host.trust.client import LocalFetcher, TrustedRepo
from vehicle_host.trust.errors import FetchError, TrustError
from vehicle_host.trust.repository import RegistryRepository
from vehicle_host.trust.tufapi import Metadata, MetaFile, Timestamp
from vehicle_host.updates.sync import Syncer

from .trust_fixtures import Registry, make_bundle, registry  # noqa: F401

NAV = "com.acme.nav"


class HeadUnit:
    def __init__(self, base: Path, trust_root: bytes, source: str | Path) -> None:
        self.base = base
        self.repo = TrustedRepo(base / "tuf", trust_root, source)
        self.cache = BundleCache(base / "cache")
        self.syncer = Syncer(self.repo, self.cache, "VIN-0001")

    def state(self) -> list[tuple[str, str, str]]:
        """Everything installed: (app, version, digest) of every object, and the active links."""
        objects = [
            (i.app_id, i.version, i.digest)
            for app in ("com.acme.nav", "com.beta.pay")
            for i in self.cache.versions(app)
        ]
        active = [(i.app_id, i.version, "active") for i in self.cache.installed_apps()]
        return sorted(objects + active)


@pytest.fixture
def unit(tmp_path: Path, registry: Registry) -> Iterator[HeadUnit]:  # noqa: F811
    registry.add_partner("acme", "com.acme")
    registry.publish("acme", NAV, "1.0.0")
    registry.release(NAV, "1.0.0")
    head = HeadUnit(tmp_path / "head", registry.repo.trust_root(), registry.url)
    yield head
    head.cache.close()


def test_happy_path_over_http_and_from_a_usb_copy(unit: HeadUnit, registry: Registry, tmp_path: Path) -> None:  # noqa: F811
    seen: list[tuple[str, int, int]] = []
    report = unit.syncer.sync_once(lambda app, done, total: seen.append((app, done, total)))
    assert report.errors == {}
    assert [(c.app_id, c.version, c.downloaded) for c in report.changed] == [(NAV, "1.0.0", True)]
    active = unit.cache.active(NAV)
    assert active is not None and active.version == "1.0.0"
    assert (unit.cache.apps_dir / NAV / "app.json").is_file()
    assert seen[-1][1] == seen[-1][2] == registry.blob(NAV, "1.0.0").stat().st_size
    assert unit.syncer.sync_once().unchanged == [NAV]

    usb = registry.copy_to(tmp_path / "usb")
    other = HeadUnit(tmp_path / "usb-head", registry.repo.trust_root(), usb)
    report = other.syncer.sync_once()
    assert [(c.app_id, c.version) for c in report.changed] == [(NAV, "1.0.0")]
    other.cache.close()


def test_tampered_bundle_is_a_hash_mismatch(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    blob = registry.blob(NAV, "1.0.0")
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, one byte changed
    blob.write_bytes(bytes(data))
    report = unit.syncer.sync_once()
    assert "hash mismatch" in report.errors[NAV] and "nothing was installed" in report.errors[NAV]
    assert report.changed == []
    assert unit.state() == []
    assert list(unit.syncer.download_dir.glob("*")) == []
    with pytest.raises(TrustError, match="hash mismatch"):
        unit.repo.fetch_bundle(releases.target_path(NAV, "1.0.0"), unit.base / "dl")


def test_tampered_metadata_is_a_bad_signature(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    meta = registry.base / "repo" / "metadata"
    version = registry.repo.targets.signed.version
    doc = json.loads((meta / f"{version}.targets.json").read_text())
    doc["signed"]["targets"]["releases.json"]["length"] += 1
    (meta / f"{version}.targets.json").write_text(json.dumps(doc))
    with pytest.raises(TrustError, match="bad signature"):
        unit.syncer.sync_once()
    assert unit.state() == []


def test_expired_timestamp_is_refused(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    registry.repo.clock = lambda: datetime.now(UTC) - timedelta(days=2)
    registry.repo.refresh_timestamp()  # signed with an expiry one day in the past
    with pytest.raises(TrustError, match=r"expired metadata.*timestamp"):
        unit.syncer.sync_once()
    assert unit.state() == []


def test_expired_targets_are_refused(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    registry.repo.clock = lambda: datetime.now(UTC) - timedelta(days=91)
    registry.release(NAV, "1.0.0", urgent=True)  # new targets version, already expired today
    registry.repo.clock = lambda: datetime.now(UTC)
    registry.repo._commit_snapshot()  # fresh snapshot and timestamp over the stale targets
    with pytest.raises(TrustError, match=r"expired metadata.*targets"):
        unit.syncer.sync_once()
    assert unit.state() == []


def test_replayed_timestamp_is_a_rollback(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    old_timestamp = (registry.base / "repo" / "metadata" / "timestamp.json").read_bytes()
    unit.syncer.sync_once()
    registry.publish("acme", NAV, "1.1.0")
    registry.release(NAV, "1.1.0")
    assert unit.syncer.sync_once().changed[0].version == "1.1.0"
    before = unit.state()
    # the attacker serves the older, still validly signed and unexpired timestamp
    (registry.base / "repo" / "metadata" / "timestamp.json").write_bytes(old_timestamp)
    with pytest.raises(TrustError, match="rollback/replay"):
        unit.syncer.sync_once()
    assert unit.state() == before


def test_timestamp_pointing_at_an_older_snapshot_is_a_rollback(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    unit.syncer.sync_once()
    before = unit.state()
    meta = registry.base / "repo" / "metadata"
    # even with the timestamp key, an older snapshot cannot be slipped in
    md = Metadata[Timestamp].from_file(str(meta / "timestamp.json"))
    md.signed.version += 1
    md.signed.snapshot_meta = MetaFile(version=1)
    md.sign(keys.load_signer(registry.base / "keys" / "timestamp.pem"))
    (meta / "timestamp.json").write_bytes(md.to_bytes())
    with pytest.raises(TrustError, match="rollback/replay"):
        unit.syncer.sync_once()
    assert unit.state() == before


def test_partner_cannot_publish_another_partners_app(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    registry.add_partner("beta", "com.beta")
    registry.publish("beta", "com.beta.other", "1.0.0")
    rogue = make_bundle(registry.base / "out" / "rogue.vhb", "com.beta.pay", "6.6.6")
    role_file = registry.role_file("acme")
    roles.sign_bundle(role_file, rogue, registry.partner_signers["acme"], "acme")
    with pytest.raises(TrustError, match="outside its namespace"):
        registry.repo.check_partner_role("acme", role_file.read_bytes())
    with pytest.raises(TrustError, match="outside its namespace"):
        registry.repo.publish_partner_role("acme", role_file.read_bytes())

    # forced into the repository anyway (a compromised registry server): head units ignore it
    repo = registry.repo
    md = roles.load_role(role_file)
    repo._write_versioned("acme", md, raw=role_file.read_bytes())
    repo.partners["acme"] = md
    repo.snapshot.signed.meta["acme.json"] = MetaFile(version=md.signed.version)
    repo.add_bundle(releases.target_path("com.beta.pay", "6.6.6"), rogue)
    registry.release("com.beta.pay", "6.6.6")
    report = unit.syncer.sync_once()
    assert "not listed by the role delegated for it" in report.errors["com.beta.pay"]
    assert [c.app_id for c in report.changed] == [NAV]  # the other app still updates
    assert unit.cache.active("com.beta.pay") is None and unit.cache.versions("com.beta.pay") == []


def test_usb_snapshot_signed_by_an_unknown_root(unit: HeadUnit, tmp_path: Path) -> None:
    stranger = Registry(
        tmp_path / "stranger",
        RegistryRepository.init(tmp_path / "stranger" / "repo", tmp_path / "stranger" / "keys"),
        server=None,
    )
    stranger.add_partner("acme", "com.acme")
    stranger.publish("acme", NAV, "9.9.9")
    stranger.release(NAV, "9.9.9")
    usb = TrustedRepo(unit.base / "usb-tuf", unit.repo._bootstrap, tmp_path / "stranger" / "repo")
    syncer = Syncer(usb, unit.cache, "VIN-0001")
    with pytest.raises(TrustError, match="bad signature"):
        syncer.sync_once()
    assert unit.state() == []


def test_local_fetcher_never_leaves_its_directory(tmp_path: Path) -> None:
    root = tmp_path / "usb"
    (root / "metadata").mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    (root / "metadata" / "link.json").symlink_to(tmp_path / "secret")
    fetcher = LocalFetcher(root)
    for url in (
        "local:/metadata/../../secret",
        "local:/metadata/%2e%2e/%2e%2e/secret",
        "local:/etc/passwd",
        "local:/metadata/link.json",
        "file:///etc/passwd",
    ):
        with pytest.raises(DownloadError, match=r"refusing|outside|not inside"):
            b"".join(fetcher.fetch(url))


def test_cut_download_resumes_with_a_range_request(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    blob = registry.blob(NAV, "1.0.0")
    assert registry.server is not None
    registry.server.cut = blob.name
    report = unit.syncer.sync_once()
    assert "cut off" in report.errors[NAV] and "sync again to resume" in report.errors[NAV]
    assert unit.state() == []
    (part,) = unit.syncer.download_dir.glob("*.part")
    have = part.stat().st_size
    assert 0 < have < blob.stat().st_size

    report = unit.syncer.sync_once()
    assert report.errors == {} and report.changed[0].version == "1.0.0"
    ranges = [r for path, r in registry.server.requests if path.endswith(blob.name)]
    assert ranges == [None, f"bytes={have}-"]
    assert list(unit.syncer.download_dir.glob("*")) == []


def test_repository_unreachable_is_a_fetch_error(tmp_path: Path, registry: Registry) -> None:  # noqa: F811
    head = HeadUnit(tmp_path / "h", registry.repo.trust_root(), "http://127.0.0.1:9/repo")
    with pytest.raises(FetchError, match="cannot reach"):
        head.syncer.sync_once()
    head.cache.close()


def test_registry_refuses_stale_unsigned_and_shrunk_roles(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    published = registry.repo.published_role("acme")
    assert published is not None
    with pytest.raises(TrustError, match="stale: rebuild from the published role"):
        registry.repo.check_partner_role("acme", published)  # same version again

    md = roles.load_role(registry.role_file("acme"))
    md.signed.version += 1
    md.signed.targets.clear()
    md.sign(registry.partner_signers["acme"])
    with pytest.raises(TrustError, match="drops or changes published"):
        registry.repo.check_partner_role("acme", md.to_bytes())

    keys.generate_key(registry.base / "mallory.pem")
    md.sign(keys.load_signer(registry.base / "mallory.pem"))
    with pytest.raises(TrustError, match="not signed by the partner's registered key"):
        registry.repo.check_partner_role("acme", md.to_bytes())
    with pytest.raises(TrustError, match="not registered"):
        registry.repo.check_partner_role("nobody", md.to_bytes())
    with pytest.raises(TrustError, match="not TUF targets metadata"):
        registry.repo.check_partner_role("acme", b"\xff" * 100)

    bundle = make_bundle(registry.base / "out" / "nav2.vhb", NAV, "1.2.0")
    roles.sign_bundle(registry.role_file("acme"), bundle, registry.partner_signers["acme"], "acme")
    listed = registry.repo.check_partner_role("acme", registry.role_file("acme").read_bytes())
    assert [t["path"] for t in listed] == [
        releases.target_path(NAV, "1.0.0"),
        releases.target_path(NAV, "1.2.0"),
    ]
    assert listed[1]["length"] == bundle.stat().st_size and len(listed[1]["sha256"]) == 64
    with pytest.raises(TrustError, match="no partner role publishes"):
        registry.release(NAV, "1.2.0")  # checked but not yet published
    with pytest.raises(TrustError, match="overlaps"):
        registry.repo.add_partner(
            "sub", "com.acme.sub", keys.key_to_dict(keys.load_public_key(registry.base / "mallory.pub.json"))
        )


def test_reopened_registry_keeps_publishing(unit: HeadUnit, registry: Registry) -> None:  # noqa: F811
    unit.syncer.sync_once()
    registry.repo = RegistryRepository.open(registry.base / "repo", registry.base / "keys")
    assert registry.repo.partner_namespace("acme") == "com.acme"
    registry.publish("acme", NAV, "1.1.0")
    registry.release(NAV, "1.1.0")
    registry.repo.refresh_timestamp()
    report = unit.syncer.sync_once()
    assert [(c.app_id, c.version, c.previous) for c in report.changed] == [(NAV, "1.1.0", "1.0.0")]
