"""The ``system`` plugin: the head unit's clipboard and display (``fc.setClipboardData`` and friends).

Clipboard
    One clipboard for the whole head unit, as on a phone: what one mini-app copies, another can
    paste. It is kept in SQLite (``clipboard.sqlite3`` in the plugin's state directory, mode 0600),
    so a copied VIN survives a restart. Text only, at most 1 MB (1,000,000 bytes of UTF-8: the
    largest text that still fits one wire message). Copying needs no permission. Reading needs none
    either (WeChat lets any mini-program read the clipboard), but every read publishes the state
    ``"clipboard.read"`` ``{app_id, at}`` (``at``: Unix time in ms) *before* the data is returned, so
    the shell can tell the driver which app read it; if that cannot be published the read fails.

Display
    Brightness goes through the Linux backlight class: ``<dev>/brightness`` and
    ``<dev>/max_brightness``. The device directory is the plugin config's ``backlight`` (a path such
    as ``/sys/class/backlight/10-0045``), by default the first device (by name) under
    ``backlight_class`` (default ``/sys/class/backlight``). Without a device, brightness calls fail
    with ``DeviceUnavailable``: no value is ever made up. The reported value is
    ``brightness / max_brightness``. A mini-app can dim the panel but never switch it off: a write
    never goes below ``min_brightness`` (a fraction of ``max_brightness``, default 0.05, at least 1
    step). Writing needs write access to the ``brightness`` file (a udev rule giving the host's group
    write access on the head unit); without it the call fails with ``DeviceUnavailable`` saying so.

    ``setKeepScreenOn`` publishes the state ``"display"`` ``{keepScreenOn, app_id, apps}``: the
    caller's wish, and ``apps``, the ids of every app whose last wish was ``true``. The shell owns
    screen blanking: it keeps the screen on while the foreground app is in ``apps`` (WeChat's rule:
    the setting holds only while that mini-program is in front).
"""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path
from typing import Any

from vehicle_host.plugins.contract import (
    NO_ARGS,
    CallContext,
    DeviceUnavailable,
    InvalidArguments,
    PluginContext,
    PluginError,
    StateDB,
    StatePlugin,
    config_number,
    method,
    object_schema,
)
from vehicle_host.plugins.contract import now_ms as _now_ms  # tests set the clock here

FILENAME = "clipboard.sqlite3"
#: 1 MB of UTF-8. The wire caps a message at 1 MiB, so this leaves room for the envelope.
MAX_CLIPBOARD_BYTES = 1_000_000
BACKLIGHT_CLASS = "/sys/class/backlight"
DEFAULT_MIN_BRIGHTNESS = 0.05
MAX_SYSFS_READ = 64
MAX_BACKLIGHT_DEVICES = 64
MAX_KEEP_ON_APPS = 32

_EMPTY: dict[str, Any] = {"type": "object", "maxProperties": 0}
_FRACTION: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}


class ClipboardDB(StateDB):
    """The clipboard's one slot on disk, synchronous and thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            "CREATE TABLE IF NOT EXISTS clipboard (slot INTEGER PRIMARY KEY CHECK (slot = 0),"
            " data TEXT NOT NULL, app_id TEXT NOT NULL, at_ms INTEGER NOT NULL)",
        )

    def set(self, data: str, app_id: str, at_ms: int) -> None:
        check_clipboard_text(data)
        with self._lock:
            self._db.execute(
                "INSERT INTO clipboard (slot, data, app_id, at_ms) VALUES (0, ?, ?, ?) ON CONFLICT (slot)"
                " DO UPDATE SET data = excluded.data, app_id = excluded.app_id, at_ms = excluded.at_ms",
                (data, app_id, at_ms),
            )

    def get(self) -> str:
        with self._lock:
            row = self._db.execute("SELECT data FROM clipboard WHERE slot = 0").fetchone()
        return str(row[0]) if row is not None else ""


def check_clipboard_text(data: Any) -> int:
    """The UTF-8 size of ``data``; InvalidArguments/PluginError say what is wrong with it."""
    if not isinstance(data, str):
        raise InvalidArguments("clipboard data must be text (a string)")
    try:
        size = len(data.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArguments("clipboard data is not valid Unicode text") from None
    if size > MAX_CLIPBOARD_BYTES:
        raise PluginError(
            f"the text to copy is {size:,} bytes; the clipboard holds at most {MAX_CLIPBOARD_BYTES:,} bytes "
            "(1 MB). Copy less."
        )
    return size


class Backlight:
    """One backlight device directory (``brightness``, ``max_brightness``); blocking file I/O."""

    def __init__(self, path: Path, *, min_fraction: float = DEFAULT_MIN_BRIGHTNESS) -> None:
        self.path = path
        self.min_fraction = min_fraction

    def max_level(self) -> int:
        level = _read_int(self.path / "max_brightness")
        if level is None or level <= 0:
            raise DeviceUnavailable(
                f"the backlight device {self.path} reports no usable max_brightness; "
                "check the system plugin's 'backlight' setting"
            )
        return level

    def floor(self, max_level: int) -> int:
        return min(max_level, max(1, math.ceil(max_level * self.min_fraction)))

    def get(self) -> float:
        top = self.max_level()
        level = _read_int(self.path / "brightness")
        if level is None:
            raise DeviceUnavailable(f"the backlight device {self.path} reports no brightness")
        return min(max(level, 0), top) / top

    def set(self, value: float) -> int:
        """Write ``value`` (0..1) as a level, never below the floor; returns the level written."""
        top = self.max_level()
        level = max(self.floor(top), min(top, round(value * top)))
        target = self.path / "brightness"
        try:
            with target.open("w", encoding="ascii") as f:
                f.write(str(level))
        except PermissionError:
            raise DeviceUnavailable(
                f"the screen brightness cannot be changed: {target} is not writable by the host. "
                "Give the host's group write access to it (a udev rule for the backlight subsystem)."
            ) from None
        except OSError as exc:
            raise DeviceUnavailable(f"the backlight device {self.path} refused the level: {exc}") from None
        return level


def _read_int(path: Path) -> int | None:
    try:
        with path.open("rb") as f:
            text = f.read(MAX_SYSFS_READ)
        return int(text.strip())
    except (OSError, ValueError):
        return None


def find_backlight(configured: Any, class_dir: Any) -> Path:
    """The backlight device directory: ``configured`` if set, else the first one in ``class_dir``."""
    if configured:
        path = Path(str(configured))
        if not (path / "brightness").is_file() or not (path / "max_brightness").is_file():
            raise DeviceUnavailable(
                f"no backlight device at {path} (it needs 'brightness' and 'max_brightness' files); "
                "fix the system plugin's 'backlight' setting"
            )
        return path
    root = Path(str(class_dir or BACKLIGHT_CLASS))
    try:
        names = sorted(entry.name for entry in os.scandir(root))[:MAX_BACKLIGHT_DEVICES]
    except OSError:
        names = []
    for name in names:
        if (root / name / "max_brightness").is_file():
            return root / name
    raise DeviceUnavailable(
        f"no backlight device under {root}: this head unit's screen brightness cannot be read or set "
        "here (set the system plugin's 'backlight' to the panel's device directory if it has one)"
    )


class SystemPlugin(StatePlugin[ClipboardDB]):
    name = "system"
    version = "1.0.0"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self._keep_on: dict[str, bool] = {}
        self.min_brightness = config_number(context.config, "min_brightness", DEFAULT_MIN_BRIGHTNESS, 0, 0.5)

    async def start(self) -> None:
        await self.open_db(ClipboardDB, FILENAME)

    async def stop(self) -> None:
        await self.close_db()

    def backlight(self) -> Backlight:
        config = self.context.config
        path = find_backlight(config.get("backlight"), config.get("backlight_class"))
        return Backlight(path, min_fraction=self.min_brightness)

    # -- clipboard ------------------------------------------------------------------------------
    @method(
        "clipboard.set",
        args=object_schema({"data": {"type": "string", "maxLength": MAX_CLIPBOARD_BYTES}}, ("data",)),
        result=_EMPTY,
        timeout_s=15.0,
    )
    async def clipboard_set(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Copy text to the head unit's clipboard (kept across restarts)."""
        data = args.get("data")
        check_clipboard_text(data)
        await asyncio.to_thread(self.db.set, str(data), call.app_id, _now_ms())
        return {}

    @method(
        "clipboard.get",
        args=NO_ARGS,
        result=object_schema({"data": {"type": "string"}}, ("data",)),
    )
    async def clipboard_get(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Read the head unit's clipboard; the shell is told which app read it."""
        data = await asyncio.to_thread(self.db.get)
        await self.context.publish_state("clipboard.read", {"app_id": call.app_id, "at": _now_ms()})
        return {"data": data}

    # -- display --------------------------------------------------------------------------------
    @method(
        "display.setKeepScreenOn",
        args=object_schema({"keepScreenOn": {"type": "boolean"}}, ("keepScreenOn",)),
        result=_EMPTY,
    )
    async def set_keep_screen_on(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Keep the screen from blanking while the calling app is in front."""
        keep = args.get("keepScreenOn")
        if not isinstance(keep, bool):
            raise InvalidArguments("keepScreenOn must be true or false")
        self._keep_on.pop(call.app_id, None)
        if keep:
            if len(self._keep_on) >= MAX_KEEP_ON_APPS:
                self._keep_on.pop(next(iter(self._keep_on)))  # the oldest wish goes first
            self._keep_on[call.app_id] = True
        state = {"keepScreenOn": keep, "app_id": call.app_id, "apps": sorted(self._keep_on)}
        await self.context.publish_state("display", state)
        return {}

    @method(
        "display.getScreenBrightness",
        args=NO_ARGS,
        result=object_schema({"value": _FRACTION}, ("value",)),
    )
    async def get_screen_brightness(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """The screen's backlight level, 0..1."""
        value = await asyncio.to_thread(lambda: self.backlight().get())
        return {"value": value}

    @method(
        "display.setScreenBrightness",
        permission="display.brightness",
        args=object_schema({"value": _FRACTION}, ("value",)),
        result=_EMPTY,
    )
    async def set_screen_brightness(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Set the screen's backlight level, 0..1 (never fully off)."""
        value = args.get("value")
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or not 0 <= value <= 1
        ):
            raise InvalidArguments("value must be a number from 0 to 1")
        level = await asyncio.to_thread(lambda: self.backlight().set(float(value)))
        self.context.log.info(
            "screen brightness set", extra={"app_id": call.app_id, "value": value, "level": level}
        )
        return {}
