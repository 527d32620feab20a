"""Hostile storage calls through the real storage plugin process (``python -m vehicle_host.plugins.host``)
against a socket playing the hub: quota, key tricks, huge values, many keys, concurrent writers. Each
refusal is a clear error, writes nothing, and leaves the other app's data as it was."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.plugin_process import FakeHub
from vehicle_host.logic_worker.harness import FakeHub as WorkerHub
from vehicle_host.plugins import storage
from vehicle_host.plugins.storage import StorageDB
from vehicle_host.wire import Envelope

pytestmark = pytest.mark.integration
APP = "com.hostile.app"
OTHER = "com.victim.app"
SECRET = json.dumps("victim-secret")


class Store:
    """One running storage plugin host process, spoken to as the hub would."""

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self.ids = iter(range(1, 1 << 30))

    async def call(self, method: str, args: dict[str, Any], app: str = APP) -> dict[str, Any]:
        return await self.hub.call(next(self.ids), method, args, app_id=app)

    async def set(self, key: str, value: str, app: str = APP) -> dict[str, Any]:
        return await self.call("storage.set", {"key": key, "value": value}, app)

    async def items(self, app: str = APP) -> dict[str, str]:
        """Every key/value of ``app``, following the snapshot's pages."""
        out: dict[str, str] = {}
        after: str | None = None
        while True:
            page = await self.call("storage.snapshot", {} if after is None else {"after": after}, app)
            assert page["ok"], page
            out.update(page["result"]["items"])
            after = page["result"]["next"]
            if not after:
                return out


def with_store(short_dir: Path, body: Callable[[Store], Awaitable[None]], **config: Any) -> None:
    async def main() -> None:
        with FakeHub(f"ipc://{short_dir / 'hub.sock'}", "storage") as hub:
            async with hub.host(short_dir / "state", config):
                assert "storage.set" in await hub.accept()
                store = Store(hub)
                assert (await store.set("token", SECRET, OTHER))["ok"]
                await body(store)
                assert await store.items(OTHER) == {"token": SECRET}  # the other app's data, always

    asyncio.run(main())


def result_of(call_id: int) -> Callable[[Envelope], bool]:
    return lambda m: m.type == "plugin.result" and m.payload["call_id"] == call_id


def refused(answer: dict[str, Any], fragment: str) -> None:
    assert answer["ok"] is False, answer
    assert fragment in answer["error"]["message"], answer["error"]


def test_a_write_over_the_quota_is_refused_whole_and_the_old_value_stays(short_dir: Path) -> None:
    chunk = json.dumps("y" * 30_000)

    async def body(s: Store) -> None:
        for i in range(3):
            assert (await s.set(f"k{i}", chunk))["ok"]
        before = await s.items()
        refused(await s.set("k3", chunk), "storage is full")
        refused(await s.set("k0", json.dumps("z" * 95_000)), "storage is full")  # replacing, still too big
        assert await s.items() == before  # nothing partially written, k0 unchanged
        info = (await s.call("storage.info", {}))["result"]
        assert info["keys"] == ["k0", "k1", "k2"] and info["currentSize"] <= info["limitSize"]

    with_store(short_dir, body, quota_bytes=100_000)


def test_path_and_namespace_tricks_in_keys_are_just_keys_of_the_calling_app(short_dir: Path) -> None:
    tricks = [
        "../com.victim.app/token",
        "/../../etc/passwd",
        "com.victim.app/token",
        "com.victim.app\\token",
        "com.victim.app:token",
        "t\u043eken",  # Cyrillic o
        "\uff54\uff4f\uff4b\uff45\uff4e",  # fullwidth
        "token\u200b",  # zero-width space
        "TOKEN",
        "token ",
        "' OR app_id != '' --",
    ]

    async def body(s: Store) -> None:
        for key in tricks:
            assert (await s.set(key, json.dumps("mine")))["ok"], key
        assert await s.items() == {key: json.dumps("mine") for key in tricks}
        await s.call("storage.remove", {"key": "token"})  # the victim's key name, in this app's space
        await s.call("storage.clear", {})
        assert await s.items() == {}

    with_store(short_dir, body)
    files = sorted(p.name for p in (short_dir / "state").rglob("*") if p.is_file())
    assert all(name.startswith(storage.FILENAME) for name in files), files  # no file named by a key


def test_control_characters_and_oversized_keys_are_refused_with_nothing_written(short_dir: Path) -> None:
    async def body(s: Store) -> None:
        for key in ("tok\x00en", "token\n", "\x1b[2J", "del\x7f"):
            refused(await s.set(key, "1"), "may not contain control characters")
        long_utf8 = "é" * 129  # 129 characters pass the schema, 258 bytes do not
        refused(await s.set(long_utf8, "1"), "1 to 256 bytes")
        answer = await s.set("k" * 5000, "1")
        assert answer["ok"] is False and answer["error"]["code"] in ("invalid_args", "failed")
        refused(await s.set("", "1"), "")
        assert await s.items() == {}

    with_store(short_dir, body)


def test_huge_and_deeply_nested_values_are_refused_with_nothing_written(short_dir: Path) -> None:
    async def body(s: Store) -> None:
        assert (await s.set("v", "1"))["ok"]
        refused(await s.set("v", json.dumps("x" * storage.MAX_VALUE_BYTES)), "at most 1,000,000 bytes")
        refused(await s.set("v", "[" * 50_000 + "]" * 50_000), "nests too deeply")
        refused(await s.set("v", "{broken"), "must be JSON text")
        assert await s.items() == {"v": "1"}

    with_store(short_dir, body)


def test_the_key_count_limit_holds_for_the_app_and_not_for_others(short_dir: Path) -> None:
    # fill the file up to the limit first (one transaction; writing 2048 keys through calls is slow)
    db = StorageDB(short_dir / "state" / storage.FILENAME)
    db.close()
    with sqlite3.connect(db.path) as raw:
        raw.executemany(
            "INSERT INTO items (app_id, key, value, size) VALUES (?, ?, '1', ?)",
            [(APP, f"k{i:04}", len(f"k{i:04}") + 1) for i in range(storage.MAX_KEYS)],
        )

    async def body(s: Store) -> None:
        refused(await s.set("one-more", "1"), f"already stores {storage.MAX_KEYS} keys")
        assert (await s.set("k0000", "2"))["ok"]  # replacing an existing key is fine
        info = (await s.call("storage.info", {}))["result"]
        assert len(info["keys"]) == storage.MAX_KEYS and "one-more" not in info["keys"]
        assert (await s.set("extra", "1", OTHER))["ok"]  # the limit is per app
        await s.call("storage.remove", {"key": "extra"}, OTHER)

    with_store(short_dir, body)


def test_concurrent_writers_in_two_plugin_processes_never_pass_the_quota(short_dir: Path) -> None:
    # an old plugin process still running while its replacement starts: both write the same file
    chunk = json.dumps("w" * 30_000)
    state = short_dir / "state"

    async def main() -> None:
        with (
            FakeHub(f"ipc://{short_dir / 'a.sock'}", "storage") as hub_a,
            FakeHub(f"ipc://{short_dir / 'b.sock'}", "storage") as hub_b,
        ):
            async with (
                hub_a.host(state, {"quota_bytes": 100_000}),
                hub_b.host(state, {"quota_bytes": 100_000}),
            ):
                await asyncio.gather(hub_a.accept(), hub_b.accept())
                a, b = Store(hub_a), Store(hub_b)
                assert (await a.set("token", SECRET, OTHER))["ok"]
                # every call is sent before any answer is read: both processes write at the same time
                sent = []
                for i in range(5):
                    for hub in (hub_a, hub_b):
                        call = {"call_id": 100 + i, "app_id": APP, "method": "storage.set"}
                        await hub.send(
                            "plugin.call", call | {"args": {"key": f"{i}-{hub.endpoint[-6]}", "value": chunk}}
                        )
                        sent.append((hub, 100 + i))
                answers = [dict((await hub.wait(result_of(c))).payload) for hub, c in sent]
                ok = [x for x in answers if x["ok"]]
                assert len(ok) == 3  # 3 x 30 kB fit in 100 kB, whichever process wrote them
                for answer in answers:
                    if not answer["ok"]:
                        assert "storage is full" in answer["error"]["message"], answer
                assert len(await a.items()) == 3 and await b.items() == await a.items()
                assert await b.items(OTHER) == {"token": SECRET}

    asyncio.run(main())


def test_the_worker_refuses_the_same_keys_at_once_so_its_copy_never_differs_from_disk() -> None:
    # the sync APIs answer from the worker's copy: a key the plugin would refuse must fail right there
    hub = WorkerHub()
    page = (
        "go() { for (const k of ['tok\\u0000en', 'a\\nb', '\\ud800', 'x\\udc00y', 'ok']) {"
        " try { fc.setStorageSync(k, 1); console.log('stored'); } catch (e) { console.log(e.message); } } },"
    )
    hub.start({"app.js": "App({});", "pages/index/index.js": f"Page({{ data: {{}}, {page} }});"}, storage={})
    hub.take()
    hub.event("go")
    control = "setStorageSync:fail the key may not contain control characters"
    surrogate = "setStorageSync:fail the key is not valid text (a lone UTF-16 surrogate)"
    assert hub.logs() == [control, control, surrogate, surrogate, "stored"]
    assert [(c["method"], c["args"]["key"]) for c in hub.calls()] == [("storage.set", "ok")]  # only that one
