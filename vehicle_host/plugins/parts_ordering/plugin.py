"""The ``parts_ordering`` plugin (namespace ``parts``): find, order and book at the dealer.

It talks only to the dealer service at ``service_url`` (config; default the reference dealer
service on loopback, see :mod:`vehicle_host.dealer_service`), with ``timeout_s`` (default 5 s) per
request. Catalog reads (``parts.search``, ``parts.fitment``, ``parts.suggest``, ``parts.slots``)
go straight to the dealer. Each app has its own cart in SQLite. ``parts.order`` and ``parts.book``
first commit the order or booking to the outbox (:mod:`.outbox`) with an idempotency key, then try
to deliver it at once; offline it stays ``queued`` and a background task retries with exponential
back-off (``retry_base_s`` default 2 s, ``retry_max_s`` default 300 s), also after a restart. The
dealer answers a repeated key with the same record, so a retry after a lost answer is safe.

``parts.watchOrders`` streams ``{order, orders}``: the entry that changed (``null`` in the first
event) and the app's 20 latest orders and bookings, so the newest event is always complete even if
the host coalesces events.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from vehicle_host.plugins.contract import (
    NO_ARGS,
    CallContext,
    InvalidArguments,
    PluginContext,
    StatePlugin,
    config_number,
    method,
    object_schema,
    stop_task,
)
from vehicle_host.plugins.parts_ordering.client import (
    DealerClient,
    DealerNoAnswer,
    DealerRejected,
    DealerUnreachable,
)
from vehicle_host.plugins.parts_ordering.outbox import FILENAME, PENDING, PartsDB

DEFAULT_URL = "http://127.0.0.1:18470"
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_RETRY_BASE_S = 2.0
DEFAULT_RETRY_MAX_S = 300.0
WATCH_LIST = 20

_PN = {"type": "string", "pattern": "^[A-Za-z0-9-]{1,32}$"}
_VIN = {"type": "string", "pattern": "^[A-HJ-NPR-Za-hj-npr-z0-9]{17}$"}
_NOTE = {"type": "string", "maxLength": 500}
_DATE = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_OBJ: dict[str, Any] = {"type": "object"}
_ORDER_VIEW: dict[str, Any] = {
    "type": "object",
    "properties": {
        "orderId": {"type": "string"},
        "kind": {"enum": ["order", "booking"]},
        "status": {"enum": ["queued", "sent", "confirmed", "backordered", "rejected"]},
    },
    "required": ["orderId", "kind", "status"],
}
_PLACED: dict[str, Any] = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "orderId": {"type": "string"}},
    "required": ["status", "orderId"],
}


def view(entry: dict[str, Any]) -> dict[str, Any]:
    """An outbox entry as apps see it."""
    remote = entry["remote"] or {}
    out: dict[str, Any] = {
        "orderId": entry["id"],
        "kind": entry["kind"],
        "status": entry["status"],
        "attempts": entry["attempts"],
        "created": entry["created"],
        "updated": entry["updated"],
        **{k: v for k, v in entry["payload"].items() if k != "vin"},
    }
    if entry["error"]:
        out["error"] = entry["error"]
    if remote:
        out["dealerId"] = remote.get("orderId") or remote.get("bookingId")
        for key in ("totalCents", "currency", "items"):
            if key in remote:
                out[key] = remote[key]
    return out


class PartsOrderingPlugin(StatePlugin[PartsDB]):
    name = "parts_ordering"
    version = "1.0.0"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        config = context.config
        url = config.get("service_url", DEFAULT_URL)
        timeout = config_number(config, "timeout_s", DEFAULT_TIMEOUT_S, 0.1, 60)
        self.client = DealerClient(url if isinstance(url, str) else DEFAULT_URL, timeout)
        self.retry_base_s = config_number(config, "retry_base_s", DEFAULT_RETRY_BASE_S, 0.01, 3600)
        self.retry_max_s = max(
            self.retry_base_s, config_number(config, "retry_max_s", DEFAULT_RETRY_MAX_S, 0.01, 86400)
        )
        vin = config.get("vin")
        self.vin = vin.upper() if isinstance(vin, str) and len(vin) == 17 and vin.isalnum() else None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._deliver_lock = asyncio.Lock()
        self._watchers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}

    async def start(self) -> None:
        await self.open_db(PartsDB, FILENAME)
        self._task = asyncio.create_task(self._deliver_loop(), name="parts-outbox")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        await stop_task(task)
        async with self._deliver_lock:
            await self.close_db()

    # -- delivery ---------------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self._deliver_due()
            except Exception:  # e.g. a full disk while recording a status: back off, never spin
                self.context.log.exception("parts outbox delivery failed; retrying later")
                await asyncio.sleep(self.retry_base_s)
            next_at = await asyncio.to_thread(self.db.next_due)
            wait = 60.0 if next_at is None else min(60.0, max(0.0, next_at - time.time()))
            if wait > 0 and not self._wake.is_set():
                waiter = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({waiter}, timeout=wait)  # unlike wait_for, never eats a cancel
                finally:
                    waiter.cancel()

    async def _deliver_due(self, only: str | None = None) -> None:
        async with self._deliver_lock:
            for entry in await asyncio.to_thread(self.db.due, time.time()):
                if only is None or entry["id"] == only:
                    await self._deliver(entry)

    async def _deliver(self, entry: dict[str, Any]) -> None:
        db, loop = self.db, asyncio.get_running_loop()
        payload = dict(entry["payload"])
        if self.vin is not None:
            payload["vin"] = self.vin

        def connected() -> None:  # runs on the request's thread, before the request is written
            if entry["status"] != "sent":
                sent = db.update(entry["id"], status="sent")
                loop.call_soon_threadsafe(self._publish, sent)

        path = ["v1", "orders" if entry["kind"] == "order" else "bookings"]
        attempts = entry["attempts"] + 1
        try:
            _, record = await asyncio.to_thread(self.client.post, path, payload, entry["key"], connected)
        except (DealerUnreachable, DealerNoAnswer) as exc:
            delay = min(self.retry_max_s, self.retry_base_s * 2 ** min(attempts - 1, 20))
            delay *= random.uniform(0.8, 1.2)
            await asyncio.to_thread(
                db.update, entry["id"], attempts=attempts, next_at=time.time() + delay, error=str(exc)
            )
            return
        except DealerRejected as exc:
            done = await asyncio.to_thread(
                db.update, entry["id"], status="rejected", attempts=attempts, error=str(exc)
            )
            self._publish(done)
            return
        status = record.get("status") if record.get("status") in ("confirmed", "backordered") else "confirmed"
        done = await asyncio.to_thread(
            db.update, entry["id"], status=status, attempts=attempts, error=None, remote=record
        )
        self._publish(done)

    def _publish(self, entry: dict[str, Any]) -> None:
        for queue in self._watchers.get(entry["app_id"], ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(entry)

    async def _dealer(self, path: list[str], params: list[tuple[str, str]]) -> dict[str, Any]:
        try:
            return await asyncio.to_thread(self.client.get, path, params)
        except DealerRejected as exc:
            raise InvalidArguments(str(exc)) from None
        except (DealerUnreachable, DealerNoAnswer) as exc:
            raise type(exc)(f"{exc}; check the connection and try again") from None

    # -- catalog ----------------------------------------------------------------------------------

    @method(
        "parts.search",
        permission="parts.read",
        args=object_schema({"query": {"type": "string", "minLength": 1, "maxLength": 64}}, ("query",)),
        result={"type": "object", "properties": {"parts": {"type": "array"}}, "required": ["parts"]},
    )
    async def search(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Search the dealer's catalog by keyword or part number."""
        return await self._dealer(["v1", "parts"], [("q", args["query"])])

    @method(
        "parts.fitment",
        permission="parts.read",
        args=object_schema({"partNumber": _PN, "vin": _VIN}, ("partNumber", "vin")),
        result={"type": "object", "properties": {"fits": {"type": "boolean"}}, "required": ["fits"]},
    )
    async def fitment(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Whether a part fits the vehicle with this VIN."""
        return await self._dealer(
            ["v1", "parts", args["partNumber"].upper(), "fitment"], [("vin", args["vin"])]
        )

    @method(
        "parts.suggest",
        permission="parts.read",
        args={
            "type": "object",
            "properties": {
                "dtcs": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 20,
                    "items": {"type": "string", "pattern": "^[PCBUpcbu][0-9A-Fa-f]{4}$"},
                },
                "vin": _VIN,
            },
            "required": ["dtcs"],
            "additionalProperties": False,
        },
        result={
            "type": "object",
            "properties": {"suggestions": {"type": "array"}},
            "required": ["suggestions"],
        },
    )
    async def suggest(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Parts that usually fix these trouble codes (only those that fit ``vin``, if given)."""
        params = [("dtc", str(d).upper()) for d in args["dtcs"]]
        if "vin" in args:
            params.append(("vin", args["vin"]))
        return await self._dealer(["v1", "suggestions"], params)

    @method(
        "parts.slots",
        permission="parts.read",
        args=object_schema({"date": _DATE}, ("date",)),
        result={"type": "object", "properties": {"slots": {"type": "array"}}, "required": ["slots"]},
    )
    async def slots(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Free workshop slots on a date (``YYYY-MM-DD``)."""
        return await self._dealer(["v1", "slots"], [("date", args["date"])])

    # -- cart -------------------------------------------------------------------------------------

    async def _cart(self, app_id: str) -> dict[str, Any]:
        items = await asyncio.to_thread(self.db.cart, app_id)
        total = sum(int(i.get("priceCents", 0)) * int(i["quantity"]) for i in items)
        return {"items": items, "totalCents": total}

    @method(
        "parts.cartAdd",
        permission="parts.read",
        args=object_schema(
            {"partNumber": _PN, "quantity": {"type": "integer", "minimum": 1, "maximum": 99}},
            ("partNumber", "quantity"),
        ),
        result=_OBJ,
    )
    async def cart_add(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Put a part in the app's cart (sets its quantity); offline the part is checked at order time."""
        pn = args["partNumber"].upper()
        info: dict[str, Any] = {}
        try:
            found = await asyncio.to_thread(self.client.get, ["v1", "parts"], [("q", pn)])
        except (DealerUnreachable, DealerNoAnswer):
            info = {"unverified": True}
        else:
            match = [p for p in found.get("parts", []) if isinstance(p, dict) and p.get("partNumber") == pn]
            if not match:
                raise InvalidArguments(f"the dealer has no part {pn}; use parts.search to find its number")
            info = {k: match[0][k] for k in ("name", "priceCents", "currency") if k in match[0]}
        await asyncio.to_thread(self.db.cart_add, call.app_id, pn, int(args["quantity"]), info)
        return await self._cart(call.app_id)

    @method(
        "parts.cartRemove",
        permission="parts.read",
        args=object_schema({"partNumber": _PN}, ("partNumber",)),
        result=_OBJ,
    )
    async def cart_remove(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Take a part out of the app's cart."""
        removed = await asyncio.to_thread(self.db.cart_remove, call.app_id, args["partNumber"].upper())
        return {"removed": removed, **await self._cart(call.app_id)}

    @method("parts.cart", permission="parts.read", args=NO_ARGS, result=_OBJ)
    async def cart(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """The app's cart: ``{items, totalCents}``."""
        return await self._cart(call.app_id)

    # -- orders and bookings ----------------------------------------------------------------------

    async def _place(self, entry: dict[str, Any], id_key: str) -> dict[str, Any]:
        """The entry is committed to the outbox: from here on the call succeeds. A first delivery
        that fails locally (e.g. a full disk while recording its status) leaves it for the retry
        loop; failing the call would make the app think nothing was ordered."""
        self._publish(entry)
        try:
            await self._deliver_due(only=entry["id"])
        except Exception:
            self.context.log.exception("first delivery of %s failed; it stays in the outbox", entry["id"])
        current = await asyncio.to_thread(self.db.get, entry["id"]) or entry
        self._wake.set()
        result = view(current)
        result[id_key] = current["id"]
        return result

    @method(
        "parts.order",
        permission="parts.order",
        consent=True,
        args={"type": "object", "properties": {"note": _NOTE}, "additionalProperties": False},
        result=_PLACED,
        timeout_s=30.0,
    )
    async def order(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Order the cart: ``{status: confirmed | queued | ..., orderId}`` (queued offline, sent later)."""
        extra = {"note": args["note"]} if "note" in args else {}
        entry = await asyncio.to_thread(self.db.enqueue_order, call.app_id, extra)
        return await self._place(entry, "orderId")

    @method(
        "parts.book",
        permission="parts.order",
        consent=True,
        args={
            "type": "object",
            "properties": {
                "slot": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}$"},
                "note": _NOTE,
            },
            "required": ["slot"],
            "additionalProperties": False,
        },
        result=_PLACED,
        timeout_s=30.0,
    )
    async def book(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Book a workshop slot (from parts.slots): ``{status, orderId}``, queued offline like orders."""
        payload = {"slot": args["slot"], **({"note": args["note"]} if "note" in args else {})}
        entry = await asyncio.to_thread(self.db.enqueue_booking, call.app_id, payload)
        return await self._place(entry, "orderId")

    @method(
        "parts.orders",
        permission="parts.read",
        args=NO_ARGS,
        result={
            "type": "object",
            "properties": {"orders": {"type": "array", "items": _ORDER_VIEW}},
            "required": ["orders"],
        },
    )
    async def orders(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """The app's orders and bookings, newest first, with their status."""
        return {"orders": [view(e) for e in await asyncio.to_thread(self.db.entries, call.app_id)]}

    @method(
        "parts.watchOrders",
        permission="parts.read",
        streams=True,
        rate_hz=10,
        args=NO_ARGS,
        result={
            "type": "object",
            "properties": {"order": {"oneOf": [_ORDER_VIEW, {"type": "null"}]}, "orders": {"type": "array"}},
            "required": ["order", "orders"],
        },
    )
    async def watch_orders(self, args: dict[str, Any], call: CallContext) -> AsyncIterator[dict[str, Any]]:
        """Status changes of the app's orders and bookings (queued -> sent -> confirmed) until cancelled."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._watchers.setdefault(call.app_id, set()).add(queue)
        try:
            latest = await asyncio.to_thread(self.db.entries, call.app_id, WATCH_LIST)
            yield {"order": None, "orders": [view(e) for e in latest]}
            while True:
                entry = await queue.get()
                latest = await asyncio.to_thread(self.db.entries, call.app_id, WATCH_LIST)
                yield {"order": view(entry), "orders": [view(e) for e in latest]}
        finally:
            watchers = self._watchers.get(call.app_id, set())
            watchers.discard(queue)
            if not watchers:
                self._watchers.pop(call.app_id, None)


__all__ = ["PENDING", "PartsOrderingPlugin"]
