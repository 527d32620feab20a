"""The updates plugin in its own host process, syncing from a registry repository over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_usb_import import APP_ID, STICK, Registry, drive_with, make_registry
from vehicle_host.bundle_cache import BundleCache
from vehicle_host.hub.gateway import AppPolicy, decide, rules_from_declare
from vehicle_host.plugins.contract import CallContext
from vehicle_host.plugins.updates import UpdatesConfigError, UpdatesPlugin
from vehicle_host.updates.health import HealthLog
from vehicle_host.usb_import.hotplug import FakeSource, HotplugSource
from vehicle_host.usb_import.mount import DirectoryMounter, Mounter

from .plugin_process import FakeHub, Published, run_plugin

pytestmark = pytest.mark.integration

VEHICLE = "VIN-NET-0001"
MAX_BODY = 1 << 20


class RegistryServer:
    """Static files of the TUF repository under ``/repo/``, and ``POST /api/health`` recorded."""

    def __init__(self, repo_dir: Path) -> None:
        self.health: list[dict[str, Any]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def translate_path(self, path: str) -> str:
                outer.paths.append(path)
                if not path.startswith("/repo/"):
                    return str(repo_dir / "does-not-exist")
                return super().translate_path(path.removeprefix("/repo"))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                if self.path != "/api/health" or not 0 < length <= MAX_BODY:
                    self.send_error(404)
                    return
                outer.health.append(json.loads(self.rfile.read(length)))
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(repo_dir)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Registry, RegistryServer]]:
    registry = make_registry(tmp_path / "registry")
    server = RegistryServer(registry.repo_dir)
    try:
        yield registry, server
    finally:
        server.close()


def test_the_plugin_syncs_from_the_registry_publishes_progress_and_reports_health(
    short_dir: Path, tmp_path: Path, served: tuple[Registry, RegistryServer]
) -> None:
    registry, server = served
    registry.publish({APP_ID: "1.0.0"})
    health_db = tmp_path / "hub-state" / "app-runs.db"
    runs = HealthLog(health_db)
    for event in ("launch", "launch", "crash"):
        runs.record("com.acme.old", "0.9.0", event)
    config = {
        "registry_url": server.url,
        "trust_root": str(registry.trust_root(tmp_path / "root.json")),
        "cache_dir": str(tmp_path / "cache"),
        "vehicle_id": VEHICLE,
        "interval_s": 3600,
        "usb": False,
        "health_db": str(health_db),
    }
    endpoint = f"ipc://{short_dir / 'hub.sock'}"
    state_dir = tmp_path / "state" / "updates"

    async def main() -> None:
        with FakeHub(endpoint, "updates", app_id="com.acme.settings", timeout=120) as hub:
            async with hub.host(state_dir, config):
                methods = await hub.accept()
                assert sorted(methods) == ["updates.status", "updates.syncNow"]
                # the first sync runs by itself at start: download, activation, then health
                applied = await hub.state("updates.applied")
                assert applied == {"apps": [{"app_id": APP_ID, "version": "1.0.0", "urgent": False}]}
                done = await hub.state("updates.progress", lambda v: v["status"] != "running")
                assert done["status"] == "done" and f"{APP_ID} 1.0.0" in done["message"]
                running = [v for v in hub.values("updates.progress") if v["status"] == "running"]
                assert running and all(
                    set(v) == {"title", "done", "total", "status", "message"} for v in running
                )
                assert running[-1]["total"] > 0 and running[-1]["done"] <= running[-1]["total"]

                # a new urgent release, fetched on demand
                registry.publish({APP_ID: "1.1.0"}, urgent=True)
                runs.record(APP_ID, "1.0.0", "launch")
                answer = await hub.call(1, "updates.syncNow")
                assert answer["ok"] is True, answer
                result = answer["result"]
                assert result["ok"] is True and result["errors"] == {}
                assert result["applied"] == [{"app_id": APP_ID, "version": "1.1.0", "urgent": True}]
                applied = await hub.state("updates.applied")
                assert applied["apps"] == [{"app_id": APP_ID, "version": "1.1.0", "urgent": True}]

                # nothing new: no download, no banner, nothing applied
                answer = await hub.call(2, "updates.syncNow")
                assert answer["result"]["applied"] == [] and "up to date" in answer["result"]["message"]

                status = (await hub.call(3, "updates.status"))["result"]
                assert status["enabled"] and status["registry"] and not status["usb"]
                assert status["apps"] == [{"app_id": APP_ID, "version": "1.1.0"}]
                assert status["last_sync"]["ok"] is True and status["syncing"] is False
                assert status["last_health"]["ok"] is True

            # health: every run posted exactly once, summed per app version
            assert [h["vehicle_id"] for h in server.health] == [VEHICLE, VEHICLE]
            assert server.health[0]["reports"] == [
                {"app_id": "com.acme.old", "version": "0.9.0", "launches": 2, "crashes": 1, "errors": 0}
            ]
            assert server.health[1]["reports"] == [
                {"app_id": APP_ID, "version": "1.0.0", "launches": 1, "crashes": 0, "errors": 0}
            ]

            # a restarted plugin keeps the reported position and the trusted metadata
            async with hub.host(state_dir, config):
                await hub.accept()
                answer = await hub.call(4, "updates.syncNow")
                assert answer["result"]["ok"] is True and answer["result"]["applied"] == []
            assert len(server.health) == 2

    asyncio.run(main())
    runs.close()
    with BundleCache(tmp_path / "cache") as cache:
        active = cache.active(APP_ID)
        assert active is not None and active.version == "1.1.0"
    assert any(p.startswith("/repo/metadata/") for p in server.paths)


def test_a_registry_that_cannot_be_trusted_changes_nothing_and_says_why(
    short_dir: Path, tmp_path: Path, served: tuple[Registry, RegistryServer]
) -> None:
    registry, server = served
    registry.publish({APP_ID: "1.0.0"})
    stranger = make_registry(tmp_path / "stranger")
    config = {
        "registry_url": server.url,
        "trust_root": str(stranger.trust_root(tmp_path / "other-root.json")),
        "cache_dir": str(tmp_path / "cache"),
        "vehicle_id": VEHICLE,
    }
    endpoint = f"ipc://{short_dir / 'hub.sock'}"

    async def main() -> None:
        with FakeHub(endpoint, "updates", app_id="com.acme.settings", timeout=120) as hub:
            async with hub.host(tmp_path / "state", config):
                await hub.accept()
                answer = await hub.call(1, "updates.syncNow")
                assert answer["ok"] is True
                result = answer["result"]
                assert result["ok"] is False and result["applied"] == []
                assert "signature" in result["message"] and "nothing was installed" in result["message"]
                status = (await hub.call(2, "updates.status"))["result"]
                assert status["apps"] == [] and status["last_sync"]["ok"] is False
                assert hub.values("updates.applied") == []

    asyncio.run(main())
    assert list((tmp_path / "cache" / "apps").iterdir()) == []


def test_without_configuration_the_plugin_runs_and_says_what_to_set(short_dir: Path, tmp_path: Path) -> None:
    endpoint = f"ipc://{short_dir / 'hub.sock'}"

    async def main() -> None:
        with FakeHub(endpoint, "updates", app_id="com.acme.settings", timeout=120) as hub:
            async with hub.host(tmp_path / "state", {}):
                await hub.accept()
                status = (await hub.call(1, "updates.status"))["result"]
                assert status["enabled"] is False and "trust_root" in status["problem"]
                answer = await hub.call(2, "updates.syncNow")
                assert answer["ok"] is False and answer["error"]["code"] == "unavailable"
                assert "set trust_root, cache_dir, vehicle_id" in answer["error"]["message"]

    asyncio.run(main())


def test_the_gateway_requires_the_updates_permission() -> None:
    rules = rules_from_declare("updates", [m.to_wire() for m in UpdatesPlugin.declarations()])
    plain = AppPolicy("com.acme.game", "Game")
    settings = AppPolicy("com.acme.settings", "Settings", permissions=frozenset({"system.updates"}))
    for method in ("updates.status", "updates.syncNow"):
        assert decide(plain, method, {}, plugin_rules=rules, grants={}, vehicle=None).code == "denied"
        assert decide(settings, method, {}, plugin_rules=rules, grants={}, vehicle=None).allowed


def test_with_usb_on_a_drive_is_imported_and_announced(tmp_path: Path) -> None:
    registry = make_registry(tmp_path / "registry")
    registry.publish({APP_ID: "1.0.0"}, urgent=True)
    drive = drive_with(registry.repo_dir, tmp_path / "drive")
    source = FakeSource()

    class UsbUpdates(UpdatesPlugin):
        def usb_source(self) -> HotplugSource:
            return source

        def mounter(self, mount_dir: Path) -> Mounter:
            return DirectoryMounter({STICK.node: drive})

    config = {
        "trust_root": str(registry.trust_root(tmp_path / "root.json")),
        "cache_dir": str(tmp_path / "cache"),
        "vehicle_id": VEHICLE,
        "usb": True,
    }
    status: dict[str, Any] = {}

    async def body(plugin: UsbUpdates, published: Published) -> None:
        source.add(STICK)
        async with asyncio.timeout(60):
            while not any(key == "updates.applied" for key, _ in published):
                await asyncio.sleep(0.02)
            while published[-1][0] != "updates.progress" or published[-1][1]["status"] == "running":
                await asyncio.sleep(0.02)
        methods = {m.name: m for m in plugin.declarations()}
        who = CallContext("com.acme.settings", 1, "updates.status")
        status.update(await plugin.call(methods["updates.status"], {}, who))
        with pytest.raises(UpdatesConfigError, match="USB drives only"):
            await plugin.call(methods["updates.syncNow"], {}, who)

    published = run_plugin(UsbUpdates, tmp_path / "s", body, **config)
    applied = [value for key, value in published if key == "updates.applied"]
    assert applied == [{"apps": [{"app_id": APP_ID, "version": "1.0.0", "urgent": True}]}]
    assert published[-1][1]["status"] == "done" and "USB" in published[-1][1]["title"]
    assert status["usb"] is True and status["registry"] is False
    assert status["apps"] == [{"app_id": APP_ID, "version": "1.0.0"}]
    assert status["last_usb"]["ok"] is True
