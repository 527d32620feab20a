import json
from pathlib import Path

from vehicle_host.bundles import catalog
from vehicle_host.wire import API_LEVEL


def install(apps: Path, folder: str, version: str, runtime: tuple[int, int]) -> None:
    root = apps / folder
    (root / "pages/index").mkdir(parents=True)
    manifest = {
        "pages": ["pages/index/index"],
        "vehicle": {
            "id": "com.dealer.diag",
            "name": "Diag",
            "version": version,
            "runtime": {"min": runtime[0], "max": runtime[1]},
        },
    }
    (root / "app.json").write_text(json.dumps(manifest))


def test_an_incompatible_update_is_refused_and_the_cached_version_stays_usable(tmp_path: Path) -> None:
    install(tmp_path, "diag-1.0.0", "1.0.0", (1, API_LEVEL))
    install(tmp_path, "diag-1.10.0", "1.10.0", (API_LEVEL + 1, API_LEVEL + 1))
    apps, broken = catalog.scan(tmp_path)
    assert [a.manifest.version for a in apps] == ["1.0.0"]
    assert len(broken) == 1 and broken[0].path.name == "diag-1.10.0"
    assert f"needs host API {API_LEVEL + 1}-{API_LEVEL + 1}" in broken[0].error
    assert "version 1.0.0 stays in use" in broken[0].error


def test_the_newest_runnable_version_wins_by_semantic_order(tmp_path: Path) -> None:
    install(tmp_path, "a", "1.9.0", (1, API_LEVEL))
    install(tmp_path, "b", "1.10.0", (1, API_LEVEL))
    apps, broken = catalog.scan(tmp_path)
    assert [a.manifest.version for a in apps] == ["1.10.0"]
    assert "older than 1.10.0" in broken[0].error


def test_with_no_runnable_version_the_newest_is_listed_as_incompatible(tmp_path: Path) -> None:
    install(tmp_path, "a", "2.0.0", (API_LEVEL + 1, API_LEVEL + 2))
    apps, _ = catalog.scan(tmp_path)
    assert apps[0].summary(with_icon=False)["compatible"] is False


def test_the_same_version_twice_is_reported(tmp_path: Path) -> None:
    install(tmp_path, "a", "1.0.0", (1, API_LEVEL))
    install(tmp_path, "b", "1.0.0", (1, API_LEVEL))
    apps, broken = catalog.scan(tmp_path)
    assert len(apps) == 1 and "installed twice" in broken[0].error
