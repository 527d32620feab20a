"""The reference dealer's SQLite store: catalog queries, idempotent orders and bookings."""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vehicle_host.dealer_service import catalog
from vehicle_host.httpjson import RequestError

MAX_RESULTS = 50


_REPLAY_ORDERS = "SELECT record, body_hash FROM orders WHERE idem_key = ?"
_REPLAY_BOOKINGS = "SELECT record, body_hash FROM bookings WHERE idem_key = ?"


class DealerRequestError(RequestError):
    """A request the dealer refuses; ``status`` is the HTTP status, ``code`` a stable word."""


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS parts (pn TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,"
    " price_cents INTEGER NOT NULL, stock INTEGER NOT NULL, keywords TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fitment (pn TEXT NOT NULL, wmi TEXT NOT NULL, year_from INTEGER NOT NULL,"
    " year_to INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS suggestions (dtc TEXT NOT NULL, pn TEXT NOT NULL, rank INTEGER NOT NULL,"
    " reason TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, idem_key TEXT NOT NULL UNIQUE,"
    " body_hash TEXT NOT NULL, record TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bookings (id TEXT PRIMARY KEY, idem_key TEXT NOT NULL UNIQUE,"
    " body_hash TEXT NOT NULL, slot TEXT NOT NULL UNIQUE, record TEXT NOT NULL, created REAL NOT NULL)",
)


def _hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _part(row: tuple[Any, ...]) -> dict[str, Any]:
    pn, name, category, price, stock = row[:5]
    return {
        "partNumber": pn,
        "name": name,
        "category": category,
        "priceCents": price,
        "currency": catalog.CURRENCY,
        "stock": stock,
    }


def parse_slot(slot: str) -> tuple[str, str]:
    """``YYYY-MM-DDTHH:MM`` -> (date, time) if it is one of the workshop's slots."""
    day, _, hour = slot.partition("T")
    parse_date(day)
    if hour not in catalog.SLOT_TIMES:
        raise DealerRequestError(
            400,
            "bad_slot",
            f"slot must be a date and one of {', '.join(catalog.SLOT_TIMES)}, e.g. {day}T09:00",
        )
    return day, hour


def parse_date(text: str) -> datetime.date:
    try:
        if len(text) != 10:
            raise ValueError(text)
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise DealerRequestError(400, "bad_date", "date must be YYYY-MM-DD, e.g. 2025-07-01") from None


class DealerStore:
    """Thread-safe (one connection behind a lock); the catalog is seeded on first open."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=5.0)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        with self._lock:
            if self._db.execute("SELECT COUNT(*) FROM parts").fetchone()[0] == 0:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT INTO parts VALUES (?, ?, ?, ?, ?, ?)", catalog.PARTS)
                self._db.executemany("INSERT INTO fitment VALUES (?, ?, ?, ?)", catalog.FITMENT)
                self._db.executemany("INSERT INTO suggestions VALUES (?, ?, ?, ?)", catalog.SUGGESTIONS)
                self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def search(self, query: str) -> list[dict[str, Any]]:
        words = query.lower().split()
        with self._lock:
            row = self._db.execute("SELECT * FROM parts WHERE pn = ?", (query.strip().upper(),)).fetchone()
            if row is not None:
                return [_part(row)]
            rows = self._db.execute("SELECT * FROM parts ORDER BY pn").fetchall()
        hits = [r for r in rows if all(w in f"{r[1]} {r[2]} {r[5]}".lower() for w in words)]
        return [_part(r) for r in hits[:MAX_RESULTS]]

    def part(self, pn: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT * FROM parts WHERE pn = ?", (pn,)).fetchone()
        if row is None:
            raise DealerRequestError(404, "unknown_part", f"no part {pn[:40]!r} in the catalog; search first")
        return _part(row)

    def fits(self, pn: str, vin: str) -> tuple[bool, int]:
        year = catalog.model_year(vin)
        if year is None:
            raise DealerRequestError(400, "bad_vin", "vin must be 17 characters with a readable model year")
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM fitment WHERE pn = ? AND wmi IN (?, '*') AND ? BETWEEN year_from AND year_to",
                (pn, vin[:3].upper(), year),
            ).fetchone()
        return row is not None, year

    def suggestions(self, dtcs: list[str], vin: str | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for dtc in dtcs:
            with self._lock:
                rows = self._db.execute(
                    "SELECT s.pn, s.rank, s.reason FROM suggestions s WHERE s.dtc = ? ORDER BY s.rank, s.pn",
                    (dtc,),
                ).fetchall()
            for pn, rank, reason in rows:
                part = self.part(pn)
                if vin is not None:
                    fits, _ = self.fits(pn, vin)
                    if not fits:
                        continue
                out.append({"dtc": dtc, "rank": rank, "reason": reason, "part": part})
        return out

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction: committed when the block ends, rolled back when it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _replay(self, query: str, key: str, digest: str, what: str) -> dict[str, Any] | None:
        """Inside a write transaction: the record already made with ``key``, or None. The same key
        with a different body is refused."""
        row = self._db.execute(query, (key,)).fetchone()
        if row is None:
            return None
        if row[1] != digest:
            message = f"this Idempotency-Key was used for a different {what}"
            raise DealerRequestError(409, "key_reused", message)
        record: dict[str, Any] = json.loads(row[0])
        return record

    def create_order(self, key: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The order for ``key``: (record, created). The same key never makes a second order."""
        digest = _hash(body)
        with self._write():
            earlier = self._replay(_REPLAY_ORDERS, key, digest, "order")
            if earlier is not None:
                return earlier, False
            lines, total, backordered = [], 0, False
            for item in body["items"]:
                part = self._db.execute("SELECT * FROM parts WHERE pn = ?", (item["partNumber"],)).fetchone()
                if part is None:
                    raise DealerRequestError(
                        422, "unknown_part", f"no part {item['partNumber'][:40]!r} in the catalog"
                    )
                quantity = item["quantity"]
                backordered = backordered or part[4] < quantity
                self._db.execute(
                    "UPDATE parts SET stock = MAX(stock - ?, 0) WHERE pn = ?", (quantity, part[0])
                )
                lines.append({**_part(part), "quantity": quantity, "stock": None})
                total += part[3] * quantity
            record = {
                "orderId": "D-" + secrets.token_hex(6).upper(),
                "status": "backordered" if backordered else "confirmed",
                "items": [{k: v for k, v in line.items() if k != "stock"} for line in lines],
                "totalCents": total,
                "currency": catalog.CURRENCY,
                "note": body.get("note", ""),
                "vin": body.get("vin"),
                "created": time.time(),
            }
            self._db.execute(
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                (record["orderId"], key, digest, json.dumps(record), record["created"]),
            )
        return record, True

    def order(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT record FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            raise DealerRequestError(404, "unknown_order", f"no order {order_id[:40]!r}")
        result: dict[str, Any] = json.loads(row[0])
        return result

    def order_count(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        return count

    def booking_count(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT COUNT(*) FROM bookings").fetchone()[0]
        return count

    def free_slots(self, day: str) -> list[str]:
        date = parse_date(day)
        if date.weekday() >= 5:
            return []
        with self._lock:
            taken = {
                r[0] for r in self._db.execute("SELECT slot FROM bookings WHERE slot LIKE ?", (day + "T%",))
            }
        return [f"{day}T{t}" for t in catalog.SLOT_TIMES if f"{day}T{t}" not in taken]

    def create_booking(self, key: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        digest = _hash(body)
        slot = body["slot"]
        day, _ = parse_slot(slot)
        if parse_date(day).weekday() >= 5:
            raise DealerRequestError(409, "slot_taken", "the workshop is closed at weekends; pick a weekday")
        with self._write():
            earlier = self._replay(_REPLAY_BOOKINGS, key, digest, "booking")
            if earlier is not None:
                return earlier, False
            if self._db.execute("SELECT 1 FROM bookings WHERE slot = ?", (slot,)).fetchone():
                raise DealerRequestError(409, "slot_taken", f"{slot} is already booked; pick another slot")
            record = {
                "bookingId": "B-" + secrets.token_hex(6).upper(),
                "status": "confirmed",
                "slot": slot,
                "note": body.get("note", ""),
                "vin": body.get("vin"),
                "created": time.time(),
            }
            self._db.execute(
                "INSERT INTO bookings VALUES (?, ?, ?, ?, ?, ?)",
                (record["bookingId"], key, digest, slot, json.dumps(record), record["created"]),
            )
        return record, True
