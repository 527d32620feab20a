"""The simulated car's live state: a drive cycle, the values OBD PIDs report, and DBC broadcasts.

:class:`VehicleModel` is pure (state from elapsed time, no I/O, thread-safe); :class:`Broadcaster`
sends the DBC frames (vehicle speed every 20 ms, gear and ignition every 100 ms) on a bus.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import can
import cantools

from vehicle_host.simulator.scenario import Scenario

LOG = logging.getLogger(__name__)

GEARS = ("P", "R", "N", "D")
IGNITION = ("OFF", "ACC", "ON", "START")
IDLE_RPM = 750.0
_RATIOS = (0.0, 110.0, 62.0, 43.0, 33.0, 27.0, 23.0)  # rpm per km/h in gears 1..6
_START_S = 1.5  # OFF -> ACC -> START -> ON at power-up


def load_dbc() -> Any:
    """The vehicle DBC shipped with the CAN diagnostics plugin (a cantools Database)."""
    text = resources.files("vehicle_host.plugins.can_diagnostics").joinpath("data/vehicle.dbc").read_text()
    return cantools.database.load_string(text, database_format="dbc")


@dataclass(frozen=True, slots=True)
class VehicleState:
    """Everything the ECUs report live; units as in OBD-II."""

    speed_kmh: float
    rpm: float
    gear: str
    ignition: str
    throttle_pct: float
    load_pct: float
    maf_gs: float
    coolant_c: float
    intake_c: float
    ambient_c: float
    fuel_pct: float


@dataclass(slots=True)
class _Override:
    speed_kmh: float | None = None
    gear: str | None = None
    ignition: str | None = None


class VehicleModel:
    """Drive cycle: power-up, then park → drive → accelerate → cruise → brake → park, looping."""

    def __init__(self, scenario: Scenario, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._scenario = scenario
        self._parked = scenario.parked
        self._override = _Override()
        self._lock = threading.Lock()

    # -- controls (tests and the CLI use these) -------------------------------------------------
    def set_speed(self, kmh: float | None) -> None:
        """Hold the speed at ``kmh`` (gear D when moving); ``None`` returns to the drive cycle."""
        if kmh is not None and not 0 <= kmh <= 300:
            raise ValueError(f"speed {kmh} km/h out of range 0..300")
        with self._lock:
            self._override.speed_kmh = kmh

    def set_gear(self, gear: str | None) -> None:
        if gear is not None and gear not in GEARS:
            raise ValueError(f"gear must be one of {GEARS}, not {gear!r}")
        with self._lock:
            self._override.gear = gear

    def set_ignition(self, state: str | None) -> None:
        if state is not None and state not in IGNITION:
            raise ValueError(f"ignition must be one of {IGNITION}, not {state!r}")
        with self._lock:
            self._override.ignition = state

    def park(self, parked: bool = True) -> None:
        """Hold the car parked (ignition on, gear P, 0 km/h, engine idling) or let it drive."""
        with self._lock:
            self._parked = parked
            self._override = _Override()

    @property
    def parked(self) -> bool:
        return self._parked

    # -- state ------------------------------------------------------------------------------------
    def state(self) -> VehicleState:
        with self._lock:
            t = self._clock() - self._start
            base = self._cycle(t)
            override = replace(self._override)
        if override.speed_kmh is not None:
            speed = override.speed_kmh
            base = replace(base, speed_kmh=speed, gear="D" if speed > 0 else base.gear, ignition="ON")
            base = replace(base, throttle_pct=18.0 if speed > 0 else 12.0, rpm=_rpm(speed, "D"))
        if override.gear is not None:
            base = replace(base, gear=override.gear)
        if override.ignition is not None:
            base = replace(base, ignition=override.ignition)
        return self._derived(base, t)

    def _cycle(self, t: float) -> VehicleState:
        amb = float(self._scenario.ambient_c)
        if self._parked:
            return _state(0.0, "P", "ON", 12.0, amb)
        if t < _START_S:
            ignition = "OFF" if t < 0.5 else "ACC" if t < 1.0 else "START"
            rpm = 280.0 if ignition == "START" else 0.0
            return replace(_state(0.0, "P", ignition, 0.0, amb), rpm=rpm)
        period = self._scenario.cycle_s
        phase = ((t - _START_S) % period) / period  # 0..1 through one lap
        if phase < 0.05:
            return _state(0.0, "P", "ON", 12.0, amb)
        if phase < 0.10:
            return _state(0.0, "D", "ON", 12.0, amb)
        if phase < 0.45:  # accelerate to 90 km/h
            x = (phase - 0.10) / 0.35
            return _state(90.0 * math.sin(x * math.pi / 2), "D", "ON", 35.0 - 10.0 * x, amb)
        if phase < 0.70:  # cruise
            return _state(90.0 + 4.0 * math.sin((phase - 0.45) * 40.0), "D", "ON", 19.0, amb)
        if phase < 0.92:  # brake to a stop
            x = (phase - 0.70) / 0.22
            return _state(90.0 * math.cos(x * math.pi / 2), "D", "ON", 1.5, amb)
        return _state(0.0, "P", "ON", 12.0, amb)

    def _derived(self, s: VehicleState, t: float) -> VehicleState:
        running = s.ignition in ("ON", "START") and s.rpm > 0
        load = min(100.0, 15.0 + s.throttle_pct * 1.6 + s.speed_kmh * 0.05) if running else 0.0
        maf = s.rpm / 120.0 * 2.0 * 1.2 * load / 100.0
        coolant = 90.0 - (90.0 - s.ambient_c) * math.exp(-t / 60.0)
        fuel = max(0.0, self._scenario.fuel_pct - 0.004 * t)
        intake = s.ambient_c + 4.0 + 2.0 * math.sin(t / 7.0)
        return replace(s, load_pct=load, maf_gs=maf, coolant_c=coolant, fuel_pct=fuel, intake_c=intake)


def _rpm(speed: float, gear: str) -> float:
    if gear != "D" or speed <= 0.5:
        return IDLE_RPM
    band = min(len(_RATIOS) - 1, 1 + int(speed // 20))
    return max(IDLE_RPM, speed * _RATIOS[band] * (0.85 + 0.15 * ((speed % 20) / 20)))


def _state(speed: float, gear: str, ignition: str, throttle: float, ambient: float) -> VehicleState:
    return VehicleState(
        speed_kmh=max(0.0, speed),
        rpm=_rpm(speed, gear) if ignition == "ON" else 0.0,
        gear=gear,
        ignition=ignition,
        throttle_pct=throttle,
        load_pct=0.0,
        maf_gs=0.0,
        coolant_c=ambient,
        intake_c=ambient,
        ambient_c=ambient,
        fuel_pct=0.0,
    )


class Broadcaster:
    """Sends VehicleSpeed (0x1A0) every 20 ms and Gear (0x1A1) / Ignition (0x1A2) every 100 ms."""

    PERIOD_S = 0.02

    def __init__(self, bus: can.BusABC, model: VehicleModel) -> None:
        self._bus = bus
        self._model = model
        db = load_dbc()
        self._speed = db.get_message_by_name("VehicleSpeed")
        self._gear = db.get_message_by_name("Gear")
        self._ignition = db.get_message_by_name("Ignition")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.errors = 0

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-broadcast", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def frames(self, tick: int) -> list[can.Message]:
        """The frames due at ``tick`` (one tick = 20 ms)."""
        s = self._model.state()
        out = [
            self._message(
                self._speed,
                {
                    "VehicleSpeed": round(min(s.speed_kmh, 655.35), 2),
                    "EngineSpeed": round(min(s.rpm, 16383.75) * 4) / 4,
                    "SpeedValid": 1,
                    "RollingCounter": tick & 0xFFFF,
                },
            )
        ]
        if tick % 5 == 0:
            out.append(self._message(self._gear, {"GearPosition": s.gear, "GearCounter": (tick // 5) & 0xFF}))
            out.append(
                self._message(
                    self._ignition, {"IgnitionState": s.ignition, "IgnitionCounter": (tick // 5) & 0xFF}
                )
            )
        return out

    @staticmethod
    def _message(definition: Any, values: dict[str, Any]) -> can.Message:
        return can.Message(
            arbitration_id=definition.frame_id, is_extended_id=False, data=definition.encode(values)
        )

    def _run(self) -> None:
        tick = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            for message in self.frames(tick):
                try:
                    self._bus.send(message, timeout=0.05)
                    self.sent += 1
                except can.CanError as exc:
                    self.errors += 1
                    if self.errors in (1, 100, 10_000):
                        LOG.warning("broadcast frame not sent (%d so far): %s", self.errors, exc)
            tick += 1
            next_at += self.PERIOD_S
            delay = next_at - time.monotonic()
            if delay < -1.0:  # fell far behind (suspended?): do not burst to catch up
                next_at = time.monotonic()
            self._stop.wait(max(0.0, delay))
