"""The analytics plugin on a real SQLite file, a real HTTP server on 127.0.0.1 and through a real
plugin host process: limits, the 10,000-event window, and uploads only with declaration + consent."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.hub.gateway import AppPolicy, decide, rules_from_declare
from vehicle_host.plugins import analytics
from vehicle_host.plugins.analytics import AnalyticsDB, AnalyticsPlugin, RateLimited, UploadRefused
from vehicle_host.plugins.contract import CallContext, InvalidArguments, PluginError

from .plugin_process import FakeHub, run_plugin

pytestmark = pytest.mark.integration


class Collector:
    """A loopback HTTP server recording what is posted to it; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if collector.status == 200:
                    collector.posts.append(json.loads(body))
                self.send_response(collector.status)
                if collector.status == 302:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def apps(self) -> list[str]:
        return [post["app_id"] for post in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    yield server
    server.close()


@dataclass(frozen=True, slots=True)
class HostCall(CallContext):
    """A call context from a host that passes the manifest's ``vehicle.analytics.upload``."""

    analytics_upload: bool = False


def with_plugin(state_dir: Path, body: Callable[[AnalyticsPlugin], Awaitable[None]], **config: Any) -> None:
    run_plugin(AnalyticsPlugin, state_dir, lambda plugin, published: body(plugin), **config)


async def call(
    plugin: AnalyticsPlugin,
    method: str,
    args: dict[str, Any],
    app_id: str = "com.a",
    ctx: CallContext | None = None,
) -> Any:
    decl = {m.name: m for m in plugin.declarations()}[method]
    return await plugin.call(decl, args, ctx or CallContext(app_id=app_id, call_id=1, method=method))


def test_events_are_kept_per_app_and_summarised(tmp_path: Path) -> None:
    async def body(p: AnalyticsPlugin) -> None:
        for i in range(3):
            await call(
                p, "analytics.track", {"event": "trip.start", "props": {"n": i, "ev": True, "_x": None}}
            )
        await call(p, "analytics.track", {"event": "screen:view", "_allow": []})
        await call(p, "analytics.track", {"event": "other", "props": {"s": "é" * 256}}, app_id="com.b")
        summary = await call(p, "analytics.summary", {})
        assert summary["counts"] == {"trip.start": 3, "screen:view": 1}
        assert (summary["total"], summary["pending"], summary["sent"], summary["dropped"]) == (4, 4, 0, 0)
        assert summary["limit"] == analytics.MAX_EVENTS_PER_APP == 10_000
        assert summary["first"] <= summary["last"]
        assert summary["upload"] == {"declared": False, "allowed": False, "configured": False}
        assert (await call(p, "analytics.summary", {}, app_id="com.b"))["counts"] == {"other": 1}

    with_plugin(tmp_path, body)
    assert (tmp_path / analytics.FILENAME).stat().st_mode & 0o077 == 0


def test_only_the_newest_events_are_kept(tmp_path: Path) -> None:
    db = AnalyticsDB(tmp_path / "a.sqlite3", max_events=20)
    for i in range(25):
        db.track("com.a", f"e{i}", "{}", 1000 + i)
    db.track("com.b", "b", "{}", 1)
    assert db.summary("com.a")["total"] == 20
    assert db.app("com.a")[2] == 5 and db.app("com.b")[2] == 0
    kept = [event for _, event, _, _ in db.unsent("com.a", 100)]
    assert kept == [f"e{i}" for i in range(5, 25)]  # the oldest five were dropped
    db.close()


def test_event_limits_give_clear_errors(tmp_path: Path) -> None:
    async def body(p: AnalyticsPlugin) -> None:
        for args, match in (
            ({"event": ""}, "event must be a name"),
            ({"event": "9lives"}, "event must be a name"),
            ({"event": "e" * 65}, "event must be a name"),
            ({"event": "ok", "props": [1]}, "must be an object"),
            ({"event": "ok", "props": {f"k{i}": i for i in range(33)}}, "at most 32"),
            ({"event": "ok", "props": {"k" * 65: 1}}, "1 to 64 characters"),
            ({"event": "ok", "props": {"s": "x" * 257}}, "longer than 256"),
            ({"event": "ok", "props": {"n": float("nan")}}, "finite number"),
            ({"event": "ok", "props": {"deep": {"a": 1}}}, "text, a number"),
            ({"event": "ok", "props": {f"k{i}": "é" * 200 for i in range(12)}}, "at most 4,096"),
        ):
            with pytest.raises(InvalidArguments, match=match):
                await call(p, "analytics.track", args)
        assert (await call(p, "analytics.summary", {}))["total"] == 0

    with_plugin(tmp_path, body)


def test_tracking_is_rate_limited_per_app(tmp_path: Path) -> None:
    async def body(p: AnalyticsPlugin) -> None:
        for _ in range(5):
            await call(p, "analytics.track", {"event": "tap"})
        with pytest.raises(RateLimited, match="5 events in the last minute") as info:
            await call(p, "analytics.track", {"event": "tap"})
        assert info.value.code == "busy"
        await call(p, "analytics.track", {"event": "tap"}, app_id="com.b")
        assert (await call(p, "analytics.summary", {}))["total"] == 5

    with_plugin(tmp_path, body, track_per_minute=5)


def test_nothing_is_uploaded_without_declaration_and_consent(tmp_path: Path, collector: Collector) -> None:
    async def body(p: AnalyticsPlugin) -> None:
        for app in ("com.declared", "com.undeclared"):
            await call(p, "analytics.track", {"event": "opened"}, app_id=app)
        assert await p.upload_once() == {}  # declared, but the driver has not allowed it
        with pytest.raises(UploadRefused, match=r"does not declare vehicle\.analytics\.upload") as info:
            await call(p, "analytics.setUpload", {"allowed": True}, app_id="com.undeclared")
        assert info.value.code == "denied"
        assert await p.upload_once() == {}
        summary = await call(p, "analytics.summary", {}, app_id="com.declared")
        assert summary["upload"] == {"declared": True, "allowed": False, "configured": True}
        assert summary["pending"] == 1

    with_plugin(
        tmp_path, body, upload_url=collector.url, apps_upload={"com.declared": True}, upload_interval_s=3600
    )
    assert collector.posts == []


def test_uploads_go_in_batches_after_consent_and_stop_when_withdrawn(
    tmp_path: Path, collector: Collector
) -> None:
    async def body(p: AnalyticsPlugin) -> None:
        for i in range(5):
            await call(p, "analytics.track", {"event": "trip", "props": {"km": i}}, app_id="com.up")
        await call(p, "analytics.track", {"event": "secret"}, app_id="com.quiet")
        assert await call(p, "analytics.setUpload", {"allowed": True}, app_id="com.up") == {"allowed": True}
        assert await p.upload_once() in ({"com.up": 5}, {})  # the wake-up may have sent them already
        summary = await call(p, "analytics.summary", {}, app_id="com.up")
        assert (summary["sent"], summary["pending"]) == (5, 0)
        assert await p.upload_once() == {}  # sent events are not sent again
        await call(p, "analytics.setUpload", {"allowed": False}, app_id="com.up")
        await call(p, "analytics.track", {"event": "after"}, app_id="com.up")
        assert await p.upload_once() == {}
        assert (await call(p, "analytics.summary", {}, app_id="com.up"))["pending"] == 1

    with_plugin(
        tmp_path,
        body,
        upload_url=collector.url,
        upload_batch=2,
        upload_interval_s=3600,
        apps_upload={"com.up": True, "com.quiet": True},
    )
    assert collector.apps() == ["com.up"] * 3  # 2 + 2 + 1
    events = [e for post in collector.posts for e in post["events"]]
    assert [e["props"]["km"] for e in events] == [0, 1, 2, 3, 4]
    assert all(e["event"] == "trip" and isinstance(e["at"], int) for e in events)


def test_a_failing_or_redirecting_server_keeps_the_events(tmp_path: Path, collector: Collector) -> None:
    async def body(p: AnalyticsPlugin) -> None:
        await call(p, "analytics.track", {"event": "x"})
        collector.status = 500
        await call(p, "analytics.setUpload", {"allowed": True})
        with pytest.raises(PluginError, match="did not take the events"):
            await p.upload_once()
        collector.status = 302
        with pytest.raises(PluginError, match="did not take the events"):
            await p.upload_once()
        assert (await call(p, "analytics.summary", {}))["pending"] == 1
        collector.status = 200
        assert await p.upload_once() == {"com.a": 1}

    with_plugin(tmp_path, body, upload_url=collector.url, apps_upload={"com.a": True}, upload_interval_s=3600)
    assert collector.apps() == ["com.a"]


def test_the_flag_from_the_call_context_wins_over_the_config(tmp_path: Path) -> None:
    async def body(p: AnalyticsPlugin) -> None:
        says_no = HostCall(app_id="com.a", call_id=1, method="analytics.setUpload", analytics_upload=False)
        with pytest.raises(UploadRefused):
            await call(p, "analytics.setUpload", {"allowed": True}, ctx=says_no)
        says_yes = HostCall(app_id="com.b", call_id=2, method="analytics.setUpload", analytics_upload=True)
        assert await call(p, "analytics.setUpload", {"allowed": True}, ctx=says_yes) == {"allowed": True}
        assert (await call(p, "analytics.summary", {}, app_id="com.b"))["upload"]["declared"] is True

    with_plugin(tmp_path, body, apps_upload={"com.a": True})


def test_upload_urls_must_be_https_or_loopback() -> None:
    assert analytics.check_upload_url("https://collect.example/v1") == "https://collect.example/v1"
    assert analytics.check_upload_url("http://127.0.0.1:8080/e") == "http://127.0.0.1:8080/e"
    assert analytics.check_upload_url("http://[::1]/e") == "http://[::1]/e"
    assert analytics.check_upload_url(None) is None
    for bad in ("http://collect.example/v1", "ftp://127.0.0.1/", "file:///etc/passwd", 7, "https://"):
        with pytest.raises(PluginError, match="https://"):
            analytics.check_upload_url(bad)


def test_the_gateway_asks_the_driver_before_uploads_are_allowed() -> None:
    rules = rules_from_declare("analytics", [m.to_wire() for m in AnalyticsPlugin.declarations()])
    app = AppPolicy("com.test.a", "A", permissions=frozenset({"analytics.track", "analytics.upload"}))

    def verdict(method: str, args: dict[str, Any], grants: dict[str, bool]) -> str:
        d = decide(app, method, args, plugin_rules=rules, grants=grants, vehicle=None)
        return d.verdict if d.verdict != "deny" else d.code

    assert verdict("analytics.setUpload", {"allowed": True}, {}) == "ask"
    assert verdict("analytics.setUpload", {"allowed": True}, {"analytics.upload": False}) == "denied"
    assert verdict("analytics.setUpload", {"allowed": True}, {"analytics.upload": True}) == "allow"
    assert verdict("analytics.track", {"event": "x"}, {}) == "allow"
    assert verdict("analytics.track", {"event": "x", "props": {"k": "v" * 300}}, {}) == "invalid_args"
    plain = AppPolicy("com.test.p", "P")
    assert decide(
        plain, "analytics.track", {"event": "x"}, plugin_rules=rules, grants={}, vehicle=None
    ).code == ("denied")


# -- through a real plugin host process ----------------------------------------------------------------
def test_the_uploader_in_a_plugin_process_sends_only_what_was_allowed(
    short_dir: Path, collector: Collector
) -> None:
    endpoint = f"ipc://{short_dir / 'hub.sock'}"
    state_dir = short_dir / "state" / "analytics"
    config = {
        "upload_url": collector.url,
        "upload_interval_s": 0.2,
        "apps_upload": {"com.test.up": True, "com.test.quiet": True},
    }

    async def main() -> None:
        with FakeHub(endpoint, "analytics") as hub:
            async with hub.host(state_dir, config):
                assert "analytics.track" in await hub.accept()
                for call_id, app in enumerate(("com.test.quiet", "com.test.up", "com.test.undeclared"), 1):
                    answer = await hub.call(
                        call_id, "analytics.track", {"event": "launch", "props": {"app": app}}, app
                    )
                    assert answer["ok"] is True, answer
                refused = await hub.call(4, "analytics.setUpload", {"allowed": True}, "com.test.undeclared")
                assert refused["ok"] is False and refused["error"]["code"] == "denied"
                bad = await hub.call(
                    5, "analytics.track", {"event": "x", "props": {"s": "y" * 300}}, "com.test.up"
                )
                assert bad["ok"] is False and bad["error"]["code"] == "invalid_args"
                allowed = await hub.call(6, "analytics.setUpload", {"allowed": True}, "com.test.up")
                assert allowed["ok"] is True
                deadline = time.monotonic() + 20
                while not collector.posts:
                    assert time.monotonic() < deadline, "the uploader sent nothing"
                    await asyncio.sleep(0.05)
                # a later event goes in a later cycle, which also passes over the apps not allowed
                await hub.call(7, "analytics.track", {"event": "second"}, "com.test.up")
                while len(collector.posts) < 2:
                    assert time.monotonic() < deadline, "the uploader did not send the second event"
                    await asyncio.sleep(0.05)
                summary = (await hub.call(8, "analytics.summary", {}, "com.test.quiet"))["result"]
                assert (summary["pending"], summary["sent"]) == (1, 0)
                assert summary["upload"] == {"declared": True, "allowed": False, "configured": True}

    asyncio.run(main())
    assert collector.apps() == ["com.test.up", "com.test.up"]
    assert [e["event"] for post in collector.posts for e in post["events"]] == ["launch", "second"]
