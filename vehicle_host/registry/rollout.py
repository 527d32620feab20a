"""Gray releases, health-driven widening and rollback, A/B experiments.

An app's release state (one row per app and channel) says which version every vehicle runs
(``stable``), which newer version a stable cohort of vehicles runs (``rollout`` at a percentage)
and optionally an A/B experiment. Every change re-writes the signed ``releases.json`` at once
(``RegistryRepository.set_releases``); head units pick their version with
:func:`vehicle_host.releases.choose`, so widening 5 % -> 25 % keeps the first 5 %.

Automatic decisions use the rollout version's health since its current step started:
``(crashes + errors) / launches``. With at least ``min_launches`` launches, a rate at or under the
threshold widens to the next step (5 -> 25 -> 50 -> 100; 100 promotes the version to stable) and a
rate above it removes the rollout (stable stays) with an audit entry.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from vehicle_host import releases
from vehicle_host.registry.db import Figures, RegistryDB, Release
from vehicle_host.registry.errors import RegistryError

CHANNEL = "stable"  # releases.json carries one channel
DEFAULT_STEPS = (5.0, 25.0, 50.0, 100.0)
Decision = Literal["widen", "rollback", "hold"]
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # it goes into the signed releases.json


class ReleaseSink(Protocol):
    def set_releases(self, doc: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class RolloutPolicy:
    steps: tuple[float, ...] = DEFAULT_STEPS
    threshold: float = 0.02  # (crashes + errors) / launches
    min_launches: int = 20  # per step, before any automatic decision
    auto: bool = True

    @property
    def first_step(self) -> float:
        return self.steps[0]


def decide(figures: Figures, policy: RolloutPolicy) -> Decision:
    """What the health of a rollout step calls for."""
    if figures.launches < policy.min_launches:
        return "hold"
    return "rollback" if figures.failure_rate > policy.threshold else "widen"


def next_step(percent: float, steps: Iterable[float] = DEFAULT_STEPS) -> float:
    """The first step above ``percent`` (100 when none is)."""
    return next((s for s in sorted(steps) if s > percent), 100.0)


def fleet_share(app_id: str, percent: float, vehicle_ids: Iterable[str]) -> int:
    """How many of ``vehicle_ids`` fall in the app's ``percent`` cohort."""
    return sum(1 for v in vehicle_ids if releases.in_percent(app_id, v, percent))


def _check_percent(percent: Any) -> float:
    if type(percent) not in (int, float) or not 0 < percent <= 100:
        raise RegistryError(400, "bad_percent", "percent must be a number above 0 and at most 100")
    return float(percent)


class Rollouts:
    """Release operations on the database; each one re-publishes ``releases.json``."""

    def __init__(
        self,
        db: RegistryDB,
        sink: ReleaseSink,
        policy: RolloutPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.sink = sink
        self.policy = policy or RolloutPolicy()
        self.clock = clock

    # reading
    def state(self, app_id: str) -> Release | None:
        return self.db.release(app_id, CHANNEL)

    def document(self) -> dict[str, Any]:
        """The ``releases.json`` document for the current state (checked)."""
        apps: dict[str, Any] = {}
        for r in self.db.releases(CHANNEL):
            entry: dict[str, Any] = {"stable": self._pin(r.app_id, r.stable, r.stable_urgent)}
            if r.rollout is not None:
                entry["rollout"] = {
                    **self._pin(r.app_id, r.rollout, r.rollout_urgent),
                    "percent": r.rollout_percent,
                }
            if r.experiment:
                entry["experiment"] = {
                    "name": r.experiment["name"],
                    "split": r.experiment["split"],
                    "variants": {
                        k: self._pin(r.app_id, v["version"], False)
                        for k, v in r.experiment["variants"].items()
                    },
                }
            apps[r.app_id] = entry
        doc = {"format": releases.FORMAT, "apps": apps}
        releases.check(doc)
        return doc

    @staticmethod
    def _pin(app_id: str, version: str, urgent: bool) -> dict[str, Any]:
        return {"version": version, "target": releases.target_path(app_id, version), "urgent": urgent}

    def health(self, app_id: str) -> dict[str, Any]:
        """Figures for the console: rollout step, stable, experiment variants and fleet shares."""
        r = self.state(app_id)
        if r is None:
            return {}
        vehicles = self.db.vehicles(app_id)
        out: dict[str, Any] = {
            "stable": self.db.figures(app_id, r.stable).public(),
            "fleet": {"known_vehicles": len(vehicles)},
        }
        if r.rollout is not None:
            step = self.db.figures(app_id, r.rollout, r.rollout_step_at)
            out["rollout"] = {
                "total": self.db.figures(app_id, r.rollout).public(),
                "step": step.public(),
                "decision": decide(step, self.policy),
            }
            out["fleet"]["in_rollout"] = fleet_share(app_id, r.rollout_percent, vehicles)
        if r.experiment:
            since = float(r.experiment.get("started", 0.0))
            out["experiment"] = {
                name: {"version": v["version"], **self.db.figures(app_id, v["version"], since).public()}
                for name, v in r.experiment["variants"].items()
            }
        return out

    # changing
    def _approved(self, app_id: str, version: Any) -> str:
        if not isinstance(version, str) or self.db.approved(app_id, version) is None:
            raise RegistryError(
                409, "not_approved", f"{app_id} {version} is not an approved submission; approve it first"
            )
        return version

    def _require(self, app_id: str) -> Release:
        r = self.state(app_id)
        if r is None:
            raise RegistryError(409, "not_released", f"{app_id} has no release yet; release a version first")
        return r

    def _save(self, r: Release, actor: str, action: str, detail: dict[str, Any]) -> Release:
        r.updated = self.clock()
        with self.db.transaction():  # a refused releases.json leaves the database unchanged
            self.db.put_release(r)
            self.db.audit(actor, action, r.app_id, detail, r.updated)
            self.sink.set_releases(self.document())
        return r

    def _mark_released(self, app_id: str, version: str) -> None:
        sub = self.db.approved(app_id, version)
        if sub is not None and sub.released is None:
            self.db.mark_released(sub.id, self.clock())

    def release(self, app_id: str, version: str, actor: str, *, urgent: bool = False) -> Release:
        """Make ``version`` the stable version for every vehicle (ends any rollout)."""
        self._approved(app_id, version)
        previous = self.state(app_id)
        r = previous or Release(app_id, CHANNEL, version)
        detail = {"version": version, "previous": previous.stable if previous else None, "urgent": urgent}
        r.stable, r.stable_urgent, r.rollout = version, urgent, None
        with self.db.transaction():
            self._mark_released(app_id, version)
            return self._save(r, actor, "release", detail)

    def start_rollout(
        self, app_id: str, version: str, actor: str, *, percent: float | None = None, urgent: bool = False
    ) -> Release:
        """Gray-release ``version`` to ``percent`` of the fleet (default: the first step, 5 %)."""
        self._approved(app_id, version)
        pct = _check_percent(self.policy.first_step if percent is None else percent)
        r = self._require(app_id)
        if version == r.stable:
            raise RegistryError(409, "already_stable", f"{app_id} {version} is already the stable version")
        if r.experiment:
            raise RegistryError(409, "experiment_running", f"{app_id} runs an experiment; stop it first")
        if pct >= 100:
            return self.release(app_id, version, actor, urgent=urgent)
        replaced = r.rollout
        r.rollout, r.rollout_percent, r.rollout_urgent, r.rollout_step_at = version, pct, urgent, self.clock()
        detail = {"version": version, "percent": pct, "urgent": urgent, "replaced": replaced}
        return self._save(r, actor, "rollout", detail)

    def widen(self, app_id: str, actor: str, *, percent: float | None = None) -> Release:
        """Widen the rollout to the next step (or ``percent``); 100 % makes it the stable version."""
        r = self._require(app_id)
        if r.rollout is None:
            raise RegistryError(409, "no_rollout", f"{app_id} has no rollout to widen; start one first")
        pct = next_step(r.rollout_percent, self.policy.steps) if percent is None else _check_percent(percent)
        if pct <= r.rollout_percent:
            raise RegistryError(
                409, "not_wider", f"the rollout is at {r.rollout_percent:g} %; widen to more than that"
            )
        detail = {"version": r.rollout, "from": r.rollout_percent, "to": pct}
        if pct >= 100:
            version = r.rollout
            r.stable, r.stable_urgent, r.rollout = version, r.rollout_urgent, None
            with self.db.transaction():
                self._mark_released(app_id, version)
                return self._save(r, actor, "promote", detail)
        r.rollout_percent, r.rollout_step_at = pct, self.clock()
        return self._save(r, actor, "widen", detail)

    def stop_rollout(
        self, app_id: str, actor: str, *, action: str = "stop-rollout", **detail: Any
    ) -> Release:
        """Remove the rollout; every vehicle goes back to (or stays on) the stable version."""
        r = self._require(app_id)
        if r.rollout is None:
            raise RegistryError(409, "no_rollout", f"{app_id} has no rollout to stop")
        detail = {"version": r.rollout, "percent": r.rollout_percent, **detail}
        r.rollout = None
        return self._save(r, actor, action, detail)

    def rollback(self, app_id: str, actor: str, *, version: str | None = None) -> Release:
        """One click: stable := the previous released version (or ``version``); rollout and experiment end.

        The version rolled back from stops counting as released, so a later rollback never returns to it."""
        r = self._require(app_id)
        current = self.db.approved(app_id, r.stable)
        if version is None:
            limit = current.released if current and current.released else self.clock()
            candidates = [
                s
                for s in self.db.submissions(app_id=app_id, status="approved", limit=1000)
                if s.released is not None and s.version != r.stable and s.released < limit
            ]
            if not candidates:
                raise RegistryError(
                    409, "no_previous", f"{app_id} has no earlier released version to roll back to"
                )
            version = max(candidates, key=lambda s: s.released or 0.0).version
        else:
            self._approved(app_id, version)
            if version == r.stable:
                raise RegistryError(
                    409, "already_stable", f"{app_id} {version} is already the stable version"
                )
        detail = {"from": r.stable, "to": version, "rollout_removed": r.rollout}
        r.stable, r.stable_urgent, r.rollout, r.experiment = version, True, None, None
        with self.db.transaction():
            if current is not None:
                self.db.mark_released(current.id, None)
            self._mark_released(app_id, version)
            return self._save(r, actor, "rollback", detail)

    def start_experiment(self, app_id: str, name: str, a: str, b: str, split: float, actor: str) -> Release:
        """A/B: vehicles split ``split`` % to version ``a`` and the rest to ``b`` (no rollout meanwhile)."""
        self._approved(app_id, a)
        self._approved(app_id, b)
        if a == b:
            raise RegistryError(400, "same_versions", "an experiment needs two different versions")
        if not isinstance(name, str) or not EXPERIMENT_NAME.match(name):
            raise RegistryError(400, "bad_name", "name the experiment with 1 to 64 letters, digits or ._-")
        if type(split) not in (int, float) or not 0 < split < 100:
            raise RegistryError(400, "bad_split", "split must be a number between 0 and 100 (exclusive)")
        r = self._require(app_id)
        if r.rollout is not None:
            raise RegistryError(409, "rollout_running", f"{app_id} has a rollout; widen or stop it first")
        r.experiment = {
            "name": name,
            "split": float(split),
            "variants": {"A": {"version": a}, "B": {"version": b}},
            "started": self.clock(),
        }
        return self._save(r, actor, "experiment", {"name": name, "A": a, "B": b, "split": split})

    def stop_experiment(self, app_id: str, actor: str) -> Release:
        r = self._require(app_id)
        if not r.experiment:
            raise RegistryError(409, "no_experiment", f"{app_id} runs no experiment")
        detail = {"name": r.experiment["name"], "figures": self.health(app_id).get("experiment", {})}
        r.experiment = None
        return self._save(r, actor, "stop-experiment", detail)

    def evaluate(self, app_id: str) -> Decision:
        """Apply the automatic decision for the app's rollout from its health (after new reports)."""
        r = self.state(app_id)
        if r is None or r.rollout is None or not self.policy.auto:
            return "hold"
        figures = self.db.figures(app_id, r.rollout, r.rollout_step_at)
        decision = decide(figures, self.policy)
        if decision == "widen":
            self.widen(app_id, "auto")
        elif decision == "rollback":
            self.stop_rollout(
                app_id,
                "auto",
                action="auto-rollback",
                figures=figures.public(),
                threshold=self.policy.threshold,
            )
        return decision
