"""``vehicle-host shell``: the pywebview window (GTK/WebKit on the head unit)."""

from __future__ import annotations

import hmac
import logging
import os
import re
from importlib import resources
from typing import Any

from vehicle_host import logs
from vehicle_host.config import HostConfig
from vehicle_host.errors import VehicleHostError
from vehicle_host.shell import page
from vehicle_host.shell.bridge_guard import BridgeGuard
from vehicle_host.shell.control import ENV as CONTROL_ENV
from vehicle_host.shell.control import ControlServer
from vehicle_host.shell.hub_link import HubLink

log = logging.getLogger("vehicle_host.shell")

#: ``/*SHELL_PART:name*/`` in index.html: further parts of the shell page's script, filled in here.
_PART = re.compile(r"/\*SHELL_PART:(shell-[a-z]+\.js)\*/")


def _part(match: re.Match[str]) -> str:
    name = match.group(1)
    source = resources.files("vehicle_host.shell").joinpath(f"ui/{name}").read_text(encoding="utf-8")
    if "</script" in source.lower():
        raise VehicleHostError(f"{name} must not contain '</script' (write '<\\/script')")
    return source


def build_html(token: str) -> str:
    """The shell's top-level page: ``page.build`` plus the script parts index.html names."""
    return _PART.sub(_part, page.build(token))


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
    config: HostConfig, *, size: str = "800x480", fullscreen: bool = False, log_level: str = "INFO"
) -> int:
    logs.setup(log_level)
    width, height = parse_size(size)
    import webview

    guard = BridgeGuard(["send"])
    guard.install()
    holder: dict[str, Any] = {}
    link = HubLink(config.hub_endpoint, run_js=lambda script: holder["window"].run_js(script))
    window = webview.create_window(
        "vehicle-host",
        html=build_html(guard.token),
        js_api=ShellApi(link, guard),
        width=width,
        height=height,
        x=0,
        y=0,
        fullscreen=fullscreen,
        background_color="#0c1117",
    )
    if window is None:
        raise VehicleHostError("pywebview could not create the shell window")
    holder["window"] = window
    control_endpoint = os.environ.get(CONTROL_ENV)

    def started() -> None:
        window.events.loaded.wait()
        link.start()
        if control_endpoint:
            ControlServer(
                control_endpoint,
                evaluate=window.evaluate_js,
                stats=lambda: {
                    "bridge_rejected": guard.rejected,
                    "hub_online": link.online,
                    "dropped_from_hub": link.dropped_from_hub,
                },
            ).start()
        log.info("shell ready", extra={"hub": config.hub_endpoint})

    webview.start(started, gui="gtk", private_mode=True)
    link.stop()
    return 0
