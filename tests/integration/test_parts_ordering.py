"""The parts_ordering plugin against the real reference dealer service on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.dealer_service import DealerHandler, DealerServer, serve
from vehicle_host.plugins.contract import CallContext, PluginContext, PluginError
from vehicle_host.plugins.parts_ordering.plugin import PartsOrderingPlugin

pytestmark = pytest.mark.integration
VIN = "WVWZZZ1KZEW000001"
FAST = {"retry_base_s": 0.05, "retry_max_s": 0.2, "timeout_s": 2.0}


async def _no_publish(key: str, value: Any) -> None:
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(state: Path, url: str, body: Callable[[PartsOrderingPlugin], Awaitable[None]]) -> None:
    async def main() -> None:
        plugin = PartsOrderingPlugin(
            PluginContext(
                config={"service_url": url, **FAST}, publish_state=_no_publish, state_dir=str(state)
            )
        )
        await plugin.start()
        try:
            await asyncio.wait_for(body(plugin), 20)
        finally:
            await plugin.stop()

    asyncio.run(main())


async def call(p: PartsOrderingPlugin, method: str, args: dict[str, Any], app: str = "com.demo") -> Any:
    decl = {m.name: m for m in p.declarations()}[method]
    return await p.call(decl, args, CallContext(app_id=app, call_id=1, method=method))


async def wait_status(p: PartsOrderingPlugin, order_id: str, wanted: str) -> dict[str, Any]:
    while True:
        orders = {o["orderId"]: o for o in (await call(p, "parts.orders", {}))["orders"]}
        found: dict[str, Any] = orders[order_id]
        if found["status"] == wanted:
            return found
        await asyncio.sleep(0.05)


@pytest.fixture
def dealer(tmp_path: Path) -> Any:
    srv = serve("127.0.0.1", 0, tmp_path / "dealer.sqlite3")
    yield srv
    srv.shutdown()
    srv.server_close()


def test_declarations_need_permissions() -> None:
    decls = {m.name: m for m in PartsOrderingPlugin.declarations()}
    assert decls["parts.order"].permission == "parts.order" and decls["parts.order"].consent
    assert decls["parts.book"].permission == "parts.order" and decls["parts.book"].consent
    for name in (
        "parts.search",
        "parts.fitment",
        "parts.suggest",
        "parts.cart",
        "parts.orders",
        "parts.slots",
    ):
        assert decls[name].permission == "parts.read" and not decls[name].consent
    assert decls["parts.watchOrders"].streams


def test_search_fitment_suggest_and_online_order(tmp_path: Path, dealer: DealerServer) -> None:
    async def body(p: PartsOrderingPlugin) -> None:
        found = await call(p, "parts.search", {"query": "ignition coil"})
        assert {x["partNumber"] for x in found["parts"]} == {"IC-2001", "IC-2002"}
        assert (await call(p, "parts.fitment", {"partNumber": "ic-2001", "vin": VIN}))["fits"] is True
        sugg = await call(p, "parts.suggest", {"dtcs": ["P0301", "p0171"], "vin": VIN})
        assert {"SP-1001", "IC-2001", "MAF-4001"} <= {s["part"]["partNumber"] for s in sugg["suggestions"]}
        with pytest.raises(PluginError, match="no part NOPE-9"):
            await call(p, "parts.cartAdd", {"partNumber": "NOPE-9", "quantity": 1})
        with pytest.raises(PluginError, match="cart is empty"):
            await call(p, "parts.order", {})
        await call(p, "parts.cartAdd", {"partNumber": "SP-1001", "quantity": 4})
        await call(p, "parts.cartAdd", {"partNumber": "IC-2001", "quantity": 1})
        cart = await call(p, "parts.cartRemove", {"partNumber": "IC-2001"}, app="com.demo")
        assert cart["removed"] and cart["totalCents"] == 4 * 1290
        assert (await call(p, "parts.cart", {}, app="com.other"))["items"] == []
        placed = await call(p, "parts.order", {"note": "weekend"})
        assert placed["status"] == "confirmed" and placed["dealerId"].startswith("D-")
        assert (await call(p, "parts.cart", {}))["items"] == []
        assert dealer.store.order(placed["dealerId"])["items"][0]["quantity"] == 4

    run(tmp_path / "state", dealer.url, body)
    assert dealer.store.order_count() == 1


def test_offline_order_is_queued_then_delivered_once_with_a_watch(tmp_path: Path) -> None:
    port = free_port()
    holder: dict[str, DealerServer] = {}

    async def body(p: PartsOrderingPlugin) -> None:
        with pytest.raises(PluginError, match="unreachable"):
            await call(p, "parts.search", {"query": "spark"})
        await call(p, "parts.cartAdd", {"partNumber": "OF-6001", "quantity": 2})  # unverified offline
        decl = {m.name: m for m in p.declarations()}["parts.watchOrders"]
        stream: AsyncIterator[dict[str, Any]] = p.stream(decl, {}, CallContext("com.demo", 2, decl.name))
        assert (await anext(stream))["order"] is None
        placed = await call(p, "parts.order", {})
        assert placed["status"] == "queued" and placed["orderId"].startswith("O-")
        holder["srv"] = serve("127.0.0.1", port, tmp_path / "dealer.sqlite3")
        seen: list[str] = []
        while not seen or seen[-1] != "confirmed":
            event = await anext(stream)
            seen.append(event["order"]["status"])
        assert seen[0] == "queued" and "sent" in seen
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)  # further retries would happen here if delivery were not final

    try:
        run(tmp_path / "state", f"http://127.0.0.1:{port}", body)
        assert holder["srv"].store.order_count() == 1
    finally:
        if "srv" in holder:
            holder["srv"].shutdown()
            holder["srv"].server_close()


class DropOnce(DealerHandler):
    """Processes the first POST, then closes the connection without answering."""

    dropped = 0

    def respond(self, status: int, body: Any) -> None:
        if self.command == "POST" and DropOnce.dropped == 0:
            DropOnce.dropped += 1
            self.close_connection = True
            return
        super().respond(status, body)


def test_a_lost_answer_is_retried_without_a_second_order(tmp_path: Path) -> None:
    srv = serve("127.0.0.1", 0, tmp_path / "dealer.sqlite3", handler=DropOnce)

    async def body(p: PartsOrderingPlugin) -> None:
        await call(p, "parts.cartAdd", {"partNumber": "BP-5101", "quantity": 1})
        placed = await call(p, "parts.order", {})
        assert placed["status"] == "sent" and srv.store.order_count() == 1
        done = await wait_status(p, placed["orderId"], "confirmed")
        assert done["attempts"] >= 2

    try:
        run(tmp_path / "state", srv.url, body)
        assert DropOnce.dropped == 1 and srv.store.order_count() == 1
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_queued_order_is_delivered_after_a_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ids: list[str] = []

    async def offline(p: PartsOrderingPlugin) -> None:
        await call(p, "parts.cartAdd", {"partNumber": "AF-4201", "quantity": 1})
        ids.append((await call(p, "parts.order", {}))["orderId"])
        slot_booking = await call(p, "parts.book", {"slot": "2025-07-01T09:00"})
        assert slot_booking["status"] == "queued"
        ids.append(slot_booking["orderId"])

    run(tmp_path / "state", url, offline)
    srv = serve("127.0.0.1", port, tmp_path / "dealer.sqlite3")

    async def online(p: PartsOrderingPlugin) -> None:
        for order_id in ids:
            await wait_status(p, order_id, "confirmed")
        slots = await call(p, "parts.slots", {"date": "2025-07-01"})
        assert "2025-07-01T09:00" not in slots["slots"]
        again = await call(p, "parts.book", {"slot": "2025-07-01T09:00"})
        assert again["status"] == "rejected" and "already booked" in again["error"]

    try:
        run(tmp_path / "state", url, online)
        assert srv.store.order_count() == 1 and srv.store.booking_count() == 1
    finally:
        srv.shutdown()
        srv.server_close()


def test_only_the_configured_service_is_contacted(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="service_url"):
        PartsOrderingPlugin(PluginContext(config={"service_url": "ftp://x"}, publish_state=_no_publish))
    decl = {m.name: m for m in PartsOrderingPlugin.declarations()}["parts.search"]
    assert "url" not in decl.args["properties"]
