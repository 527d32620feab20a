"""``vehicle-host shell``: the pywebview window (GTK/WebKit on the head unit).

Driving lockout: apps whose manifest is not ``drivingSafe`` are covered while the vehicle moves
faster than ``lockout_kmh`` (default 8 km/h, ``$VEHICLE_HOST_LOCKOUT_KMH``); the cover lifts below
``lockout_kmh - 3`` or when the vehicle reports ``parked``. Stale or missing vehicle state counts
as not moving: a silent CAN bus (no adapter, ignition off, a bus fault) must not lock a parked car's
driver out of every app; the gateway's ``parked_only`` rule still guards the calls that need it.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from importlib import resources

from vehicle_host import logs
from vehicle_host.config import HostConfig
from vehicle_host.errors import VehicleHostError
from vehicle_host.shell import page
from vehicle_host.shell.backend import ShellBackend, WebviewBackend
from vehicle_host.shell.bridge_guard import BridgeGuard
from vehicle_host.shell.control import ENV as CONTROL_ENV
from vehicle_host.shell.control import ControlServer
from vehicle_host.shell.hub_link import HubLink

log = logging.getLogger("vehicle_host.shell")

#: ``/*SHELL_PART:name*/`` in index.html: further parts of the shell page's script, filled in here.
_PART = re.compile(r"/\*SHELL_PART:(shell-[a-z]+\.js)\*/")
#: ``/*SHELL_CONFIG*/{}`` in index.html: the shell's settings as JSON.
_CONFIG = "/*SHELL_CONFIG*/{}"
LOCKOUT_ENV = "VEHICLE_HOST_LOCKOUT_KMH"
DEFAULT_LOCKOUT_KMH = 8.0
LOCKOUT_HYSTERESIS_KMH = 3.0


def _part(match: re.Match[str]) -> str:
    name = match.group(1)
    source = resources.files("vehicle_host.shell").joinpath(f"ui/{name}").read_text(encoding="utf-8")
    if "</script" in source.lower():
        raise VehicleHostError(f"{name} must not contain '</script' (write '<\\/script')")
    return source


def lockout_kmh(value: float | str | None = None) -> float:
    """The driving-lockout speed: ``value``, else ``$VEHICLE_HOST_LOCKOUT_KMH``, else 8 km/h."""
    raw = value if value is not None else os.environ.get(LOCKOUT_ENV) or DEFAULT_LOCKOUT_KMH
    try:
        kmh = float(raw)
    except ValueError:
        raise VehicleHostError(f"lockout speed {raw!r} must be a number of km/h such as 8") from None
    if not 0 <= kmh <= 60:
        raise VehicleHostError(f"lockout speed {kmh:g} km/h is out of range (0 .. 60)")
    return kmh


def build_html(token: str, *, lockout: float = DEFAULT_LOCKOUT_KMH) -> str:
    """The shell's top-level page: ``page.build`` plus the script parts index.html names."""
    settings = {"lockoutKmh": lockout, "lockoutHysteresisKmh": LOCKOUT_HYSTERESIS_KMH}
    html = _PART.sub(_part, page.build(token))
    return html.replace(_CONFIG, json.dumps(settings), 1)


class ShellApi:
    """What the shell page may call in Python: one method, guarded by the bridge token."""

    def __init__(self, link: HubLink, guard: BridgeGuard) -> None:
        self._link = link
        self._guard = guard

    def send(self, token: str, raw: str) -> None:
        # the guard has already checked the token before pywebview dispatched this call
        if isinstance(raw, str) and hmac.compare_digest(str(token).encode(), self._guard.token.encode()):
            self._link.send_from_page(raw)


def parse_size(size: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise VehicleHostError(f"window size {size!r} must look like 800x480") from None
    if not (320 <= width <= 7680 and 240 <= height <= 4320):
        raise VehicleHostError(f"window size {size!r} is out of range (320x240 .. 7680x4320)")
    return width, height


def run(
    config: HostConfig,
    *,
    size: str = "800x480",
    fullscreen: bool = False,
    log_level: str = "INFO",
    lockout: float | None = None,
    backend: ShellBackend | None = None,
) -> int:
    logs.setup(log_level)
    width, height = parse_size(size)
    guard = BridgeGuard(["send"])
    window = backend or WebviewBackend(guard, width=width, height=height, fullscreen=fullscreen)
    link = HubLink(config.hub_endpoint, run_js=window.run_js)
    control_endpoint = os.environ.get(CONTROL_ENV)

    def ready() -> None:
        link.start()
        if control_endpoint:
            ControlServer(
                control_endpoint,
                evaluate=window.evaluate,
                stats=lambda: {
                    "bridge_rejected": guard.rejected,
                    "hub_online": link.online,
                    "hub_reconnects": link.reconnects,
                    "dropped_from_hub": link.dropped_from_hub,
                },
            ).start()
        log.info("shell ready", extra={"hub": config.hub_endpoint})

    window.start(build_html(guard.token, lockout=lockout_kmh(lockout)), ShellApi(link, guard), ready)
    link.stop()
    return 0
