"""Vehicle state from the DBC broadcast frames (speed, gear, ignition), decoded with cantools.

The decoder is a ``can.Listener`` on the diagnostics notifier. ``snapshot()`` gives
``{speed_kmh, gear, ignition, parked, stale, updated}``. It is conservative: a value not heard from
for ``stale_after`` seconds is stale, and a stale state is never ``parked`` (the gateway lets
parked-only calls such as clearing DTCs through only when ``parked`` is true).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import can
import cantools

from vehicle_host.plugins.contract import PluginError

MAX_DBC_BYTES = 4 * 1024 * 1024
STALE_AFTER_S = 1.0
PARKED_SPEED_KMH = 1.0


@dataclass(frozen=True, slots=True)
class SignalMap:
    """Which DBC message/signal carries each value (config key ``signals`` overrides)."""

    speed: tuple[str, str] = ("VehicleSpeed", "VehicleSpeed")
    speed_valid: tuple[str, str] = ("VehicleSpeed", "SpeedValid")
    gear: tuple[str, str] = ("Gear", "GearPosition")
    ignition: tuple[str, str] = ("Ignition", "IgnitionState")

    @classmethod
    def from_config(cls, value: Mapping[str, Any] | None) -> SignalMap:
        if not value:
            return cls()
        fields = {}
        for key in ("speed", "speed_valid", "gear", "ignition"):
            if key in value:
                message, _, signal = str(value[key]).partition(".")
                if not message or not signal:
                    raise PluginError(f"config signals.{key} must be 'Message.Signal', got {value[key]!r}")
                fields[key] = (message, signal)
        return cls(**fields)


def default_dbc_path() -> Path:
    return Path(str(resources.files(__package__).joinpath("data/vehicle.dbc")))


def load_dbc(path: str | Path | None) -> Any:
    """Load a DBC file with cantools; raises :class:`PluginError` saying what is wrong."""
    dbc = Path(path) if path else default_dbc_path()
    try:
        size = dbc.stat().st_size
        if size > MAX_DBC_BYTES:
            raise PluginError(f"DBC file {dbc} is {size} bytes; the limit is {MAX_DBC_BYTES}")
        return cantools.database.load_file(str(dbc), database_format="dbc", strict=True)
    except OSError as exc:
        raise PluginError(
            f"cannot read DBC file {dbc}: {exc.strerror or exc}; check the plugin config 'dbc'"
        ) from exc
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"DBC file {dbc} is invalid: {exc}") from exc


class VehicleStateDecoder(can.Listener):
    """Decodes speed, gear and ignition frames; thread-safe ``snapshot()``."""

    def __init__(
        self,
        dbc: str | Path | None = None,
        *,
        signals: SignalMap | None = None,
        stale_after: float = STALE_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = load_dbc(dbc)
        self.signals = signals or SignalMap()
        self.stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {"speed_kmh": None, "gear": None, "ignition": None}
        self._heard: dict[str, float] = {}
        self._updated_wall: float | None = None
        self.frames = 0
        self.malformed = 0
        self._by_id: dict[int, Any] = {}
        for key in ("speed", "gear", "ignition"):
            message_name, signal_name = getattr(self.signals, key)
            try:
                message = self.db.get_message_by_name(message_name)
            except KeyError:
                raise PluginError(f"the DBC has no message {message_name!r} (needed for {key})") from None
            if signal_name not in {s.name for s in message.signals}:
                raise PluginError(f"the DBC message {message_name} has no signal {signal_name!r}")
            self._by_id[message.frame_id] = message

    @property
    def frame_ids(self) -> set[int]:
        return set(self._by_id)

    def on_message_received(self, msg: can.Message) -> None:
        message = self._by_id.get(msg.arbitration_id)
        if message is None or msg.is_extended_id != message.is_extended_frame or msg.is_error_frame:
            return
        try:
            decoded = message.decode(bytes(msg.data), decode_choices=True, scaling=True)
        except Exception:
            self.malformed += 1
            return
        now = self._clock()
        with self._lock:
            self.frames += 1
            self._updated_wall = time.time()
            self._take(decoded, message.name, now)

    def _take(self, decoded: Mapping[str, Any], message_name: str, now: float) -> None:
        sig = self.signals
        if message_name == sig.speed[0] and sig.speed[1] in decoded:
            speed: float | None = round(float(decoded[sig.speed[1]]), 2)
            if sig.speed_valid[0] == message_name and sig.speed_valid[1] in decoded:
                valid = decoded[sig.speed_valid[1]]
                if str(valid).lower() in ("0", "invalid"):
                    speed = None
            self._values["speed_kmh"] = speed
            self._heard["speed_kmh"] = now
        if message_name == sig.gear[0] and sig.gear[1] in decoded:
            self._values["gear"] = str(decoded[sig.gear[1]]).upper()
            self._heard["gear"] = now
        if message_name == sig.ignition[0] and sig.ignition[1] in decoded:
            self._values["ignition"] = str(decoded[sig.ignition[1]]).upper()
            self._heard["ignition"] = now

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            fresh = {k: (k in self._heard and now - self._heard[k] <= self.stale_after) for k in self._values}
            values = dict(self._values)  # last known values; ``stale`` says whether to trust them
            updated = self._updated_wall
        stale = not all(fresh.values())
        parked = False
        if not stale:
            speed = values["speed_kmh"]
            parked = values["gear"] in ("P", "PARK") or (
                speed is not None and speed < PARKED_SPEED_KMH and values["ignition"] == "OFF"
            )
        return {
            "speed_kmh": values["speed_kmh"],
            "gear": values["gear"],
            "ignition": values["ignition"],
            "parked": parked,
            "stale": stale,
            "updated": updated,
        }


def significant(state: Mapping[str, Any]) -> tuple[Any, ...]:
    """The part of a snapshot whose change is worth publishing (not the timestamp)."""
    speed = state.get("speed_kmh")
    return (
        None if speed is None else round(float(speed), 1),
        state.get("gear"),
        state.get("ignition"),
        state.get("parked"),
        state.get("stale"),
    )
