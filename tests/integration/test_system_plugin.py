"""The system plugin on real files: a SQLite clipboard, a file-based backlight device, a host process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.hub.gateway import AppPolicy, decide, rules_from_declare
from vehicle_host.plugins import system
from vehicle_host.plugins.contract import (
    CallContext,
    DeviceUnavailable,
    InvalidArguments,
    PluginContext,
    PluginError,
)
from vehicle_host.plugins.system import SystemPlugin

from .plugin_process import FakeHub, Published, run_plugin

pytestmark = pytest.mark.integration


def with_plugin(
    state_dir: Path, body: Callable[[SystemPlugin, Published], Awaitable[None]], **config: Any
) -> Published:
    return run_plugin(SystemPlugin, state_dir, body, **config)


async def call(plugin: SystemPlugin, app_id: str, method: str, args: dict[str, Any]) -> Any:
    decl = {m.name: m for m in plugin.declarations()}[method]
    return await plugin.call(decl, args, CallContext(app_id=app_id, call_id=1, method=method))


def fake_backlight(root: Path, name: str = "panel", level: int = 128, top: int = 255) -> Path:
    device = root / "backlight" / name
    device.mkdir(parents=True)
    (device / "brightness").write_text(f"{level}\n")
    (device / "max_brightness").write_text(f"{top}\n")
    return device


# -- clipboard ----------------------------------------------------------------------------------------
def test_one_clipboard_for_every_app_and_reads_are_announced(tmp_path: Path) -> None:
    async def body(p: SystemPlugin, published: Published) -> None:
        assert await call(p, "com.a", "clipboard.get", {}) == {"data": ""}
        assert await call(p, "com.a", "clipboard.set", {"data": "WVWZZZ1JZXW000001"}) == {}
        assert [key for key, _ in published] == ["clipboard.read"]  # copying announces nothing
        assert await call(p, "com.b", "clipboard.get", {}) == {"data": "WVWZZZ1JZXW000001"}
        await call(p, "com.b", "clipboard.set", {"data": "héllo\x00wörld 🚗"})
        assert (await call(p, "com.a", "clipboard.get", {}))["data"] == "héllo\x00wörld 🚗"

    published = with_plugin(tmp_path, body)
    reads = [value for key, value in published if key == "clipboard.read"]
    assert [r["app_id"] for r in reads] == ["com.a", "com.b", "com.a"]
    assert all(isinstance(r["at"], int) and r["at"] > 1_600_000_000_000 for r in reads)
    assert len(published) == 3


def test_the_clipboard_survives_a_reopen_and_is_private_to_the_host(tmp_path: Path) -> None:
    async def write(p: SystemPlugin, published: Published) -> None:
        await call(p, "com.a", "clipboard.set", {"data": "first"})
        await call(p, "com.a", "clipboard.set", {"data": "VIN 1HGCM82633A004352"})

    async def read(p: SystemPlugin, published: Published) -> None:
        assert await call(p, "com.z", "clipboard.get", {}) == {"data": "VIN 1HGCM82633A004352"}

    with_plugin(tmp_path, write)
    with_plugin(tmp_path, read)
    assert (tmp_path / system.FILENAME).stat().st_mode & 0o077 == 0


def test_clipboard_limits_give_clear_errors(tmp_path: Path) -> None:
    async def body(p: SystemPlugin, published: Published) -> None:
        exact = "v" * system.MAX_CLIPBOARD_BYTES
        await call(p, "com.a", "clipboard.set", {"data": exact})
        assert len((await call(p, "com.a", "clipboard.get", {}))["data"]) == system.MAX_CLIPBOARD_BYTES
        too_big = "é" * (system.MAX_CLIPBOARD_BYTES // 2 + 1)  # few characters, too many bytes
        with pytest.raises(PluginError, match="holds at most 1,000,000 bytes"):
            await call(p, "com.a", "clipboard.set", {"data": too_big})
        with pytest.raises(InvalidArguments, match="must be text"):
            await call(p, "com.a", "clipboard.set", {"data": 42})
        with pytest.raises(InvalidArguments, match="valid Unicode"):
            await call(p, "com.a", "clipboard.set", {"data": "bad \ud800"})
        assert len((await call(p, "com.a", "clipboard.get", {}))["data"]) == system.MAX_CLIPBOARD_BYTES

    with_plugin(tmp_path, body)


def test_the_plugin_refuses_to_start_without_a_state_directory() -> None:
    async def publish(key: str, value: Any) -> None:
        return None

    plugin = SystemPlugin(PluginContext(config={}, publish_state=publish))
    with pytest.raises(PluginError, match="state directory"):
        asyncio.run(plugin.start())


# -- display ------------------------------------------------------------------------------------------
def test_brightness_reads_and_writes_the_backlight_files(tmp_path: Path) -> None:
    device = fake_backlight(tmp_path, level=51, top=255)

    async def body(p: SystemPlugin, published: Published) -> None:
        assert await call(p, "com.a", "display.getScreenBrightness", {}) == {"value": 0.2}
        assert await call(p, "com.a", "display.setScreenBrightness", {"value": 0.5}) == {}
        assert (device / "brightness").read_text() == "128"
        assert (await call(p, "com.a", "display.getScreenBrightness", {}))["value"] == 128 / 255
        await call(p, "com.a", "display.setScreenBrightness", {"value": 1})
        assert (device / "brightness").read_text() == "255"
        # a mini-app can dim the panel but not switch it off
        await call(p, "com.a", "display.setScreenBrightness", {"value": 0})
        assert (device / "brightness").read_text() == "26"
        with pytest.raises(InvalidArguments, match="from 0 to 1"):
            await call(p, "com.a", "display.setScreenBrightness", {"value": 1.5})
        with pytest.raises(InvalidArguments, match="from 0 to 1"):
            await call(p, "com.a", "display.setScreenBrightness", {"value": float("nan")})
        assert (device / "brightness").read_text() == "26"

    with_plugin(tmp_path / "state", body, backlight=str(device), min_brightness=0.1)


def test_the_first_backlight_device_is_the_default(tmp_path: Path) -> None:
    fake_backlight(tmp_path, "b-panel", level=7, top=7)
    fake_backlight(tmp_path, "a-panel", level=1, top=4)

    async def body(p: SystemPlugin, published: Published) -> None:
        assert await call(p, "com.a", "display.getScreenBrightness", {}) == {"value": 0.25}

    with_plugin(tmp_path / "state", body, backlight_class=str(tmp_path / "backlight"))


def test_without_a_backlight_device_brightness_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty-class").mkdir()
    broken = fake_backlight(tmp_path, "broken")
    (broken / "max_brightness").write_text("0\n")

    async def body(p: SystemPlugin, published: Published) -> None:
        for method, args in (
            ("display.getScreenBrightness", {}),
            ("display.setScreenBrightness", {"value": 1}),
        ):
            with pytest.raises(DeviceUnavailable, match="no backlight device under") as info:
                await call(p, "com.a", method, args)
            assert info.value.code == "device"

    async def configured(p: SystemPlugin, published: Published) -> None:
        with pytest.raises(DeviceUnavailable, match="no backlight device at"):
            await call(p, "com.a", "display.getScreenBrightness", {})

    async def unusable(p: SystemPlugin, published: Published) -> None:
        with pytest.raises(DeviceUnavailable, match="no usable max_brightness"):
            await call(p, "com.a", "display.getScreenBrightness", {})

    with_plugin(tmp_path / "s1", body, backlight_class=str(tmp_path / "empty-class"))
    with_plugin(tmp_path / "s2", configured, backlight=str(tmp_path / "nowhere"))
    with_plugin(tmp_path / "s3", unusable, backlight=str(broken))


def test_keep_screen_on_is_published_for_the_shell(tmp_path: Path) -> None:
    async def body(p: SystemPlugin, published: Published) -> None:
        assert await call(p, "com.a", "display.setKeepScreenOn", {"keepScreenOn": True}) == {}
        await call(p, "com.b", "display.setKeepScreenOn", {"keepScreenOn": True})
        await call(p, "com.a", "display.setKeepScreenOn", {"keepScreenOn": False})
        with pytest.raises(InvalidArguments):
            await call(p, "com.a", "display.setKeepScreenOn", {"keepScreenOn": "yes"})

    published = with_plugin(tmp_path, body)
    assert published == [
        ("display", {"keepScreenOn": True, "app_id": "com.a", "apps": ["com.a"]}),
        ("display", {"keepScreenOn": True, "app_id": "com.b", "apps": ["com.a", "com.b"]}),
        ("display", {"keepScreenOn": False, "app_id": "com.a", "apps": ["com.b"]}),
    ]


def test_the_gateway_reads_the_declarations() -> None:
    rules = rules_from_declare("system", [m.to_wire() for m in SystemPlugin.declarations()])
    plain = AppPolicy("com.test.sys", "Sys")
    dimmer = AppPolicy("com.test.dim", "Dim", permissions=frozenset({"display.brightness"}))

    def judge(app: AppPolicy, method: str, args: dict[str, Any]) -> str:
        return decide(app, method, args, plugin_rules=rules, grants={}, vehicle=None).code

    for method, args in (
        ("clipboard.set", {"data": "x"}),
        ("clipboard.get", {}),
        ("display.setKeepScreenOn", {"keepScreenOn": True}),
        ("display.getScreenBrightness", {}),
    ):
        assert decide(plain, method, args, plugin_rules=rules, grants={}, vehicle=None).allowed, method
    assert judge(plain, "display.setScreenBrightness", {"value": 0.5}) == "denied"
    assert decide(
        dimmer, "display.setScreenBrightness", {"value": 0.5}, plugin_rules=rules, grants={}, vehicle=None
    ).allowed
    assert judge(dimmer, "display.setScreenBrightness", {"value": 2}) == "invalid_args"
    assert judge(plain, "clipboard.set", {"data": "x" * (system.MAX_CLIPBOARD_BYTES + 1)}) == "invalid_args"


# -- through a real plugin host process ----------------------------------------------------------------
def test_the_clipboard_survives_a_plugin_process_restart(short_dir: Path) -> None:
    endpoint = f"ipc://{short_dir / 'hub.sock'}"
    state_dir = short_dir / "state" / "system"
    vin = "WVWZZZ1JZXW000001"
    (short_dir / "no-backlights").mkdir()
    config = {"backlight_class": str(short_dir / "no-backlights")}

    async def main() -> None:
        with FakeHub(endpoint, "system", app_id="com.test.vin") as hub:
            async with hub.host(state_dir, config):
                methods = await hub.accept()
                assert "clipboard.set" in methods and "display.setScreenBrightness" in methods
                largest = "v" * system.MAX_CLIPBOARD_BYTES  # still fits one wire message each way
                assert (await hub.call(1, "clipboard.set", {"data": largest}))["ok"] is True
                assert (await hub.call(2, "clipboard.get", {}))["result"] == {"data": largest}
                answer = await hub.call(3, "clipboard.set", {"data": vin})
                assert answer == {"call_id": 3, "ok": True, "result": {}}
            async with hub.host(state_dir, config):
                await hub.accept()
                await hub.send(
                    "plugin.call",
                    {"call_id": 4, "app_id": "com.test.other", "method": "clipboard.get", "args": {}},
                )
                state = await hub.recv("state.publish")
                assert state.payload["key"] == "clipboard.read"
                assert state.payload["value"]["app_id"] == "com.test.other"
                answer = dict((await hub.recv("plugin.result")).payload)
                assert answer == {"call_id": 4, "ok": True, "result": {"data": vin}}
                # a head unit without a backlight device: the caller is told, nothing is made up
                answer = await hub.call(5, "display.getScreenBrightness", {})
                assert answer["ok"] is False and answer["error"]["code"] == "device"
                assert "no backlight device" in answer["error"]["message"]

    asyncio.run(main())
