"""The registry web console in a real browser (Debian chromium via Playwright) against a real server;
after each click, head units (bundle cache + TUF client over HTTP + syncer) sync and follow."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.integration.pipeline_helpers import HeadUnit, cohort_ids, head_unit
from tests.integration.registry_helpers import Setup, make_bundle, start, stop
from vehicle_host import releases
from vehicle_host.registry.db import Release
from vehicle_host.registry.rollout import RolloutPolicy
from vehicle_host.trust.errors import TrustError

pytestmark = pytest.mark.e2e
APP = "com.acme.nav"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def state(reg: Setup) -> Release:
    current = reg.registry.rollouts.state(APP)
    assert current is not None
    return current


def eventually(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"the server never reached: {what}")
        time.sleep(0.05)


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Setup]:
    setup = start(tmp_path, RolloutPolicy(auto=False))
    yield setup
    stop(setup)


@pytest.fixture
def cars(reg: Setup, tmp_path: Path) -> Iterator[tuple[HeadUnit, HeadUnit]]:
    """Two head units over HTTP: one in the 5 % rollout cohort, one in 25 % but not 5 %."""
    early, second, _ = cohort_ids(APP)
    root, url = reg.registry.trust_root(), reg.server.url + "/repo"
    units = (
        head_unit(tmp_path / "cars", "early", early, root, url),
        head_unit(tmp_path / "cars", "second", second, root, url),
    )
    yield units
    for unit in units:
        unit.close()


def follow(*units: HeadUnit) -> list[tuple[str | None, bool | None]]:
    """Sync each head unit once: (active version, downloaded or None when nothing changed)."""
    out: list[tuple[str | None, bool | None]] = []
    for unit in units:
        changed = {c.app_id: c for c in unit.sync().changed}
        out.append((unit.active(APP), changed[APP].downloaded if APP in changed else None))
    return out


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_console_reviews_widens_and_rolls_back(
    reg: Setup, page: Page, tmp_path: Path, cars: tuple[HeadUnit, HeadUnit]
) -> None:
    early, second = cars
    acme = reg.add_partner(tmp_path, "acme", "com.acme", ["vehicle.signals"], [])
    for version in ("1.0.0", "1.1.0"):
        _, sub = reg.publish(acme, make_bundle(tmp_path, APP, version))
        reg.registry.approve(sub["id"], "admin")
        reg.registry.release_op(APP, "release", "admin", {"version": version})
        assert follow(early, second) == [(version, True), (version, True)]
    _, pending = reg.publish(acme, make_bundle(tmp_path, APP, "1.2.0"))
    _, bad = reg.publish(
        acme, make_bundle(tmp_path, "com.acme.greedy", "1.0.0", permissions=("vehicle.doors",))
    )

    page.goto(reg.server.url + "/")
    page.get_by_test_id("token").fill("not-the-token")
    page.get_by_test_id("connect").click()
    expect(page.get_by_test_id("status")).to_contain_text("Cannot connect")
    page.get_by_test_id("token").fill(reg.admin)
    page.get_by_test_id("connect").click()

    # review: the failing submission cannot be approved and is rejected with a reason
    expect(page.get_by_test_id(f"submission-{bad['id']}")).to_contain_text("vehicle.doors")
    expect(page.get_by_test_id(f"approve-{bad['id']}")).to_be_disabled()
    page.get_by_test_id(f"reason-{bad['id']}").fill("asks for door control")
    page.get_by_test_id(f"reject-{bad['id']}").click()
    eventually(lambda: reg.registry.submission(bad["id"]).status == "rejected", "submission rejected")
    assert reg.registry.submission(bad["id"]).reason == "asks for door control"
    expect(page.get_by_test_id(f"submission-{bad['id']}")).to_have_count(0)
    with pytest.raises(TrustError):  # a rejected bundle never reaches the signed repository
        early.repo.target_info(releases.target_path("com.acme.greedy", "1.0.0"))

    page.get_by_test_id(f"approve-{pending['id']}").click()
    eventually(lambda: reg.registry.submission(pending["id"]).status == "approved", "submission approved")
    expect(page.get_by_test_id(f"rollout-{APP}-1.2.0")).to_be_visible()
    # approved: the signed bundle is in the repository, yet no vehicle runs it before a release
    assert follow(early, second) == [("1.1.0", None), ("1.1.0", None)]
    signed = early.repo.target_info(releases.target_path(APP, "1.2.0"))
    assert signed.length == (tmp_path / f"{APP}-1.2.0.vhb").stat().st_size

    # rollout at 5 %, live health figures, widen to 25 %
    page.get_by_test_id(f"rollout-{APP}-1.2.0").click()
    eventually(lambda: state(reg).rollout == "1.2.0", "rollout started")
    expect(page.get_by_test_id(f"rollout-{APP}")).to_contain_text("1.2.0 at 5 %")
    assert follow(early, second) == [("1.2.0", True), ("1.1.0", None)]  # only the 5 % cohort moves
    reg.registry.ingest_health(
        "car-1", [{"app_id": APP, "version": "1.2.0", "launches": 7, "crashes": 1, "errors": 0}]
    )
    expect(page.get_by_test_id(f"app-{APP}")).to_contain_text("this step: 7 launches, 1 crashes")
    page.get_by_test_id(f"widen-{APP}").click()
    eventually(lambda: state(reg).rollout_percent == 25.0, "rollout widened to 25 %")
    expect(page.get_by_test_id(f"rollout-{APP}")).to_contain_text("1.2.0 at 25 %")
    assert follow(early, second) == [("1.2.0", None), ("1.2.0", True)]  # the 25 % cohort joins

    # one-click rollback: stable goes back to 1.0.0, the rollout ends, and the page shows it
    page.get_by_test_id(f"rollback-{APP}").click()
    eventually(lambda: state(reg).stable == "1.0.0", "stable rolled back to 1.0.0")
    assert state(reg).rollout is None
    assert reg.registry.releases_document()["apps"][APP]["stable"]["version"] == "1.0.0"
    downloads = [list(unit.repo.fetched) for unit in cars]
    assert follow(early, second) == [("1.0.0", False), ("1.0.0", False)]  # from the cache, one sync
    assert [unit.repo.fetched for unit in cars] == downloads
    assert [unit.launchable(APP) for unit in cars] == ["1.0.0", "1.0.0"]
    expect(page.get_by_test_id(f"stable-{APP}")).to_contain_text("Stable: 1.0.0")
    expect(page.get_by_test_id("audit")).to_contain_text("rollback")
    actions = [e["action"] for e in reg.registry.audit_log(APP)][:3]
    assert actions == ["rollback", "widen", "rollout"]
