"""A full disk: every writer fails with an error that says so, keeps what it had, and works again once
space is freed.

Each test mounts a small real file system (tmpfs with ``size=``), puts one writer's state on it,
fills it to the last byte, and checks: the write fails naming ENOSPC / no space left, earlier data
is intact and readable, nothing half-made is left behind, and the same write succeeds after the
filler is deleted. The writers: bundle install into the cache, the storage plugin, the parts
ordering outbox, the hub's run log and a sync download (its ``.part`` file).
"""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.io_helpers import (
    Filler,
    free_port,
    recording_dealer,
    says_disk_full,
    small_disk,
    stop_dealer,
)
from tests.hostile.bundle_fixtures import hostile_zip, mid_ratio_data
from tests.integration.test_cache_power_loss import APP, tree, version_source
from tests.integration.trust_fixtures import Registry, registry  # noqa: F401
from vehicle_host.bundle_cache import BundleCache, CacheError
from vehicle_host.bundle_cache import cache as cache_module
from vehicle_host.bundles import archive, catalog
from vehicle_host.errors import BundleError
from vehicle_host.plugins.contract import CallContext, Plugin, PluginContext, PluginError
from vehicle_host.plugins.parts_ordering.plugin import PartsOrderingPlugin
from vehicle_host.plugins.storage import StoragePlugin
from vehicle_host.trust.client import TrustedRepo
from vehicle_host.updates.health import HealthError, HealthLog
from vehicle_host.updates.sync import Syncer

pytestmark = pytest.mark.integration

DISK_KIB = 8 * 1024
NAV = "com.acme.nav"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Filler]:
    with small_disk(tmp_path / "disk", DISK_KIB) as root:
        filler = Filler(root)
        yield filler
        filler.free()


async def call(plugin: Plugin, method: str, args: dict[str, Any], app: str = "com.demo.app") -> Any:
    decl = {m.name: m for m in plugin.declarations()}[method]
    return await plugin.call(decl, args, CallContext(app_id=app, call_id=1, method=method))


async def _no_publish(key: str, value: Any) -> None:
    return None


def run_plugin(plugin: Plugin, body: Any) -> None:
    async def main() -> None:
        await plugin.start()
        try:
            await asyncio.wait_for(body(plugin), 30)
        finally:
            await plugin.stop()

    asyncio.run(main())


# -- bundle cache ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before writing", "while extracting"])
def test_bundle_install_on_a_full_disk_keeps_the_active_version(
    tmp_path: Path, disk: Filler, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = {"1.0.0": version_source(tmp_path, "1.0.0", 0), "2.0.0": version_source(tmp_path, "2.0.0", 3)}
    expected = {version: tree(src) for version, src in sources.items()}
    v1, v2 = tmp_path / "v1.vhb", tmp_path / "v2.vhb"
    archive.pack(sources["1.0.0"], v1)
    archive.pack(sources["2.0.0"], v2)
    root = disk.root / "cache"
    with BundleCache(root) as cache:
        old = cache.install(v1)
        cache.activate(APP, old.digest)
    if where == "while extracting":  # as if another writer took the space after the check
        monkeypatch.setattr(cache_module.BundleCache, "_check_space", lambda self, bundle, data: None)

    with BundleCache(root) as cache:
        disk.fill()
        with pytest.raises(CacheError) as refused:
            cache.install(v2)
        message = str(refused.value)
        assert says_disk_full(message) and "v2.vhb" in message, message
        active = cache.active(APP)
        assert active is not None and active.version == "1.0.0"
        [app], broken = catalog.scan(cache.apps_dir)
        assert broken == [] and tree(app.path) == expected["1.0.0"]
        assert [p.name for p in cache.objects_dir.iterdir()] == [old.digest]  # no half-made object
        assert [i.version for i in cache.versions(APP)] == ["1.0.0"]
        try:  # a second cache (another process) may open on the full disk, or say why it cannot
            BundleCache(root).close()
        except CacheError as exc:
            assert says_disk_full(str(exc)), str(exc)

        disk.free()
        new = cache.install(v2)
        cache.activate(APP, new.digest)
        [app], broken = catalog.scan(cache.apps_dir)
        assert app.manifest.version == "2.0.0" and tree(app.path) == expected["2.0.0"]
        assert cache.rollback(APP).version == "1.0.0"


def test_a_bundle_over_the_size_limit_is_refused_by_size_not_as_disk_full(
    tmp_path: Path, disk: Filler
) -> None:
    # ~25:1 entries that together unpack past 20 MiB: far more than this small disk holds, but the
    # driver must learn the bundle is too big, not that the car should free space for it
    parts: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        (f"d/f{i}.bin", mid_ratio_data(1 << 20, i)) for i in range(21)
    ]
    bundle = hostile_zip(tmp_path / "total.vhb", parts)
    with BundleCache(disk.root / "cache") as cache:
        with pytest.raises(BundleError) as refused:
            cache.install(bundle)
        assert "per-app limit" in str(refused.value) and not says_disk_full(str(refused.value))
        assert list(cache.objects_dir.iterdir()) == []


# -- storage plugin ----------------------------------------------------------------------------------


def test_storage_write_on_a_full_disk_fails_clearly_and_keeps_old_values(disk: Filler) -> None:
    async def body(plugin: StoragePlugin) -> None:
        await call(plugin, "storage.set", {"key": "kept", "value": '"before the disk filled"'})
        disk.fill()
        big = '"' + "x" * 200_000 + '"'
        with pytest.raises(PluginError) as refused:
            await call(plugin, "storage.set", {"key": "new", "value": big})
        assert says_disk_full(str(refused.value)), str(refused.value)
        snapshot = await call(plugin, "storage.snapshot", {})
        assert snapshot["items"] == {"kept": '"before the disk filled"'}
        disk.free()
        await call(plugin, "storage.set", {"key": "new", "value": big})
        assert set((await call(plugin, "storage.snapshot", {}))["items"]) == {"kept", "new"}

    context = PluginContext(config={}, publish_state=_no_publish, state_dir=str(disk.root / "storage"))
    run_plugin(StoragePlugin(context), body)


# -- parts ordering outbox ---------------------------------------------------------------------------


def test_order_on_a_full_disk_fails_clearly_keeps_the_cart_and_earlier_orders(
    tmp_path: Path, disk: Filler
) -> None:
    port = free_port()  # nothing listens yet: orders stay queued
    config = {"service_url": f"http://127.0.0.1:{port}", "retry_base_s": 0.05, "retry_max_s": 0.2}
    servers: list[Any] = []

    async def body(plugin: PartsOrderingPlugin) -> None:
        await call(plugin, "parts.cartAdd", {"partNumber": "SP-1001", "quantity": 4})
        first = await call(plugin, "parts.order", {"note": "first"})
        assert first["status"] == "queued"
        await call(plugin, "parts.cartAdd", {"partNumber": "AF-4201", "quantity": 1})
        disk.fill()
        with pytest.raises(PluginError) as refused:
            await call(plugin, "parts.order", {"note": "second"})
        assert says_disk_full(str(refused.value)), str(refused.value)
        cart = await call(plugin, "parts.cart", {})
        assert [(i["partNumber"], i["quantity"]) for i in cart["items"]] == [("AF-4201", 1)]
        orders = (await call(plugin, "parts.orders", {}))["orders"]
        assert [(o["orderId"], o["status"], o.get("note")) for o in orders] == [
            (first["orderId"], "queued", "first")
        ]

        disk.free()
        second = await call(plugin, "parts.order", {"note": "second"})
        assert second["status"] == "queued" and (await call(plugin, "parts.cart", {}))["items"] == []
        server, keys = recording_dealer(tmp_path / "dealer.sqlite3", port)
        servers.append(server)
        while {o["status"] for o in (await call(plugin, "parts.orders", {}))["orders"]} != {"confirmed"}:
            await asyncio.sleep(0.05)
        assert server.store.order_count() == 2
        assert all(len(ids) == 1 for ids in keys.by_key().values()) and len(keys.by_key()) == 2

    context = PluginContext(config=config, publish_state=_no_publish, state_dir=str(disk.root / "parts"))
    try:
        run_plugin(PartsOrderingPlugin(context), body)
    finally:
        for server in servers:
            stop_dealer(server)


# -- hub run log -------------------------------------------------------------------------------------


def test_run_log_on_a_full_disk_fails_clearly_and_keeps_earlier_runs(disk: Filler) -> None:
    log = HealthLog(disk.root / "state" / "app-runs.db")
    try:
        for event in ("launch", "error", "launch"):
            log.record("com.demo.app", "1.0.0", event)
        disk.fill()
        with pytest.raises(HealthError) as refused:
            for _ in range(50):  # each insert grows the journal; the first that needs a page fails
                log.record("com.demo.app", "1.0.0", "crash")
        assert says_disk_full(str(refused.value)), str(refused.value)
        kept = [r.event for r in log.since(0)]
        assert kept[:3] == ["launch", "error", "launch"] and set(kept[3:]) <= {"crash"}
        disk.free()
        log.record("com.demo.app", "1.0.0", "launch")
        assert [r.event for r in log.since(0)][-1] == "launch"
    finally:
        log.close()


# -- sync download -----------------------------------------------------------------------------------


def test_sync_download_on_a_full_disk_fails_clearly_and_keeps_the_active_version(
    tmp_path: Path,
    disk: Filler,
    registry: Registry,  # noqa: F811
) -> None:
    registry.add_partner("acme", "com.acme")
    registry.publish("acme", NAV, "1.0.0")
    registry.release(NAV, "1.0.0")
    repo = TrustedRepo(tmp_path / "tuf", registry.repo.trust_root(), registry.url)
    with BundleCache(disk.root / "cache") as cache:
        syncer = Syncer(repo, cache, "VIN-0001")
        assert [c.version for c in syncer.sync_once().changed] == ["1.0.0"]
        registry.publish("acme", NAV, "1.1.0")
        registry.release(NAV, "1.1.0")

        disk.fill()
        report = syncer.sync_once()
        assert report.changed == [] and says_disk_full(report.errors[NAV]), report.errors
        active = cache.active(NAV)
        assert active is not None and active.version == "1.0.0"
        [app], broken = catalog.scan(cache.apps_dir)
        assert broken == [] and app.manifest.version == "1.0.0"
        assert list(syncer.download_dir.glob("*")) == []  # the partial .part gave its space back

        disk.free()
        report = syncer.sync_once()
        assert report.errors == {} and [(c.version, c.previous) for c in report.changed] == [
            ("1.1.0", "1.0.0")
        ]
        assert cache.active(NAV).version == "1.1.0"  # type: ignore[union-attr]
