"""Gray-release cohorts and the automatic widen/rollback decisions (in-memory database, fake repository)."""

from __future__ import annotations

from typing import Any

import pytest

from vehicle_host import releases
from vehicle_host.registry.db import Figures, RegistryDB
from vehicle_host.registry.errors import RegistryError
from vehicle_host.registry.review import domain_allowed, in_namespace
from vehicle_host.registry.rollout import RolloutPolicy, Rollouts, decide, fleet_share, next_step

APP = "com.acme.nav"
FLEET = [f"VIN{n:07d}" for n in range(10_000)]


class Sink:
    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []

    def set_releases(self, doc: dict[str, Any]) -> None:
        releases.check(doc)
        self.docs.append(doc)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def world() -> tuple[Rollouts, Sink, RegistryDB]:
    db = RegistryDB(":memory:")
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        sid = db.add_submission("acme", APP, version, "0" * 64, 100, "{}", [{"name": "x", "ok": True}], 1.0)
        db.decide(sid, "approved", "", 2.0)
    sink = Sink()
    rollouts = Rollouts(db, sink, RolloutPolicy(threshold=0.02, min_launches=20), Clock())
    rollouts.release(APP, "1.0.0", "admin")
    return rollouts, sink, db


def test_five_percent_of_ten_thousand_vehicles() -> None:
    share = fleet_share(APP, 5, FLEET)
    assert 400 <= share <= 600  # 5 % +- 1 percentage point
    assert 2400 <= fleet_share(APP, 25, FLEET) <= 2600
    assert fleet_share(APP, 100, FLEET) == 10_000 and fleet_share(APP, 0, FLEET) == 0
    # another app samples other vehicles
    other = {v for v in FLEET if releases.in_percent("com.acme.radio", v, 5)}
    mine = {v for v in FLEET if releases.in_percent(APP, v, 5)}
    assert len(other & mine) < len(mine) // 2


def test_widening_keeps_the_earlier_cohort() -> None:
    previous: set[str] = set()
    for percent in (5, 25, 50, 100):
        cohort = {v for v in FLEET if releases.in_percent(APP, v, percent)}
        assert previous <= cohort
        assert len(cohort) > len(previous)
        previous = cohort


def test_decisions_follow_health_and_minimum_launches() -> None:
    policy = RolloutPolicy(threshold=0.02, min_launches=20)
    assert decide(Figures(launches=19, crashes=19), policy) == "hold"
    assert decide(Figures(launches=100, crashes=1, errors=1), policy) == "widen"  # exactly 2 %
    assert decide(Figures(launches=100, crashes=2, errors=1), policy) == "rollback"
    assert decide(Figures(launches=20, errors=1), policy) == "rollback"
    assert [next_step(p) for p in (0, 5, 10, 25, 50)] == [5, 25, 25, 50, 100]


def test_auto_widen_walks_the_steps_then_promotes(world: tuple[Rollouts, Sink, RegistryDB]) -> None:
    rollouts, sink, db = world
    rollouts.start_rollout(APP, "1.1.0", "admin")
    assert sink.docs[-1]["apps"][APP]["rollout"]["percent"] == 5
    seen = []
    for _ in range(3):
        db.add_health("car", [(APP, "1.1.0", 10, 0, 0)], rollouts.clock())
        assert rollouts.evaluate(APP) == "hold"  # 10 launches in this step: not enough yet
        db.add_health("car", [(APP, "1.1.0", 10, 0, 0)], rollouts.clock())
        assert rollouts.evaluate(APP) == "widen"
        state = rollouts.state(APP)
        assert state is not None
        seen.append(state.rollout_percent if state.rollout else state.stable)
    assert seen == [25.0, 50.0, "1.1.0"]
    assert "rollout" not in sink.docs[-1]["apps"][APP]
    assert sink.docs[-1]["apps"][APP]["stable"]["version"] == "1.1.0"


def test_auto_rollback_removes_the_rollout_and_audits(world: tuple[Rollouts, Sink, RegistryDB]) -> None:
    rollouts, sink, db = world
    rollouts.start_rollout(APP, "1.1.0", "admin", percent=25)
    db.add_health("car", [(APP, "1.1.0", 60, 1, 0)], rollouts.clock())  # 1.7 %: under 2 %
    db.add_health("car", [(APP, "1.0.0", 30, 30, 0)], rollouts.clock())
    assert rollouts.evaluate(APP) == "widen"
    db.add_health("car", [(APP, "1.1.0", 30, 2, 1)], rollouts.clock())
    assert rollouts.evaluate(APP) == "rollback"
    state = rollouts.state(APP)
    assert state is not None and state.rollout is None and state.stable == "1.0.0"
    assert "rollout" not in sink.docs[-1]["apps"][APP]
    entry = db.audit_log(app_id=APP, limit=1)[0]
    assert entry["actor"] == "auto" and entry["action"] == "auto-rollback"
    assert entry["detail"]["figures"]["launches"] == 30 and entry["detail"]["percent"] == 50.0
    assert rollouts.evaluate(APP) == "hold"


def test_one_click_rollback_and_refusals(world: tuple[Rollouts, Sink, RegistryDB]) -> None:
    rollouts, sink, _ = world
    rollouts.release(APP, "1.1.0", "admin")
    rollouts.release(APP, "1.2.0", "admin")
    assert rollouts.rollback(APP, "admin").stable == "1.1.0"
    assert rollouts.rollback(APP, "admin").stable == "1.0.0"  # never back to a version rolled back from
    with pytest.raises(RegistryError, match="no earlier released version"):
        rollouts.rollback(APP, "admin")
    assert sink.docs[-1]["apps"][APP]["stable"] == {
        "version": "1.0.0",
        "target": releases.target_path(APP, "1.0.0"),
        "urgent": True,
    }
    with pytest.raises(RegistryError, match="not an approved submission"):
        rollouts.start_rollout(APP, "9.9.9", "admin")
    with pytest.raises(RegistryError, match="no rollout"):
        rollouts.widen(APP, "admin")


def test_experiment_splits_the_fleet_and_reports_per_variant(
    world: tuple[Rollouts, Sink, RegistryDB],
) -> None:
    rollouts, sink, db = world
    for bad in ("", "x" * 65, "a b", 7):
        with pytest.raises(RegistryError, match="name the experiment"):
            rollouts.start_experiment(APP, bad, "1.1.0", "1.2.0", 30, "admin")  # type: ignore[arg-type]
    rollouts.start_experiment(APP, "colors", "1.1.0", "1.2.0", 30, "admin")
    doc = sink.docs[-1]
    choices = [releases.choose(APP, releases.check(doc)[APP], v).version for v in FLEET[:2000]]
    assert 500 <= choices.count("1.1.0") <= 700  # 30 % of 2000, +- 5 points
    assert set(choices) == {"1.1.0", "1.2.0"}
    db.add_health("car", [(APP, "1.1.0", 10, 1, 0), (APP, "1.2.0", 10, 0, 0)], rollouts.clock())
    figures = rollouts.health(APP)["experiment"]
    assert (
        figures["A"]["version"] == "1.1.0" and figures["A"]["crashes"] == 1 and figures["B"]["crashes"] == 0
    )
    with pytest.raises(RegistryError, match="experiment"):
        rollouts.start_rollout(APP, "1.1.0", "admin")
    rollouts.stop_experiment(APP, "admin")
    assert "experiment" not in sink.docs[-1]["apps"][APP]


def test_ceiling_matching() -> None:
    assert in_namespace("com.acme.nav", "com.acme")
    assert not in_namespace("com.acmex.nav", "com.acme") and not in_namespace("com.acme", "com.acme")
    ceiling = ["*.acme.example", "maps.example:443"]
    assert domain_allowed("api.acme.example", ceiling)
    assert domain_allowed("*.eu.acme.example", ceiling)
    assert domain_allowed("api.acme.example:8443", ceiling)
    assert not domain_allowed("acme.example", ceiling)
    assert not domain_allowed("evilacme.example", ceiling)
    assert domain_allowed("maps.example:443", ceiling) and not domain_allowed("maps.example", ceiling)
