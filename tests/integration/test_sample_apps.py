"""The sample mini-apps in ``examples/``: every one loads and compiles, and the parts-ordering,
service-booking and summer-campaign apps run for real: their logic in a worker started by a real hub,
``fc.vehicle.*`` answered by the can_diagnostics plugin talking to the ECU simulator over the vhbus
virtual CAN, ``fc.parts.*`` by the parts_ordering plugin talking to the reference dealer service on
127.0.0.1, and ``fc.request`` by the network plugin. The test plays the shell: it taps handlers,
answers consent questions and follows the page data."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import can
import jsonschema
import pytest

from tests.conftest import EXAMPLES, HubProcess, start_hub
from vehicle_host.bundles import catalog
from vehicle_host.dealer_service import DealerServer, serve
from vehicle_host.dealer_service.catalog import CAMPAIGNS
from vehicle_host.hub.client import HubClient
from vehicle_host.simulator import Scenario, Simulator

pytestmark = pytest.mark.integration

NEW_APPS = {
    "parts-ordering": "org.vehiclehost.samples.partsordering",
    "service-booking": "org.vehiclehost.samples.servicebooking",
    "summer-campaign": "org.vehiclehost.samples.summercampaign",
}
DEMO_DEALER = "127.0.0.1:18470"  # where the campaign app looks in the demo


# -- every example loads and compiles -----------------------------------------------------------


def test_every_example_directory_is_an_app_that_loads() -> None:
    apps, broken = catalog.scan(EXAMPLES)
    assert broken == []
    dirs = {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    assert {a.path.name for a in apps} == dirs
    assert set(NEW_APPS) <= dirs
    assert len({a.manifest.app_id for a in apps}) == len(apps)


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_every_page_compiles_and_the_sources_bundle(name: str) -> None:
    apps, _ = catalog.scan(EXAMPLES)
    app = next(a for a in apps if a.path.name == name)
    sources = catalog.bundle_sources(app)
    assert "app.js" in sources
    for route in app.manifest.pages:
        page = catalog.compile_page(app, route)
        assert page is not None
        assert f"{route}.js" in sources
    config = catalog.page_config(app)
    assert list(config["pages"]) == list(app.manifest.pages)


def test_the_new_apps_declare_what_they_use() -> None:
    apps = {a.path.name: a.manifest for a in catalog.scan(EXAMPLES)[0]}
    parts = apps["parts-ordering"]
    assert {"vehicle.diagnostics.read", "parts.read", "parts.order"} <= set(parts.permissions)
    assert not parts.driving_safe  # many taps: only while parked
    assert {"parts.read", "parts.order"} <= set(apps["service-booking"].permissions)
    assert not apps["service-booking"].driving_safe
    campaign = apps["summer-campaign"]
    assert campaign.allow_list == (DEMO_DEALER,) and campaign.permissions == ()
    assert DEMO_DEALER in (EXAMPLES / "summer-campaign" / "config.js").read_text()


# -- the apps against real plugins -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dealer:
    """The reference dealer service on a fixed loopback port that can go offline and come back."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.port = free_port()
        self.server: DealerServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = serve("127.0.0.1", self.port, self.db)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def store(self) -> Any:
        assert self.server is not None
        return self.server.store


@dataclass
class Rig:
    hub: HubProcess
    dealer: Dealer
    sim: Simulator


@pytest.fixture
def rig(short_dir: Path) -> Iterator[Rig]:
    apps = short_dir / "apps"
    for name in NEW_APPS:
        shutil.copytree(EXAMPLES / name, apps / name)
    dealer = Dealer(short_dir / "dealer.sqlite3")
    # the demo's dealer is on port 18470; this one is on a free port: point the copy's allow-list at it
    campaign = apps / "summer-campaign"
    for path in (campaign / "app.json", campaign / "config.js"):
        path.write_text(path.read_text().replace(DEMO_DEALER, f"127.0.0.1:{dealer.port}"))
    endpoint = f"ipc://{short_dir / 'can0.sock'}"
    bus = can.Bus(interface="vhbus", channel=endpoint)
    sim = Simulator(bus, Scenario.default())
    sim.park(True)
    sim.start()
    config = short_dir / "host.toml"
    parts = {"service_url": dealer.url, "retry_base_s": 0.1, "retry_max_s": 0.3, "timeout_s": 2.0}
    config.write_text(
        f'[plugins.can_diagnostics]\ninterface = "vhbus"\nchannel = "{endpoint}"\nrequest_timeout = 4.0\n\n'
        "[plugins.parts_ordering]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in parts.items())
    )
    plugins = "storage,network,can_diagnostics,parts_ordering"
    hub = start_hub(short_dir, apps, plugins=plugins, config=config)
    try:
        yield Rig(hub, dealer, sim)
    finally:
        hub.stop()
        sim.stop()
        bus.shutdown()
        dealer.stop()


@dataclass
class Screen:
    """One page of a running app as the shell sees it: the page data, kept up to date from
    ``page.render`` and ``page.setData``; consent questions are answered "allow"."""

    shell: HubClient
    app_id: str
    page_id: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def open(self) -> None:
        self.shell.send("app.launch", "hub", {"app_id": self.app_id})
        opened = await self.shell.expect("page.open", timeout=20, app_id=self.app_id)
        self.page_id = int(opened.payload["page_id"])

    def tap(self, handler: str, **dataset: Any) -> None:
        event = {"type": "tap", "currentTarget": {"id": "", "dataset": dataset}}
        payload = {"page_id": self.page_id, "handler": handler, "event": event}
        self.shell.send("page.event", f"app:{self.app_id}", payload)

    async def until(self, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 25) -> None:
        async def follow() -> None:
            while not check(self.data):
                message = await self.shell.inbox.get()
                p = message.payload
                if message.type == "page.render" and p.get("page_id") == self.page_id:
                    self.data.update(p["data"])
                elif message.type == "page.setData" and p.get("page_id") == self.page_id:
                    self.data.update(p["diff"])
                elif message.type == "ui.request" and p.get("kind") == "consent":
                    self.asked.append(p["params"]["permission"])
                    reply = {"request_id": p["request_id"], "result": {"granted": True}}
                    self.shell.send("ui.response", "hub", reply)

        try:
            await asyncio.wait_for(follow(), timeout)
        except TimeoutError:
            raise AssertionError(f"the page never showed {what}; its data: {self.data}") from None


def run(rig: Rig, app_id: str, body: Callable[[Screen], Any]) -> None:
    async def main() -> None:
        shell = HubClient(rig.hub.endpoint, role="shell")
        await shell.connect()
        try:
            while True:  # the diagnostics plugin is on the bus and decoded the simulator's frames
                state = await shell.expect("state.changed", timeout=20, key="vehicle")
                if state.payload["value"].get("parked") is True:
                    break
            screen = Screen(shell, app_id)
            await screen.open()
            await body(screen)
        finally:
            await shell.close()

    try:
        asyncio.run(main())
    except BaseException:
        print(rig.hub.log()[-4000:])
        raise


def test_parts_ordering_from_trouble_codes_to_a_confirmed_and_a_queued_order(rig: Rig) -> None:
    async def body(screen: Screen) -> None:
        await screen.until("trouble codes", lambda d: bool(d.get("dtcs")) and not d.get("dtcLoading"))
        assert {"P0301", "P0420"} <= {d["code"] for d in screen.data["dtcs"]}
        assert screen.data["vin"] == "1VHDA5E26NA104729"
        await screen.until("suggestions", lambda d: bool(d.get("suggestions")))
        part = screen.data["suggestions"][0]["partNumber"]
        screen.tap("onAdd", pn=part)
        await screen.until("the part in the cart", lambda d: d.get("cartCount") == 1)
        screen.tap("onMore", pn=part)
        await screen.until("two of them", lambda d: d.get("cartCount") == 2)
        screen.tap("onOrder")
        await screen.until(
            "the confirmation", lambda d: "Confirmed by the dealer" in d.get("orderNotice", "")
        )
        assert screen.asked == ["parts.order"]
        orders = rig.dealer.store.order_count()
        assert orders == 1
        placed = screen.data["lastOrderId"]
        await screen.until(
            "the order in the list",
            lambda d: any(o["orderId"] == placed and o["dealerId"] for o in d.get("orders", [])),
        )
        dealer_id = next(o["dealerId"] for o in screen.data["orders"] if o["orderId"] == placed)
        record = rig.dealer.store.order(dealer_id)
        assert [(i["partNumber"], i["quantity"]) for i in record["items"]] == [(part, 2)]
        assert record["note"] == "VIN 1VHDA5E26NA104729"
        await screen.until("an empty cart", lambda d: d.get("cartCount") == 0)

        rig.dealer.stop()  # offline: the order waits in the outbox
        screen.tap("onAdd", pn=part)
        await screen.until("the part in the cart offline", lambda d: d.get("cartCount") == 1)
        screen.tap("onOrder")
        await screen.until(
            "the queued notice", lambda d: "Queued, will be sent when online" in d.get("orderNotice", "")
        )
        queued = screen.data["lastOrderId"]
        assert queued != placed and screen.data["orderStatus"] == "queued"
        rig.dealer.start()  # back online: the outbox delivers it and parts.watchOrders reports it
        await screen.until("the live confirmation", lambda d: d.get("orderStatus") == "confirmed")
        assert queued in screen.data["orderNotice"]
        assert rig.dealer.store.order_count() == 2

    run(rig, NEW_APPS["parts-ordering"], body)


def test_service_booking_books_a_free_slot_and_copes_without_notifications(rig: Rig) -> None:
    async def body(screen: Screen) -> None:
        await screen.until("free slots", lambda d: bool(d.get("slots")) and not d.get("loading"))
        date, slot = screen.data["date"], screen.data["slots"][0]["slot"]
        assert slot.startswith(date + "T")
        screen.tap("onSlot", slot=slot)
        await screen.until("the chosen slot", lambda d: d.get("selected") == slot)
        screen.tap("onBook")
        await screen.until("the booking", lambda d: "Confirmed by the workshop" in d.get("notice", ""))
        assert screen.asked == ["parts.order"]
        assert rig.dealer.store.booking_count() == 1
        assert slot not in rig.dealer.store.free_slots(date)
        # no notifications plugin runs here: the reminder fails and the page says so
        await screen.until("the reminder outcome", lambda d: bool(d.get("reminderNote")))
        assert screen.data["reminderNote"].startswith("No reminder set")
        assert "not available on this head unit" in screen.data["reminderNote"]
        await screen.until(
            "the slot gone from the list", lambda d: slot not in [s["slot"] for s in d["slots"]]
        )
        await screen.until("the booking listed", lambda d: len(d.get("bookings", [])) == 1)
        assert screen.data["bookings"][0]["status"] == "confirmed"

    run(rig, NEW_APPS["service-booking"], body)


def test_summer_campaign_lists_the_dealers_offers(rig: Rig) -> None:
    async def body(screen: Screen) -> None:
        await screen.until("the offers", lambda d: bool(d.get("campaigns")))
        assert [c["id"] for c in screen.data["campaigns"]] == [c["id"] for c in CAMPAIGNS]
        assert screen.data["campaigns"][0]["price"] == "€79.00" and screen.data["error"] == ""
        rig.dealer.stop()
        screen.tap("onRefresh")
        await screen.until("the error", lambda d: bool(d.get("error")))
        assert "failed" in screen.data["error"]
        assert [c["id"] for c in screen.data["campaigns"]] == [c["id"] for c in CAMPAIGNS]  # kept

    run(rig, NEW_APPS["summer-campaign"], body)


# -- the service-booking reminder against the notifications plugin --------------------------------
# (that plugin is not registered with the hub yet, so this runs the app's logic in the worker
# harness and lets the real plugin answer its notifications.schedule call)


def test_service_booking_schedules_its_reminder_with_the_notifications_plugin(tmp_path: Path) -> None:
    from vehicle_host.logic_worker.harness import FakeHub
    from vehicle_host.plugins.contract import CallContext, PluginContext
    from vehicle_host.plugins.notifications import NotificationsPlugin

    async def no_publish(key: str, value: Any) -> None:
        return None

    app = next(a for a in catalog.scan(EXAMPLES)[0] if a.path.name == "service-booking")
    names = ["parts.slots", "parts.book", "notifications.schedule"]
    hub = FakeHub()
    hub.start(catalog.bundle_sources(app), config=catalog.page_config(app), apis=[{"name": n} for n in names])
    slots = hub.calls("parts.slots")
    assert len(slots) == 1 and hub.errors() == []
    date = slots[0]["args"]["date"]
    hub.answer(slots[0]["call_id"], {"date": date, "slots": [f"{date}T09:00", f"{date}T10:00"]})
    hub.event("onSlot", {"currentTarget": {"id": "", "dataset": {"slot": f"{date}T10:00"}}})
    hub.event("onBook")
    book = hub.calls("parts.book")[-1]
    assert book["args"]["slot"] == f"{date}T10:00"
    hub.answer(book["call_id"], {"status": "queued", "orderId": "B-1", "kind": "booking"})
    schedule = hub.calls("notifications.schedule")[-1]

    async def answer() -> dict[str, Any]:
        plugin = NotificationsPlugin(
            PluginContext(config={}, publish_state=no_publish, state_dir=str(tmp_path))
        )
        await plugin.start()
        try:
            decls = {m.name: m for m in plugin.declarations()}
            decl = decls["notifications.schedule"]
            jsonschema.validate(schedule["args"], decl.args)  # what the hub's gateway checks
            ctx = CallContext(app_id=app.manifest.app_id, call_id=1, method=decl.name)
            result = await plugin.call(decl, schedule["args"], ctx)
            listed = await plugin.call(
                {m.name: m for m in plugin.declarations()}["notifications.list"], {}, ctx
            )
            assert len(listed["reminders"]) == 1
            return dict(result)
        finally:
            await plugin.stop()

    hub.answer(schedule["call_id"], asyncio.run(answer()))
    merged: dict[str, Any] = {}
    for diff in hub.diffs():
        merged.update(diff)
    assert merged["notice"].endswith("Queued, will be sent when online")
    assert merged["reminderNote"] == "Reminder set 1 hour before the visit."
    assert schedule["args"]["title"] and "10:00" in schedule["args"]["body"]
    assert hub.errors() == []
