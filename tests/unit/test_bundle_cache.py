"""The head unit's bundle cache: install, activate, rollback, gc, idempotence, crash leftovers."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from vehicle_host.bundle_cache import BundleCache, CacheError
from vehicle_host.bundles import archive, catalog
from vehicle_host.errors import BundleError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vehicle-info"
APP = "org.vehiclehost.samples.vehicleinfo"


def make_bundle(tmp: Path, version: str, app_id: str = APP) -> Path:
    """The example app at ``version`` (its index page shows the version), packed."""
    src = tmp / f"src-{app_id}-{version}"
    shutil.copytree(EXAMPLE, src)
    doc = json.loads((src / "app.json").read_text())
    doc["vehicle"]["version"] = version
    doc["vehicle"]["id"] = app_id
    (src / "app.json").write_text(json.dumps(doc))
    page = src / "pages" / "index" / "index.wxml"
    page.write_text(page.read_text() + f"\n<text>v{version}</text>\n")
    out = tmp / f"{app_id}-{version}.vhb"
    archive.pack(src, out)
    return out


@pytest.fixture
def cache(tmp_path: Path) -> BundleCache:
    return BundleCache(tmp_path / "cache")


def scanned_version(cache: BundleCache) -> str:
    apps, broken = catalog.scan(cache.apps_dir)
    assert broken == []
    [app] = apps
    return app.manifest.version


def test_install_then_activate(tmp_path: Path, cache: BundleCache) -> None:
    bundle = make_bundle(tmp_path, "1.0.0")
    installed = cache.install(bundle)
    assert installed.digest == archive.sha256_file(bundle)
    assert installed.path == cache.objects_dir / installed.digest
    assert (installed.app_id, installed.version) == (APP, "1.0.0")
    assert cache.active(APP) is None  # installing does not activate
    assert catalog.scan(cache.apps_dir) == ([], [])

    assert cache.activate(APP, installed.digest) == installed
    assert cache.active(APP) == installed
    assert os.readlink(cache.apps_dir / APP) == f"../objects/{installed.digest}"
    apps, _ = catalog.scan(cache.apps_dir)
    assert [a.path for a in apps] == [installed.path]  # the immutable object, not the link
    assert cache.installed_apps() == [installed]
    assert "v1.0.0" in (installed.path / "pages" / "index" / "index.wxml").read_text()


def test_install_is_idempotent_and_checks_the_expected_digest(tmp_path: Path, cache: BundleCache) -> None:
    bundle = make_bundle(tmp_path, "1.0.0")
    first = cache.install(bundle)
    marker = first.path / "app.json"
    before = marker.stat().st_ino
    assert cache.install(bundle, expected_sha256=first.digest.upper()) == first
    assert marker.stat().st_ino == before  # not extracted again
    assert len(cache.versions(APP)) == 1
    assert sorted(os.listdir(cache.objects_dir)) == [first.digest]

    other = make_bundle(tmp_path, "1.1.0")
    with pytest.raises(BundleError, match="differs from the expected"):
        cache.install(other, expected_sha256=first.digest)
    assert sorted(os.listdir(cache.objects_dir)) == [first.digest]


def test_a_bad_bundle_leaves_nothing_behind(tmp_path: Path, cache: BundleCache) -> None:
    bad = tmp_path / "bad.vhb"
    bad.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(BundleError):
        cache.install(bad)
    assert os.listdir(cache.objects_dir) == []
    assert cache.versions(APP) == []


def test_rollback_returns_to_the_previously_activated_version(tmp_path: Path, cache: BundleCache) -> None:
    v1 = cache.install(make_bundle(tmp_path, "1.0.0"))
    v2 = cache.install(make_bundle(tmp_path, "2.0.0"))
    v3 = cache.install(make_bundle(tmp_path, "3.0.0"))
    with pytest.raises(CacheError, match="not in the bundle cache"):
        cache.rollback(APP)  # nothing active, nothing activated before
    cache.activate(APP, v1.digest)
    with pytest.raises(CacheError, match="an earlier version"):
        cache.rollback(APP)
    cache.activate(APP, v2.digest)
    assert cache.rollback(APP) == v1
    assert scanned_version(cache) == "1.0.0"
    assert cache.rollback(APP) == v2  # the previous activation is v2 again
    assert cache.rollback(APP, version="3.0.0") == v3  # installed but never activated
    assert cache.rollback(APP, version="1.0.0") == v1
    assert scanned_version(cache) == "1.0.0"
    with pytest.raises(CacheError, match=r"version 9\.9\.9"):
        cache.rollback(APP, version="9.9.9")
    assert [i.version for i in cache.versions(APP)] == ["3.0.0", "2.0.0", "1.0.0"]


def test_activate_refuses_unknown_digests_and_other_apps(tmp_path: Path, cache: BundleCache) -> None:
    other = cache.install(make_bundle(tmp_path, "1.0.0", app_id="com.example.other"))
    with pytest.raises(CacheError, match=r"holds com\.example\.other"):
        cache.activate(APP, other.digest)
    with pytest.raises(CacheError, match="not installed"):
        cache.activate(APP, "0" * 64)
    with pytest.raises(CacheError, match="not installed"):
        cache.activate(APP, "../../etc")
    with pytest.raises(CacheError, match="not an app id"):
        cache.activate("../x", other.digest)
    (cache.apps_dir / APP).mkdir()
    mine = cache.install(make_bundle(tmp_path, "1.0.0"))
    with pytest.raises(CacheError, match="does not manage"):
        cache.activate(APP, mine.digest)


def test_gc_keeps_the_active_and_the_most_recent(tmp_path: Path, cache: BundleCache) -> None:
    objects = [cache.install(make_bundle(tmp_path, f"1.{n}.0")) for n in range(5)]
    for obj in objects:
        cache.activate(APP, obj.digest)
    cache.activate(APP, objects[1].digest)  # used again: recent
    other = cache.install(make_bundle(tmp_path, "1.0.0", app_id="com.example.other"))

    removed = cache.gc(keep=3)
    assert sorted(removed) == sorted([objects[0].digest, objects[2].digest])
    left = {i.digest for i in cache.versions(APP)}
    assert left == {objects[1].digest, objects[3].digest, objects[4].digest}
    assert sorted(os.listdir(cache.objects_dir)) == sorted([*left, other.digest])

    removed = cache.gc(keep=0)
    assert objects[1].digest not in removed  # active: never deleted
    assert [i.digest for i in cache.versions(APP)] == [objects[1].digest]
    assert other.digest in removed  # installed, never activated
    assert scanned_version(cache) == "1.1.0"
    assert cache.gc(keep=0) == []


def test_a_running_app_keeps_its_object_when_a_new_version_is_activated(
    tmp_path: Path, cache: BundleCache
) -> None:
    v1 = cache.install(make_bundle(tmp_path, "1.0.0"))
    cache.activate(APP, v1.digest)
    [running], _ = catalog.scan(cache.apps_dir)  # what the hub launched
    v2 = cache.install(make_bundle(tmp_path, "2.0.0"))
    cache.activate(APP, v2.digest)

    page = catalog.compile_page(running, running.manifest.entry)  # the running app still reads v1
    assert running.manifest.version == "1.0.0"
    assert "v1.0.0" in json.dumps(page.tree)
    assert catalog.bundle_sources(running)
    [fresh], _ = catalog.scan(cache.apps_dir)  # the next launch gets v2
    assert fresh.path == v2.path and fresh.manifest.version == "2.0.0"


def test_a_fresh_cache_clears_crash_leftovers_and_catches_up_the_history(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    cache = BundleCache(root)
    v1 = cache.install(make_bundle(tmp_path, "1.0.0"))
    cache.activate(APP, v1.digest)
    cache.close()
    # what a crash can leave: a half-extracted object, a half-deleted one, a staged link, and an
    # object and an activation that reached the disk but not the history
    (root / "objects" / ".tmp-abc" / "pages").mkdir(parents=True)
    (root / "objects" / ".trash-def").mkdir()
    (root / "apps" / f".{APP}.new").symlink_to(f"../objects/{v1.digest}")
    v2_bundle = make_bundle(tmp_path, "2.0.0")
    v2_digest = archive.sha256_file(v2_bundle)
    archive.extract(v2_bundle, root / "objects" / v2_digest)
    os.replace(_link(root, v2_digest), root / "apps" / APP)

    cache = BundleCache(root)
    assert sorted(os.listdir(root / "objects")) == sorted([v1.digest, v2_digest])
    assert sorted(os.listdir(root / "apps")) == [APP]
    active = cache.active(APP)
    assert active is not None and active.version == "2.0.0"
    assert cache.rollback(APP) == v1  # the history knows v2 was activated after v1
    assert cache.install(v2_bundle).digest == v2_digest
    cache.close()


def _link(root: Path, digest: str) -> Path:
    staged = root / "apps" / ".staged"
    staged.symlink_to(f"../objects/{digest}")
    return staged
