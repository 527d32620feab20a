"""The installed-app catalog: hostile or broken bundles are listed as broken, never raised."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vehicle_host.bundles import catalog
from vehicle_host.wire import Envelope, encode

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _app(root: Path, name: str, app_json: str) -> None:
    (root / name).mkdir()
    (root / name / "app.json").write_text(app_json)


def test_hostile_and_broken_manifests_are_reported_and_the_rest_still_load(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "vehicle-info", tmp_path / "good")
    _app(tmp_path, "deep", "[" * 50_000)
    _app(tmp_path, "notjson", "{nope")
    _app(tmp_path, "noid", json.dumps({"pages": ["pages/index/index"], "vehicle": {"name": "x"}}))
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / "app.json").write_bytes(b"\xff\xfe\x00")
    apps, broken = catalog.scan(tmp_path)
    assert [a.manifest.app_id for a in apps] == ["org.vehiclehost.samples.vehicleinfo"]
    reasons = {b.path.name: b.error for b in broken}
    assert set(reasons) == {"deep", "notjson", "noid", "binary"}
    assert "nests too deeply" in reasons["deep"]
    assert "vehicle.id" in reasons["noid"]


def test_the_launcher_listing_fits_one_message_whatever_the_icons(tmp_path: Path) -> None:
    for i in range(40):
        target = tmp_path / f"app{i:02d}"
        shutil.copytree(EXAMPLES / "vehicle-info", target)
        doc = json.loads((target / "app.json").read_text())
        doc["vehicle"]["id"] = f"org.test.app{i:02d}"
        (target / "app.json").write_text(json.dumps(doc))
        (target / "icon.png").write_bytes(b"\x89PNG" + b"\x00" * (catalog.MAX_ICON_BYTES - 4))
    apps, _ = catalog.scan(tmp_path)
    listing = catalog.listing(apps)
    assert len(listing) == 40
    assert any(item["icon"] for item in listing) and not all(item["icon"] for item in listing)
    encode(Envelope("app.list.result", 1, "hub", "shell", {"apps": listing}))  # within the wire limit
