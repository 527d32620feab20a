"""``vehicle-host run``: hub and shell together; on a headless machine, a virtual display and a tour.

The tour opens the launcher and every installed app in turn, saves a screenshot of each and prints
a summary. With a display and no ``--tour`` it just runs until the window is closed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from vehicle_host.config import HostConfig, ensure_private_dir
from vehicle_host.dealer_service.server import DEFAULT_PORT as DEALER_PORT
from vehicle_host.errors import DeviceError, HostTimeoutError, VehicleHostError
from vehicle_host.shell.app import parse_size
from vehicle_host.shell.control import ENV as CONTROL_ENV
from vehicle_host.shell.driver import ShellDriver
from vehicle_host.shell.xvfb import VirtualDisplay

START_TIMEOUT_S = 30.0


@dataclass
class TourStop:
    name: str
    screenshot: Path
    status: str
    first_paint_ms: float


def say(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def child(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process in its own session, stopped (SIGTERM, then SIGKILL) with its whole group."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for_path(path: Path, process: subprocess.Popen[bytes], what: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise DeviceError(f"{what} did not start; see {log_path}")
        time.sleep(0.05)


def _painted_or_failed(app_id: str, snap: dict[str, object]) -> bool:
    painted = snap.get("painted")
    return snap.get("appId") == app_id and (
        (isinstance(painted, int) and painted > 0) or snap.get("error") is not None
    )


def tour(driver: ShellDriver, out: Path) -> list[TourStop]:
    stops: list[TourStop] = []
    snap = driver.wait_for(
        lambda s: bool(s.get("online")) and s.get("apps", 0) > 0, what="the launcher to list apps"
    )
    stops.append(TourStop("launcher", driver.screenshot(out / "01-launcher.png"), "ok", 0.0))
    say(f"  launcher: {snap['apps']} apps -> {stops[-1].screenshot}")
    for index, app_id in enumerate(snap["appIds"], start=2):
        started = time.monotonic()
        driver.eval(f"vh.launch({json.dumps(app_id)})")
        try:
            state = driver.wait_for(
                partial(_painted_or_failed, app_id),
                what=f"{app_id} to paint",
            )
            status = "ok" if state.get("error") is None else f"error: {state['error']['title']}"
        except HostTimeoutError as exc:
            status = f"timeout: {exc}"
        paint_ms = (time.monotonic() - started) * 1000
        shot = driver.screenshot(out / f"{index:02d}-{app_id.rsplit('.', 1)[-1]}.png")
        stops.append(TourStop(app_id, shot, status, paint_ms))
        say(f"  {app_id}: {status}, first paint {paint_ms:.0f} ms -> {shot}")
        driver.eval("vh.home()")
        driver.wait_for(lambda s: s.get("view") == "launcher", what="the launcher")
    return stops


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_dealer_service(stack: contextlib.ExitStack, config: HostConfig, env: dict[str, str]) -> str:
    """The reference dealer service on its usual loopback port (where the sample campaign app's
    allow-list points), or on a free one when that is taken; returns its URL."""
    log_path = config.runtime_dir / "dealer-service.log"
    log_path.unlink(missing_ok=True)  # its first line must be this run's URL
    config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = config.state_dir / "dealer-service.sqlite3"
    port = DEALER_PORT if _port_free(DEALER_PORT) else 0
    if port == 0:
        say(
            f"port {DEALER_PORT} is taken: the dealer service uses another"
            " (the campaign sample will not reach it)"
        )
    args = [sys.executable, "-m", "vehicle_host.dealer_service", "--port", str(port), "--db", str(db)]
    process = stack.enter_context(child(args, env, log_path))
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        first = log_path.read_text(errors="replace").split("\n", 1)[0] if log_path.exists() else ""
        if first.startswith("http://127.0.0.1:") and "\n" in log_path.read_text(errors="replace"):
            say(f"reference dealer service at {first} (log {log_path})")
            return first.strip()
        if process.poll() is not None or time.monotonic() > deadline:
            raise DeviceError(f"the dealer service did not start; see {log_path}")
        time.sleep(0.05)


def start_simulator(
    stack: contextlib.ExitStack, config: HostConfig, env: dict[str, str], python: list[str]
) -> Path:
    """The simulated surroundings of the head unit: a virtual CAN bus with the ECU simulator on it,
    the reference dealer service, and a hub config that points the diagnostics and parts plugins at
    them (merged over the user's config file, if any)."""
    endpoint = f"ipc://{config.runtime_dir / 'can0.sock'}"
    bus_log, sim_log = config.runtime_dir / "canbus.log", config.runtime_dir / "simulator.log"
    bus = stack.enter_context(
        child([sys.executable, "-m", "vehicle_host.canbus", "--endpoint", endpoint], env, bus_log)
    )
    wait_for_path(config.runtime_dir / "can0.sock", bus, "the virtual CAN bus", bus_log)
    stack.enter_context(
        child([*python, "simulate-ecu", "--interface", "vhbus", "--channel", endpoint], env, sim_log)
    )
    say(f"ECU simulator on virtual CAN {endpoint} (log {sim_log})")
    dealer_url = start_dealer_service(stack, config, env)
    plugins = {name: dict(section) for name, section in config.plugins.items()}
    can_section = plugins.setdefault("can_diagnostics", {})
    can_section.update({"interface": "vhbus", "channel": endpoint})
    plugins.setdefault("parts_ordering", {})["service_url"] = dealer_url
    lines = []
    if config.enabled_plugins is not None:
        lines += ["[plugins]", f"enabled = {json.dumps(list(config.enabled_plugins))}", ""]
    for name, section in plugins.items():
        lines.append(f"[plugins.{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in section.items()]
        lines.append("")
    if config.sandbox:
        lines.append("[sandbox]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in config.sandbox.items()]
    path = config.runtime_dir / "run-host.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_hub(
    stack: contextlib.ExitStack,
    config: HostConfig,
    env: dict[str, str],
    log_level: str,
    *,
    simulator: bool,
    config_file: str | None,
) -> subprocess.Popen[bytes]:
    """The hub as a child process (with the simulated surroundings when ``simulator``), once its
    socket is there; its log is ``runtime_dir/hub.log``."""
    python = [sys.executable, "-m", "vehicle_host"]
    log_path = config.runtime_dir / "hub.log"
    args = [*python, "hub", "--apps", str(config.apps_dir), "--state-dir", str(config.state_dir)]
    if simulator:
        args += ["--config", str(start_simulator(stack, config, env, python))]
    elif config_file:
        args += ["--config", config_file]
    args += ["--runtime-dir", str(config.runtime_dir), "--log-level", log_level]
    hub = stack.enter_context(child(args, env, log_path))
    wait_for_path(config.runtime_dir / "hub.sock", hub, "the hub", log_path)
    return hub


def run(config: HostConfig, args: argparse.Namespace) -> int:
    width, height = parse_size(args.size)
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    touring = args.tour or args.exit_after_tour or headless
    out = Path(args.screenshots).resolve()
    ensure_private_dir(config.runtime_dir)
    with contextlib.suppress(FileNotFoundError):
        (config.runtime_dir / "hub.sock").unlink()  # a stale socket would look like a started hub
    logs_dir = config.runtime_dir
    env = dict(os.environ)
    python = [sys.executable, "-m", "vehicle_host"]
    common = ["--runtime-dir", str(config.runtime_dir), "--log-level", args.log_level]
    with contextlib.ExitStack() as stack:
        if headless:
            display = stack.enter_context(VirtualDisplay(width, height)).display
            env["DISPLAY"] = display
            say(f"no display: started a virtual display {display} ({width}x{height})")
        display = env.get("DISPLAY", "")
        hub_log, shell_log = logs_dir / "hub.log", logs_dir / "shell.log"
        hub = start_hub(stack, config, env, args.log_level, simulator=args.simulator, config_file=args.config)
        say(f"hub running (apps from {config.apps_dir}; log {hub_log})")
        control = config.runtime_dir / "shell-control.sock"
        with contextlib.suppress(FileNotFoundError):
            control.unlink()
        shell_env = {**env, CONTROL_ENV: f"ipc://{control}"} if touring else env
        shell = stack.enter_context(
            child([*python, "shell", "--size", args.size, *common], shell_env, shell_log)
        )
        say(f"shell running (log {shell_log})")
        if touring:
            wait_for_path(control, shell, "the shell", shell_log)
            driver = ShellDriver(f"ipc://{control}", display)
            stack.callback(driver.close)
            say(f"touring the apps; screenshots go to {out}")
            stops = tour(driver, out)
            failed = [s for s in stops if s.status != "ok"]
            say(
                f"tour done: {len(stops) - 1} apps opened, {len(failed)} failed, "
                f"{len(stops)} screenshots in {out}"
            )
            if args.exit_after_tour:
                return 1 if failed else 0
            say("still running; press Ctrl-C to stop")
        try:
            while shell.poll() is None and hub.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            say("stopping")
        if hub.poll() not in (None, 0):
            raise VehicleHostError(f"the hub stopped with code {hub.returncode}; see {hub_log}")
        if shell.poll() not in (None, 0):
            raise VehicleHostError(f"the shell stopped with code {shell.returncode}; see {shell_log}")
    return 0
