"""The release document and stable cohorts shared by the registry and head units."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from vehicle_host import releases
from vehicle_host.releases import ReleaseError

APP = "com.acme.diag"
FLEET = [f"VIN{n:06d}" for n in range(10_000)]


def _doc(**entry: Any) -> dict[str, Any]:
    base = {"stable": {"version": "1.0.0", "target": releases.target_path(APP, "1.0.0")}}
    return {"format": 1, "apps": {APP: base | entry}}


def _pin(version: str, **extra: Any) -> dict[str, Any]:
    return {"version": version, "target": releases.target_path(APP, version)} | extra


def test_rollout_share_is_close_to_its_percentage_and_widening_keeps_the_first_cohort() -> None:
    five = {v for v in FLEET if releases.in_percent(APP, v, 5)}
    twenty_five = {v for v in FLEET if releases.in_percent(APP, v, 25)}
    assert 400 <= len(five) <= 600
    assert 2_300 <= len(twenty_five) <= 2_700
    assert five <= twenty_five


def test_cohorts_differ_between_apps() -> None:
    a = {v for v in FLEET if releases.in_percent(APP, v, 10)}
    b = {v for v in FLEET if releases.in_percent("com.acme.other", v, 10)}
    assert len(a & b) < len(a) // 2


def test_choose_follows_rollout_then_stable() -> None:
    doc = _doc(rollout=_pin("1.1.0", percent=5, urgent=True))
    entry = releases.check(doc)[APP]
    chosen = [releases.choose(APP, entry, v) for v in FLEET]
    newer = [c for c in chosen if c.version == "1.1.0"]
    assert all(c.track == "rollout" and c.urgent for c in newer)
    assert {c.version for c in chosen if c.track == "stable"} == {"1.0.0"}
    assert 400 <= len(newer) <= 600


def test_experiment_splits_the_fleet_into_two_complementary_variants() -> None:
    variants = {"A": _pin("2.0.0"), "B": _pin("2.1.0")}
    doc = _doc(experiment={"name": "layout", "split": 50, "variants": variants})
    entry = releases.check(doc)[APP]
    tracks = [releases.choose(APP, entry, v).track for v in FLEET]
    assert set(tracks) == {"variant:A", "variant:B"}
    assert 4_500 <= tracks.count("variant:A") <= 5_500


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(format=2), "format"),
        (lambda d: d["apps"].update({"Bad Id": d["apps"][APP]}), "bad app id"),
        (lambda d: d["apps"][APP]["stable"].update(version="one"), "not a version"),
        (lambda d: d["apps"][APP]["stable"].update(target="apps/com.other.app/1.0.0/x.vhb"), "not this app"),
        (lambda d: d["apps"][APP]["stable"].update(target="../../etc/passwd"), "not this app"),
        (lambda d: d["apps"][APP].update(rollout=_pin("1.1.0", percent=150)), "0 to 100"),
        (lambda d: d["apps"][APP].update(experiment={"name": "x", "split": 50, "variants": {}}), "A and B"),
    ],
)
def test_malformed_documents_are_refused_with_the_reason(change: Any, words: str) -> None:
    doc = copy.deepcopy(_doc())
    change(doc)
    with pytest.raises(ReleaseError, match=words):
        releases.check(doc)
