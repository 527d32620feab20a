"""The ``storage`` plugin: each mini-app's key/value store (``fc.setStorage`` and friends).

One SQLite file (``storage.sqlite3`` in the plugin's state directory) holds every app's data,
namespaced by the calling app's id from :class:`CallContext` (never from the arguments: an app can
only reach its own data, so no permission is needed). Values are JSON text as the worker
serialised them. Limits follow WeChat: 10 MB per app, 1 MB per value (1,000,000 bytes of UTF-8, the
largest that still fits one wire message with its key); sizes are reported in KB.
A write is on disk (WAL, synchronous=FULL) before its result is sent.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from vehicle_host.plugins.contract import (
    NO_ARGS,
    CallContext,
    PluginError,
    StateDB,
    StatePlugin,
    config_integer,
    method,
    object_schema,
)
from vehicle_host.sqlite_full import is_disk_full

FILENAME = "storage.sqlite3"
QUOTA_BYTES = 10 * 1024 * 1024
#: 1 MB of UTF-8: the wire caps a message at 1 MiB, which leaves room for the key and the envelope.
MAX_VALUE_BYTES = 1_000_000
MAX_KEY_BYTES = 256
MAX_KEYS = 2048
#: One snapshot page stays well under the wire's 1 MiB message limit; ``next`` continues it.
SNAPSHOT_PAGE_BYTES = 640 * 1024
#: NUL and other control characters in a key: nothing legitimate, and a trap for anything that
#: later treats keys as C strings, file names or log lines
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_KEY = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_BYTES}
_OK: dict[str, Any] = {"type": "object"}


class StorageFull(PluginError):
    code = "failed"


class StorageDB(StateDB):
    """The store itself, synchronous and thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path, *, quota_bytes: int = QUOTA_BYTES) -> None:
        super().__init__(
            path,
            "CREATE TABLE IF NOT EXISTS items (app_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
            " size INTEGER NOT NULL, PRIMARY KEY (app_id, key)) WITHOUT ROWID",
        )
        self.quota_bytes = quota_bytes

    def set(self, app_id: str, key: str, value: str) -> None:
        key_bytes = _key_bytes(key)
        value_bytes = len(value.encode("utf-8", "surrogatepass"))
        if value_bytes > MAX_VALUE_BYTES:
            raise StorageFull(
                f"the value for {key[:60]!r} is {value_bytes:,} bytes; one value may hold at most "
                f"{MAX_VALUE_BYTES:,} bytes (1 MB). Store less, or split it over several keys."
            )
        try:
            json.loads(value)
        except RecursionError:
            raise PluginError(
                "the value nests too deeply to be stored; flatten the data (at most about 900 levels)"
            ) from None
        except ValueError:
            raise PluginError("storage values must be JSON text (the worker serialises them)") from None
        size = key_bytes + value_bytes
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                total, count = self._db.execute(
                    "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM items WHERE app_id = ?", (app_id,)
                ).fetchone()
                row = self._db.execute(
                    "SELECT size FROM items WHERE app_id = ? AND key = ?", (app_id, key)
                ).fetchone()
                old = row[0] if row is not None else 0
                if row is None and count >= MAX_KEYS:
                    raise StorageFull(
                        f"this app already stores {MAX_KEYS} keys; remove keys it no longer needs "
                        "(fc.removeStorage) before adding new ones"
                    )
                if total - old + size > self.quota_bytes:
                    raise StorageFull(
                        f"storage is full: this app uses {_kb(total)} KB of {_kb(self.quota_bytes)} KB and "
                        f"this value needs {_kb(size)} KB. Remove keys it no longer needs (fc.removeStorage)."
                    )
                self._db.execute(
                    "INSERT INTO items (app_id, key, value, size) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (app_id, key) DO UPDATE SET value = excluded.value, size = excluded.size",
                    (app_id, key, value, size),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:  # SQLite already rolled back on a full disk
                    self._db.execute("ROLLBACK")
                if is_disk_full(exc):
                    raise StorageFull(
                        f"cannot store {key[:60]!r}: no space left on the vehicle's disk (ENOSPC); the "
                        "app's other values are kept. Free some space and try again"
                    ) from None
                raise PluginError(f"cannot store {key[:60]!r}: {exc}; nothing was changed") from None
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def remove(self, app_id: str, key: str) -> bool:
        _key_bytes(key)
        with self._lock:
            cursor = self._db.execute("DELETE FROM items WHERE app_id = ? AND key = ?", (app_id, key))
            return cursor.rowcount > 0

    def clear(self, app_id: str) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM items WHERE app_id = ?", (app_id,)).rowcount

    def snapshot(
        self, app_id: str, after: str | None = None, page_bytes: int = SNAPSHOT_PAGE_BYTES
    ) -> tuple[dict[str, str], str | None]:
        """Items in key order after ``after``, up to ``page_bytes``; the key to continue from, or None."""
        items: dict[str, str] = {}
        used, last = 0, ""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value, size FROM items WHERE app_id = ? AND key > ? ORDER BY key",
                (app_id, after or ""),
            )
            for key, value, size in rows:
                if items and used + size > page_bytes:
                    return items, last
                items[key] = value
                used, last = used + size, key
        return items, None

    def info(self, app_id: str) -> tuple[list[str], int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, size FROM items WHERE app_id = ? ORDER BY key", (app_id,)
            ).fetchall()
        return [key for key, _ in rows], sum(size for _, size in rows)


def _key_bytes(key: str) -> int:
    size = len(key.encode("utf-8", "surrogatepass"))
    if not 0 < size <= MAX_KEY_BYTES:
        raise PluginError(f"a storage key must be 1 to {MAX_KEY_BYTES} bytes of text")
    if _CONTROL.search(key):
        raise PluginError("a storage key may not contain control characters (U+0000 to U+001F, U+007F)")
    return size


def _kb(size: int) -> int:
    return (size + 1023) // 1024


class StoragePlugin(StatePlugin[StorageDB]):
    name = "storage"
    version = "1.0.0"

    async def start(self) -> None:
        quota = config_integer(self.context.config, "quota_bytes", QUOTA_BYTES, 1, QUOTA_BYTES)
        await self.open_db(functools.partial(StorageDB, quota_bytes=quota), FILENAME)

    async def stop(self) -> None:
        await self.close_db()

    @method(
        "storage.set",
        args=object_schema(
            {"key": _KEY, "value": {"type": "string", "maxLength": MAX_VALUE_BYTES}}, ("key", "value")
        ),
        result=_OK,
        timeout_s=15.0,
    )
    async def set_item(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Store one value (JSON text) under a key."""
        await asyncio.to_thread(self.db.set, call.app_id, args["key"], args["value"])
        return {}

    @method(
        "storage.remove",
        args=object_schema({"key": _KEY}, ("key",)),
        result=_OK,
    )
    async def remove_item(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Remove one key."""
        await asyncio.to_thread(self.db.remove, call.app_id, args["key"])
        return {}

    @method("storage.clear", args=NO_ARGS, result=_OK)
    async def clear(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Remove every key of the calling app."""
        await asyncio.to_thread(self.db.clear, call.app_id)
        return {}

    @method(
        "storage.snapshot",
        args={"type": "object", "properties": {"after": _KEY}, "additionalProperties": False},
        result={
            "type": "object",
            "properties": {
                "items": {"type": "object", "additionalProperties": {"type": "string"}},
                "next": {"type": ["string", "null"]},
            },
            "required": ["items", "next"],
        },
    )
    async def snapshot(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """The app's key/values (one page; pass ``after: next`` for the rest)."""
        items, more = await asyncio.to_thread(self.db.snapshot, call.app_id, args.get("after"))
        return {"items": items, "next": more}

    @method(
        "storage.info",
        args=NO_ARGS,
        result={
            "type": "object",
            "properties": {
                "keys": {"type": "array", "items": {"type": "string"}},
                "currentSize": {"type": "integer"},
                "limitSize": {"type": "integer"},
            },
            "required": ["keys", "currentSize", "limitSize"],
        },
    )
    async def info(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Keys and sizes in KB, as getStorageInfo."""
        keys, used = await asyncio.to_thread(self.db.info, call.app_id)
        return {"keys": keys, "currentSize": _kb(used), "limitSize": _kb(self.db.quota_bytes)}
