"""APIs the host itself serves, through a real hub and worker: settings from the grant store, app
switching drawn by the shell, and ui.* calls answered by the shell."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HubProcess
from vehicle_host.hub.client import HubClient

pytestmark = pytest.mark.integration

PAGE_JS = """
function keep(page, key) {
  return function (r) { var c = {}; c[key] = r.errMsg + ' ' + JSON.stringify(r); page.setData(c); };
}
Page({
  data: {},
  onAuth: function () {
    wx.authorize({ scope: 'vehicle.signals', success: keep(this, 'auth'), fail: keep(this, 'auth') });
  },
  onUndeclared: function () { wx.authorize({ scope: 'camera.rear', fail: keep(this, 'undeclared') }); },
  onSettings: function () { fc.getSetting().then(keep(this, 'settings')); },
  onModal: function () {
    fc.showModal({ title: 'Clear codes?', content: 'Really?' }).then(keep(this, 'modal'));
  },
  onExit: function () { fc.exitMiniProgram({ success: keep(this, 'exit') }); },
  onOpenMissing: function () {
    fc.navigateToMiniProgram({ appId: 'org.nope.app', fail: keep(this, 'open') });
  }
});
"""


def write_app(apps: Path) -> str:
    root = apps / "settings"
    (root / "pages/index").mkdir(parents=True)
    manifest = {
        "pages": ["pages/index/index"],
        "vehicle": {
            "id": "org.test.settings",
            "name": "Settings Probe",
            "version": "1.0.0",
            "permissions": ["vehicle.signals"],
        },
    }
    (root / "app.json").write_text(json.dumps(manifest))
    (root / "app.js").write_text("App({});\n")
    (root / "pages/index/index.js").write_text(PAGE_JS)
    (root / "pages/index/index.wxml").write_text("<view>probe</view>\n")
    return "org.test.settings"


@pytest.fixture
def probe_hub(short_dir: Path) -> Any:
    from tests.conftest import start_hub

    apps = short_dir / "apps"
    apps.mkdir()
    app_id = write_app(apps)
    hub = start_hub(short_dir, apps, plugins="storage")
    yield hub, app_id
    hub.stop()


def run(hub: HubProcess, app_id: str, body: Any) -> Any:
    async def main() -> Any:
        shell = HubClient(hub.endpoint, role="shell")
        await shell.connect()
        try:
            shell.send("app.launch", "hub", {"app_id": app_id})
            opened = await shell.expect("page.open", timeout=20, app_id=app_id)
            page_id = opened.payload["page_id"]
            await shell.expect("page.render", timeout=20, page_id=page_id)

            def tap(handler: str) -> None:
                event = {"page_id": page_id, "handler": handler, "event": {}}
                shell.send("page.event", f"app:{app_id}", event)

            return await body(shell, tap)
        finally:
            await shell.close()

    return asyncio.run(main())


async def value(shell: HubClient, key: str) -> str:
    while True:
        message = await shell.expect("page.setData", timeout=15)
        if key in message.payload["diff"]:
            return str(message.payload["diff"][key])


async def answer(shell: HubClient, kind: str, result: dict[str, Any]) -> dict[str, Any]:
    request = await shell.expect("ui.request", timeout=15, kind=kind)
    shell.send("ui.response", "hub", {"request_id": request.payload["request_id"], "result": result})
    return dict(request.payload["params"])


def test_authorize_asks_once_and_get_setting_reports_the_answer(probe_hub: Any) -> None:
    hub, app_id = probe_hub

    async def body(shell: HubClient, tap: Any) -> None:
        tap("onSettings")
        first = await value(shell, "settings")
        assert "getSetting:ok" in first and '"authSetting":{}' in first
        tap("onAuth")
        params = await answer(shell, "consent", {"granted": True})
        assert params["permission"] == "vehicle.signals" and params["app_name"] == "Settings Probe"
        assert (await value(shell, "auth")).startswith("authorize:ok")
        tap("onAuth")  # decided: no second question
        assert (await value(shell, "auth")).startswith("authorize:ok")
        tap("onSettings")
        assert '"vehicle.signals":true' in await value(shell, "settings")
        tap("onUndeclared")
        assert "did not declare permission camera.rear" in await value(shell, "undeclared")

    run(hub, app_id, body)


def test_modal_answer_and_app_switching_go_through_the_shell(probe_hub: Any) -> None:
    hub, app_id = probe_hub

    async def body(shell: HubClient, tap: Any) -> None:
        tap("onModal")
        params = await answer(shell, "modal", {"confirm": True, "cancel": False})
        assert params["title"] == "Clear codes?" and params["showCancel"] is True
        assert '"confirm":true' in await value(shell, "modal")
        tap("onOpenMissing")
        params = await answer(shell, "app", {"error": "app org.nope.app is not installed"})
        assert params["op"] == "app.open" and params["appId"] == "org.nope.app"
        assert "not installed" in await value(shell, "open")
        tap("onExit")
        params = await answer(shell, "app", {})
        assert params["op"] == "app.exit"
        assert (await value(shell, "exit")).startswith("exitMiniProgram:ok")

    run(hub, app_id, body)


def test_allow_once_is_not_remembered_and_the_info_page_can_revoke(probe_hub: Any) -> None:
    hub, app_id = probe_hub

    async def body(shell: HubClient, tap: Any) -> None:
        tap("onAuth")
        await answer(shell, "consent", {"granted": True, "remember": False})
        assert (await value(shell, "auth")).startswith("authorize:ok")
        info = (await shell.request("app.info", "hub", {"app_id": app_id})).payload["info"]
        assert info["permissions"] == [{"name": "vehicle.signals", "granted": None}]  # not kept
        assert info["name"] == "Settings Probe" and info["version"] == "1.0.0"
        tap("onAuth")  # asked again, this time "always"
        await answer(shell, "consent", {"granted": True})
        assert (await value(shell, "auth")).startswith("authorize:ok")
        info = (await shell.request("app.info", "hub", {"app_id": app_id})).payload["info"]
        assert info["permissions"] == [{"name": "vehicle.signals", "granted": True}]
        assert info["storage"]["limitSize"] > 0
        reply = await shell.request(
            "grant.set", "hub", {"app_id": app_id, "permission": "vehicle.signals", "granted": None}
        )
        assert reply.payload["ok"] is True
        tap("onAuth")  # revoked: the driver is asked again
        params = await answer(shell, "consent", {"granted": False})
        assert params["permission"] == "vehicle.signals"
        assert "auth deny" in await value(shell, "auth")
        wrong = {"app_id": app_id, "permission": "x.y", "granted": True}
        bad = await shell.request("grant.set", "hub", wrong)
        assert bad.payload["ok"] is False and "does not declare" in bad.payload["error"]

    run(hub, app_id, body)
