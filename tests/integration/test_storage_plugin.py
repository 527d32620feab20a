"""The storage plugin on a real SQLite file: namespacing, quotas, paging, durability."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.plugins import storage
from vehicle_host.plugins.contract import CallContext, PluginError
from vehicle_host.plugins.storage import StorageDB, StoragePlugin

from .plugin_process import run_plugin

pytestmark = pytest.mark.integration


def with_plugin(state_dir: Path, body: Callable[[StoragePlugin], Awaitable[None]], **config: Any) -> None:
    run_plugin(StoragePlugin, state_dir, lambda plugin, published: body(plugin), **config)


async def call(plugin: StoragePlugin, app_id: str, method: str, args: dict[str, Any]) -> Any:
    decl = {m.name: m for m in plugin.declarations()}[method]
    return await plugin.call(decl, args, CallContext(app_id=app_id, call_id=1, method=method))


def test_apps_see_only_their_own_keys(tmp_path: Path) -> None:
    async def body(p: StoragePlugin) -> None:
        await call(p, "com.a", "storage.set", {"key": "token", "value": '"a-secret"'})
        await call(p, "com.b", "storage.set", {"key": "token", "value": '"b"'})
        assert (await call(p, "com.a", "storage.snapshot", {}))["items"] == {"token": '"a-secret"'}
        assert (await call(p, "com.b", "storage.snapshot", {}))["items"] == {"token": '"b"'}
        await call(p, "com.b", "storage.clear", {})
        assert (await call(p, "com.b", "storage.snapshot", {}))["items"] == {}
        assert (await call(p, "com.a", "storage.info", {}))["keys"] == ["token"]
        await call(p, "com.a", "storage.remove", {"key": "token"})
        info = await call(p, "com.a", "storage.info", {})
        assert info == {"keys": [], "currentSize": 0, "limitSize": 10240}

    with_plugin(tmp_path, body)


def test_writes_survive_a_reopen(tmp_path: Path) -> None:
    async def write(p: StoragePlugin) -> None:
        await call(p, "com.a", "storage.set", {"key": "n", "value": "41"})
        await call(p, "com.a", "storage.set", {"key": "n", "value": "42"})

    async def read(p: StoragePlugin) -> None:
        assert (await call(p, "com.a", "storage.snapshot", {}))["items"] == {"n": "42"}

    with_plugin(tmp_path, write)
    with_plugin(tmp_path, read)
    assert (tmp_path / storage.FILENAME).stat().st_mode & 0o077 == 0


def test_value_and_quota_limits_give_clear_errors(tmp_path: Path) -> None:
    async def body(p: StoragePlugin) -> None:
        big = json.dumps("x" * (storage.MAX_VALUE_BYTES))
        with pytest.raises(PluginError, match=r"at most 1,000,000 bytes \(1 MB\)"):
            await call(p, "com.a", "storage.set", {"key": "big", "value": big})
        chunk = json.dumps("y" * 30_000)
        for i in range(3):
            await call(p, "com.a", "storage.set", {"key": f"k{i}", "value": chunk})
        with pytest.raises(PluginError, match="storage is full"):
            await call(p, "com.a", "storage.set", {"key": "k3", "value": chunk})
        await call(p, "com.a", "storage.set", {"key": "k0", "value": chunk})  # replacing fits
        await call(p, "com.b", "storage.set", {"key": "k3", "value": chunk})  # quota is per app
        with pytest.raises(PluginError, match="JSON"):
            await call(p, "com.a", "storage.set", {"key": "j", "value": "{broken"})
        info = await call(p, "com.a", "storage.info", {})
        assert info["limitSize"] == 98 and info["currentSize"] == 88

    with_plugin(tmp_path, body, quota_bytes=100_000)


def test_snapshot_pages_cover_everything_once(tmp_path: Path) -> None:
    db = StorageDB(tmp_path / "s.sqlite3")
    for i in range(30):
        db.set("com.a", f"key{i:02d}", json.dumps("v" * 1000))
    seen: dict[str, str] = {}
    after = None
    pages = 0
    while True:
        items, after = db.snapshot("com.a", after, page_bytes=5000)
        assert not set(items) & set(seen)
        seen.update(items)
        pages += 1
        if after is None:
            break
    assert len(seen) == 30 and pages > 1
    db.close()


def test_the_key_count_is_bounded(tmp_path: Path) -> None:
    db = StorageDB(tmp_path / "s.sqlite3")
    for i in range(storage.MAX_KEYS):
        db.set("com.a", f"k{i}", "1")
    with pytest.raises(PluginError, match="keys"):
        db.set("com.a", "one-more", "1")
    db.set("com.a", "k0", "2")  # replacing an existing key still works
    db.close()
