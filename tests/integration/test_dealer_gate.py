"""Dealer-group apps and the dealer role: a real hub configured to gate them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.conftest import start_hub
from vehicle_host.hub.client import HubClient
from vehicle_host.hub.service import dealer_unlocked

pytestmark = pytest.mark.integration


def _app(apps: Path, name: str, group: str) -> str:
    app_id = f"org.test.{name}"
    root = apps / name
    (root / "pages/index").mkdir(parents=True)
    manifest = {"pages": ["pages/index/index"], "vehicle": {"id": app_id, "name": name, "version": "1.0.0"}}
    manifest["vehicle"]["group"] = group
    (root / "app.json").write_text(json.dumps(manifest))
    (root / "app.js").write_text("App({});\n")
    (root / "pages/index/index.js").write_text("Page({ data: { n: 1 } });\n")
    (root / "pages/index/index.wxml").write_text("<view>{{n}}</view>")
    return app_id


def test_a_dealer_app_does_not_start_without_the_dealer_role(tmp_path: Path) -> None:
    config = tmp_path / "host.toml"
    config.write_text("[host]\ndealer_apps_need_role = true\n")
    (tmp_path / "apps").mkdir()
    hub = start_hub(tmp_path, tmp_path / "apps", plugins="storage", config=config)
    dealer = _app(hub.apps_dir, "workshop", "dealer")
    partner = _app(hub.apps_dir, "weather", "partner")

    async def body() -> None:
        shell = HubClient(hub.endpoint, role="shell")
        await shell.connect()
        try:
            shell.send("app.launch", "hub", {"app_id": dealer})
            refused = await shell.expect("app.error", app_id=dealer, timeout=15)
            assert refused.payload["kind"] == "denied"
            assert "dealer staff" in refused.payload["message"]
            shell.send("app.launch", "hub", {"app_id": partner})
            opened = await shell.expect("page.open", app_id=partner, timeout=15)
            assert opened.payload["route"] == "pages/index/index"
            stats = (await shell.request("hub.stats", "hub", {})).payload["stats"]
            assert dealer not in stats["workers"]
        finally:
            await shell.close()

    try:
        asyncio.run(body())
    finally:
        hub.stop()


@pytest.mark.parametrize(
    ("role", "unlocked"),
    [
        ({"active": True, "until": 2_000}, True),
        ({"active": True, "until": 1_000}, False),  # expired this very moment
        ({"active": False, "until": 2_000}, False),
        ({"active": "yes", "until": 2_000}, False),
        ({"active": True, "until": True}, False),
        ({"active": True}, False),
        ({}, False),
    ],
)
def test_only_an_active_unexpired_role_unlocks(role: dict[str, object], unlocked: bool) -> None:
    assert dealer_unlocked(role, 1_000) is unlocked
