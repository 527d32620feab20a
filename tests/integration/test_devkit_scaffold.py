"""``vehicle-host new``: the scaffolded app compiles and runs in a real hub with a real worker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.conftest import start_hub
from vehicle_host.bundles import catalog
from vehicle_host.devkit import scaffold
from vehicle_host.devkit.__main__ import main as devkit_main
from vehicle_host.errors import BundleError, VehicleHostError
from vehicle_host.hub.client import HubClient

pytestmark = pytest.mark.integration


def test_scaffolded_app_compiles_with_its_module_and_component(short_dir: Path) -> None:
    target = scaffold.scaffold("trip-log", short_dir / "apps" / "trip-log", group="dealer", driving_safe=True)
    doc = json.loads((target / "app.json").read_text())
    assert doc["vehicle"]["id"] == "com.example.trip-log"
    apps, broken = catalog.scan(short_dir / "apps")
    assert broken == [] and len(apps) == 1
    app = apps[0]
    assert (app.manifest.group, app.manifest.driving_safe) == ("dealer", True)
    page = catalog.compile_page(app, "pages/index/index")
    assert "components/badge/badge" in page.components
    sources = catalog.bundle_sources(app)
    assert {"app.js", "pages/index/index.js", "utils/format.js", "components/badge/badge.js"} <= set(sources)
    readme = (target / "README.md").read_text()
    assert "vehicle-host dev " + str(target) in readme and "__" not in readme


def test_bad_name_bad_id_and_a_non_empty_directory_are_refused(short_dir: Path) -> None:
    with pytest.raises(BundleError, match="must start with a letter"):
        scaffold.scaffold("9lives", short_dir / "a")
    with pytest.raises(BundleError, match=r"reverse-DNS.*--id"):
        scaffold.scaffold("ok", short_dir / "b", app_id="NotAnId")
    (short_dir / "c").mkdir()
    (short_dir / "c" / "keep.txt").write_text("mine")
    with pytest.raises(VehicleHostError, match="not empty"):
        scaffold.scaffold("ok", short_dir / "c")
    assert (short_dir / "c" / "keep.txt").read_text() == "mine"
    assert not (short_dir / "a").exists() and not (short_dir / "b").exists()
    assert devkit_main(["new", "ok", "--dir", str(short_dir / "c")]) == 2


def test_scaffolded_app_runs_in_a_real_worker_and_counts_taps(short_dir: Path) -> None:
    apps_dir = short_dir / "apps"
    assert (
        devkit_main(["new", "counter", "--dir", str(apps_dir / "counter"), "--id", "org.test.counter"]) == 0
    )
    hub = start_hub(short_dir, apps_dir)
    app_id = "org.test.counter"

    async def body() -> None:
        shell = HubClient(hub.endpoint, role="shell")
        await shell.connect()
        try:
            shell.send("app.launch", "hub", {"app_id": app_id})
            opened = await shell.expect("page.open", timeout=15, app_id=app_id)
            page_id = opened.payload["page_id"]
            rendered = await shell.expect("page.render", timeout=15, page_id=page_id)
            assert rendered.payload["data"] == {"count": 0, "label": "Not tapped yet", "level": "low"}
            for expected in ({"count": 1, "label": "Tapped 1 time"}, {"count": 2, "label": "Tapped 2 times"}):
                shell.send(
                    "page.event", f"app:{app_id}", {"page_id": page_id, "handler": "onTap", "event": {}}
                )
                update = await shell.expect("page.setData", page_id=page_id)
                assert {k: update.payload["diff"][k] for k in expected} == expected
        finally:
            await shell.close()

    try:
        asyncio.run(body())
    finally:
        hub.stop()
