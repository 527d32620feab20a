"""The notifications plugin on a real SQLite file and through a real plugin host process: banners,
rate and length limits, reminders that fire when due, also after a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.hub.gateway import AppPolicy, decide, rules_from_declare
from vehicle_host.plugins import notifications
from vehicle_host.plugins.contract import CallContext, InvalidArguments, PluginError
from vehicle_host.plugins.notifications import NotificationsPlugin, RateLimited

from .plugin_process import FakeHub, Published, run_plugin

pytestmark = pytest.mark.integration


def with_plugin(
    state_dir: Path, body: Callable[[NotificationsPlugin, Published], Awaitable[None]], **config: Any
) -> Published:
    return run_plugin(NotificationsPlugin, state_dir, body, **config)


async def call(plugin: NotificationsPlugin, method: str, args: dict[str, Any], app_id: str = "com.a") -> Any:
    decl = {m.name: m for m in plugin.declarations()}[method]
    return await plugin.call(decl, args, CallContext(app_id=app_id, call_id=1, method=method))


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_show_publishes_the_latest_notification(tmp_path: Path) -> None:
    async def body(p: NotificationsPlugin, published: Published) -> None:
        first = await call(
            p, "notifications.show", {"title": "Service due", "body": "In 500 km", "level": "warning"}
        )
        await call(p, "notifications.show", {"title": "Trip saved", "_allow": []}, app_id="com.b")
        assert [k for k, _ in published] == ["notifications.latest"] * 2
        value = published[0][1]
        assert value["id"] == first["id"] and value["app_id"] == "com.a"
        assert (value["title"], value["body"], value["level"]) == ("Service due", "In 500 km", "warning")
        assert isinstance(value["at"], int) and value["at"] > 1_600_000_000_000
        assert published[1][1]["level"] == "info" and published[1][1]["body"] == ""
        assert published[1][1]["id"] != first["id"]

    with_plugin(tmp_path, body)


def test_show_is_rate_limited_per_app_and_lengths_are_limited(tmp_path: Path) -> None:
    async def body(p: NotificationsPlugin, published: Published) -> None:
        for i in range(3):
            await call(p, "notifications.show", {"title": f"n{i}"})
        with pytest.raises(RateLimited, match=r"3 notifications in the last minute.*try again in") as info:
            await call(p, "notifications.show", {"title": "one too many"})
        assert info.value.code == "busy"
        await call(p, "notifications.show", {"title": "another app"}, app_id="com.b")  # per app
        for args, match in (
            ({"title": "t" * 81}, "1 to 80"),
            ({"title": "   "}, "1 to 80"),
            ({"title": "ok", "body": "b" * 501}, "at most 500"),
            ({"title": "ok", "level": "panic"}, "level must be one of"),
            ({"title": "bad \ud800"}, "valid Unicode"),
        ):
            with pytest.raises(InvalidArguments, match=match):
                await call(p, "notifications.show", args, app_id="com.c")
        assert len(published) == 4

    with_plugin(tmp_path, body, show_per_minute=3)


def test_reminders_fire_when_due_and_can_be_listed_and_cancelled(tmp_path: Path) -> None:
    async def body(p: NotificationsPlugin, published: Published) -> None:
        now = notifications._now_ms()
        later = await call(p, "notifications.schedule", {"title": "Later", "at": now + 3_600_000})
        soon = await call(p, "notifications.schedule", {"title": "Soon", "body": "b", "at": now + 300})
        other = await call(
            p, "notifications.schedule", {"title": "B's", "at": now + 7_200_000}, app_id="com.b"
        )
        listed = (await call(p, "notifications.list", {}))["reminders"]
        assert [r["id"] for r in listed] == [soon["id"], later["id"]]  # soonest first, only com.a's
        await wait_until(lambda: bool(published), "the reminder to fire")
        key, value = published[0]
        assert key == "notifications.latest"
        assert value == {**soon, "app_id": "com.a"}
        assert [r["id"] for r in (await call(p, "notifications.list", {}))["reminders"]] == [later["id"]]
        assert await call(p, "notifications.cancel", {"id": other["id"]}) == {
            "cancelled": False
        }  # not its own
        assert await call(p, "notifications.cancel", {"id": later["id"]}) == {"cancelled": True}
        assert (await call(p, "notifications.list", {}))["reminders"] == []
        assert len((await call(p, "notifications.list", {}, app_id="com.b"))["reminders"]) == 1

    with_plugin(tmp_path, body)


def test_reminder_limits_give_clear_errors(tmp_path: Path) -> None:
    async def body(p: NotificationsPlugin, published: Published) -> None:
        now = notifications._now_ms()
        for i in range(notifications.MAX_PENDING_PER_APP):
            await call(p, "notifications.schedule", {"title": f"r{i}", "at": now + 3_600_000 + i})
        with pytest.raises(PluginError, match="already has 50 pending reminders"):
            await call(p, "notifications.schedule", {"title": "51st", "at": now + 3_600_000})
        await call(p, "notifications.schedule", {"title": "other app", "at": now + 3_600_000}, app_id="com.b")
        for args, match in (
            ({"title": "past", "at": now - 120_000}, "in the past"),
            ({"title": "far", "at": now + 400 * 86_400_000}, "a year ahead"),
            ({"title": "float", "at": 1.5}, "Unix milliseconds"),
            ({"title": "long", "body": "x" * 501, "at": now + 1000}, "at most 500"),
        ):
            with pytest.raises(InvalidArguments, match=match):
                await call(p, "notifications.schedule", args, app_id="com.c")
        with pytest.raises(InvalidArguments, match="id must be"):
            await call(p, "notifications.cancel", {"id": 7})
        assert published == []

    with_plugin(tmp_path, body)


def test_reminders_due_while_the_plugin_was_stopped_fire_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1_800_000_000_000]
    monkeypatch.setattr(notifications, "_now_ms", lambda: clock[0])
    ids: list[str] = []

    async def schedule(p: NotificationsPlugin, published: Published) -> None:
        for minutes, title in ((90, "second"), (30, "first")):
            ids.append(
                (
                    await call(
                        p, "notifications.schedule", {"title": title, "at": clock[0] + minutes * 60_000}
                    )
                )["id"]
            )
        ids.append(
            (await call(p, "notifications.schedule", {"title": "tomorrow", "at": clock[0] + 86_400_000}))[
                "id"
            ]
        )

    async def later(p: NotificationsPlugin, published: Published) -> None:
        await wait_until(lambda: len(published) == 2, "the two due reminders")
        assert (await call(p, "notifications.list", {}))["reminders"][0]["id"] == ids[2]

    assert with_plugin(tmp_path, schedule) == []
    clock[0] += 2 * 3_600_000  # the head unit was off for two hours
    published = with_plugin(tmp_path, later)
    assert [v["title"] for _, v in published] == ["first", "second"]  # oldest first
    assert [v["id"] for _, v in published] == [ids[1], ids[0]]


def test_the_gateway_reads_the_declarations() -> None:
    rules = rules_from_declare("notifications", [m.to_wire() for m in NotificationsPlugin.declarations()])
    poster = AppPolicy("com.test.n", "N", permissions=frozenset({"notifications.post"}))
    plain = AppPolicy("com.test.p", "P")

    def judge(app: AppPolicy, method: str, args: dict[str, Any]) -> str:
        d = decide(app, method, args, plugin_rules=rules, grants={}, vehicle=None)
        return "allow" if d.allowed else d.code

    assert judge(poster, "notifications.show", {"title": "hi"}) == "allow"
    assert judge(plain, "notifications.show", {"title": "hi"}) == "denied"
    assert judge(poster, "notifications.show", {"title": "x" * 81}) == "invalid_args"
    assert judge(poster, "notifications.schedule", {"title": "x"}) == "invalid_args"  # no time
    assert judge(poster, "notifications.cancel", {"id": "not-an-id"}) == "invalid_args"


# -- through a real plugin host process ----------------------------------------------------------------
def test_a_reminder_due_during_a_restart_fires_from_the_next_process(short_dir: Path) -> None:
    endpoint = f"ipc://{short_dir / 'hub.sock'}"
    state_dir = short_dir / "state" / "notifications"
    config = {"show_per_minute": 2}

    async def main() -> None:
        with FakeHub(endpoint, "notifications", app_id="com.test.n") as hub:
            async with hub.host(state_dir, config):
                methods = await hub.accept()
                assert {"notifications.show", "notifications.schedule", "notifications.cancel"} <= set(
                    methods
                )
                shown = await hub.call(1, "notifications.show", {"title": "Hello", "body": "from the app"})
                assert shown["ok"] is True
                latest = hub.states[-1]
                assert (
                    latest["key"] == "notifications.latest" and latest["value"]["id"] == shown["result"]["id"]
                )
                assert latest["value"]["app_id"] == "com.test.n"
                await hub.call(2, "notifications.show", {"title": "Again"})
                refused = await hub.call(3, "notifications.show", {"title": "Too many"})
                assert refused["ok"] is False and refused["error"]["code"] == "busy"
                assert "try again in" in refused["error"]["message"]
                due = int(time.time() * 1000) + 1500
                scheduled = await hub.call(4, "notifications.schedule", {"title": "Check tyres", "at": due})
                assert scheduled["ok"] is True
                reminder_id = scheduled["result"]["id"]
            assert all(s["value"]["id"] != reminder_id for s in hub.states)  # not due before the stop
            await asyncio.sleep(
                max(0.0, due / 1000 - time.time()) + 0.2
            )  # the head unit is off when it falls due
            hub.states.clear()
            async with hub.host(state_dir, config):
                await hub.accept()
                state = await hub.recv("state.publish")
                assert state.payload["key"] == "notifications.latest"
                assert state.payload["value"]["id"] == reminder_id
                assert state.payload["value"]["title"] == "Check tyres"
                listed = await hub.call(5, "notifications.list", {})
                assert listed == {"call_id": 5, "ok": True, "result": {"reminders": []}}

    asyncio.run(main())
