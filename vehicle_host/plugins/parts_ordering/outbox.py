"""The plugin's SQLite state: each app's cart and the outbox of orders and bookings to deliver.

An order or booking is committed to the outbox (WAL, ``synchronous=FULL``: on disk) with a fresh
idempotency key *before* any delivery is tried, so it survives a lost network, a lost answer and a
restart of the plugin; the dealer answers a repeated key with the same record, never a second one.

Statuses: ``queued`` (nothing sent yet), ``sent`` (a request left the vehicle, its answer is not
known yet), ``confirmed``/``backordered`` (the dealer has it) and ``rejected`` (the dealer refused
it; not retried). Only ``queued`` and ``sent`` entries are delivered. Each app may have at most
:data:`MAX_OUTBOX_PER_APP` entries waiting; of the final ones the newest :data:`MAX_HISTORY_PER_APP`
are kept (older ones are forgotten when a new entry is added).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vehicle_host.plugins.contract import PluginError, StateDB
from vehicle_host.sqlite_full import is_disk_full

FILENAME = "parts_ordering.sqlite3"
MAX_CART_LINES = 50
MAX_OUTBOX_PER_APP = 500  # entries still to deliver
MAX_HISTORY_PER_APP = 500  # delivered or rejected entries kept for parts.orders
PENDING = ("queued", "sent")
FINAL = ("confirmed", "backordered", "rejected")

_COLUMNS = "id, app_id, kind, idem_key, payload, status, attempts, next_at, error, remote, created, updated"


class OutboxFull(PluginError):
    """The outbox could not be written because the vehicle's disk is full; nothing changed."""

    code = "failed"


@contextmanager
def _writing(what: str) -> Iterator[None]:
    """Turn SQLite's "disk full" (and other write failures) into a :class:`PluginError` that says
    nothing was stored; the transaction was rolled back, so earlier carts and orders are intact."""
    try:
        yield
    except sqlite3.Error as exc:
        if is_disk_full(exc):
            raise OutboxFull(
                f"cannot save the {what}: no space left on the vehicle's disk (ENOSPC); nothing was "
                "stored and earlier orders are kept. Free some space and try again"
            ) from None
        raise PluginError(f"cannot save the {what}: {exc}; nothing was stored, try again") from None


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    rid, app_id, kind, key, payload, status, attempts, next_at, error, remote, created, updated = row
    return {
        "id": rid,
        "app_id": app_id,
        "kind": kind,
        "key": key,
        "payload": json.loads(payload),
        "status": status,
        "attempts": attempts,
        "next_at": next_at,
        "error": error,
        "remote": json.loads(remote) if remote else None,
        "created": created,
        "updated": updated,
    }


class PartsDB(StateDB):
    """Synchronous and thread-safe; call from ``asyncio.to_thread``."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            "CREATE TABLE IF NOT EXISTS cart (app_id TEXT NOT NULL, pn TEXT NOT NULL,"
            " quantity INTEGER NOT NULL, info TEXT NOT NULL, added REAL NOT NULL,"
            " PRIMARY KEY (app_id, pn)) WITHOUT ROWID",
        )
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, app_id TEXT NOT NULL,"
                " kind TEXT NOT NULL, idem_key TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,"
                " status TEXT NOT NULL,"
                " attempts INTEGER NOT NULL, next_at REAL NOT NULL, error TEXT, remote TEXT,"
                " created REAL NOT NULL, updated REAL NOT NULL)"
            )

    def _rollback(self) -> None:
        """Undo the open transaction, if SQLite has not undone it already (it does on a full disk)."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    # -- cart -------------------------------------------------------------------------------------

    def cart_add(self, app_id: str, pn: str, quantity: int, info: dict[str, Any]) -> None:
        with self._lock, _writing("cart"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = self._db.execute("SELECT COUNT(*) FROM cart WHERE app_id = ?", (app_id,)).fetchone()[
                    0
                ]
                exists = self._db.execute(
                    "SELECT 1 FROM cart WHERE app_id = ? AND pn = ?", (app_id, pn)
                ).fetchone()
                if exists is None and count >= MAX_CART_LINES:
                    raise PluginError(
                        f"the cart holds at most {MAX_CART_LINES} parts; order or remove some first"
                    )
                self._db.execute(
                    "INSERT INTO cart VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, pn) DO UPDATE SET"
                    " quantity = excluded.quantity, info = excluded.info",
                    (app_id, pn, quantity, json.dumps(info), time.time()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def cart_remove(self, app_id: str, pn: str) -> bool:
        with self._lock, _writing("cart"):
            return self._db.execute("DELETE FROM cart WHERE app_id = ? AND pn = ?", (app_id, pn)).rowcount > 0

    def cart(self, app_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT pn, quantity, info FROM cart WHERE app_id = ? ORDER BY added, pn", (app_id,)
            ).fetchall()
        return [{**json.loads(info), "partNumber": pn, "quantity": qty} for pn, qty, info in rows]

    # -- outbox -----------------------------------------------------------------------------------

    def enqueue_order(self, app_id: str, extra: dict[str, Any]) -> dict[str, Any]:
        """Move the app's cart into a new outbox order (one transaction)."""
        with self._lock, _writing("order"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                lines = self._db.execute(
                    "SELECT pn, quantity FROM cart WHERE app_id = ? ORDER BY added, pn", (app_id,)
                ).fetchall()
                if not lines:
                    raise PluginError("the cart is empty; add parts with parts.cartAdd first")
                items = [{"partNumber": pn, "quantity": qty} for pn, qty in lines]
                row = self._insert(app_id, "order", {"items": items, **extra})
                self._db.execute("DELETE FROM cart WHERE app_id = ?", (app_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return row

    def enqueue_booking(self, app_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self._lock, _writing("booking"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._insert(app_id, "booking", payload)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        return row

    def _insert(self, app_id: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        pending = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE app_id = ? AND status IN ('queued', 'sent')", (app_id,)
        ).fetchone()[0]
        if pending >= MAX_OUTBOX_PER_APP:
            raise PluginError(
                f"this app already has {MAX_OUTBOX_PER_APP} orders and bookings waiting for the dealer; "
                "try again once they are delivered"
            )
        # forget the oldest delivered or rejected entries beyond the history kept per app
        self._db.execute(
            "DELETE FROM outbox WHERE app_id = ? AND status IN ('confirmed', 'backordered', 'rejected')"
            " AND id NOT IN (SELECT id FROM outbox WHERE app_id = ?"
            " AND status IN ('confirmed', 'backordered', 'rejected') ORDER BY created DESC LIMIT ?)",
            (app_id, app_id, MAX_HISTORY_PER_APP - 1),
        )
        now = time.time()
        local_id = ("O-" if kind == "order" else "B-") + secrets.token_hex(6).upper()
        key = f"vh-{secrets.token_hex(16)}"
        values = (local_id, app_id, kind, key, json.dumps(payload), "queued", 0, now, None, None, now, now)
        self._db.execute(
            f"INSERT INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            values,
        )
        return _row(values)

    def get(self, entry_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE id = ?",  # noqa: S608
                (entry_id,),
            ).fetchone()
        return _row(row) if row is not None else None

    def entries(self, app_id: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE app_id = ? ORDER BY created DESC LIMIT ?",  # noqa: S608
                (app_id, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def due(self, now: float) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE status IN ('queued', 'sent') AND next_at <= ?"  # noqa: S608
                " ORDER BY created",
                (now,),
            ).fetchall()
        return [_row(r) for r in rows]

    def next_due(self) -> float | None:
        with self._lock:
            value = self._db.execute(
                "SELECT MIN(next_at) FROM outbox WHERE status IN ('queued', 'sent')"
            ).fetchone()[0]
        return float(value) if value is not None else None

    def update(self, entry_id: str, **fields: Any) -> dict[str, Any]:
        """Set ``status``/``attempts``/``next_at``/``error``/``remote`` of one entry; returns it."""
        allowed = {"status", "attempts", "next_at", "error", "remote"}
        if not set(fields) <= allowed:
            raise ValueError(f"unknown outbox fields {set(fields) - allowed}")
        if "remote" in fields and fields["remote"] is not None:
            fields["remote"] = json.dumps(fields["remote"])
        fields["updated"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._lock, _writing("order status"):
            self._db.execute(
                f"UPDATE outbox SET {assignments} WHERE id = ?",  # noqa: S608 - names from the allow-list
                (*fields.values(), entry_id),
            )
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE id = ?",  # noqa: S608
                (entry_id,),
            ).fetchone()
        return _row(row)
