"""``vehicle-host dev DIR``: one app in the real window with the ECU simulator, reloaded on every save.

The app directory is linked into a private apps directory that the hub serves. Every 0.5 s the
app's files are compared by mtime and size; on a change the bundle is checked (manifest, every
page compiled, JS sources collected) and the app is relaunched in the shell (``app.close`` to the
hub, then ``vh.launch`` through the shell's control channel). A bundle that does not compile is
relaunched too, so the hub's own check shows its error screen; errors the launch does not meet
(another page, app.json) are shown in the shell's banner. Every error goes to the terminal with
file and line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from vehicle_host import config as host_config
from vehicle_host.bundles import catalog
from vehicle_host.bundles.manifest import Manifest, load_manifest
from vehicle_host.errors import BundleError, HostTimeoutError, VehicleHostError
from vehicle_host.launcher import child, start_hub, wait_for_path
from vehicle_host.shell.app import parse_size
from vehicle_host.shell.control import ENV as CONTROL_ENV
from vehicle_host.shell.driver import ShellDriver, Snapshot
from vehicle_host.shell.xvfb import VirtualDisplay
from vehicle_host.wire import API_LEVEL, Envelope, decode, encode

POLL_S = 0.5
MAX_WATCHED = 2000
WATCHED_SUFFIXES = (".js", ".json", ".wxml", ".wxss", ".wxs", ".png")
SKIPPED_DIRS = {"node_modules", "__pycache__"}
LAUNCH_TIMEOUT_S = 20.0
SETTLE_S = 0.3

Stamps = dict[str, tuple[int, int]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the app directory (holding app.json)")
    parser.add_argument("--size", default="800x480", help="window size WxH (default 800x480)")
    parser.add_argument(
        "--no-simulator",
        dest="simulator",
        action="store_false",
        help="do not start the virtual CAN bus and ECU simulator (use the configured CAN interface)",
    )
    parser.add_argument("--state-dir", help="grants and storage (default ~/.local/state/vehicle-host-dev)")
    parser.add_argument("--config", help="TOML config ($VEHICLE_HOST_CONFIG, /etc/vehicle-host/host.toml)")
    parser.add_argument(
        "--runtime-dir", help="directory for sockets (default $XDG_RUNTIME_DIR/vehicle-host-UID)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--exit-after", type=float, help="stop after this many seconds (for scripts)")


def say(text: str) -> None:
    print(text, flush=True)


# -- checking and watching -------------------------------------------------------------------------
def check_bundle(app_dir: Path) -> tuple[Manifest | None, str | None]:
    """The manifest (None if app.json is unusable) and the first error the host would find, if any:
    manifest, every page compiled, JS sources and page config collected."""
    try:
        manifest = load_manifest(app_dir)
    except BundleError as exc:
        return None, str(exc)
    try:
        catalog.check_app(catalog.InstalledApp(app_dir, manifest))
    except BundleError as exc:
        return manifest, str(exc)
    except (OSError, RecursionError, MemoryError) as exc:  # a hostile or unreadable bundle
        return manifest, f"cannot check the bundle: {type(exc).__name__}: {exc}"
    return manifest, None


def stamps(app_dir: Path) -> Stamps:
    """mtime and size of the app's files (at most MAX_WATCHED), by path inside the app."""
    out: Stamps = {}
    for root, dirs, files in os.walk(app_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        for name in sorted(files):
            if not name.endswith(WATCHED_SUFFIXES):
                continue
            path = Path(root) / name
            with contextlib.suppress(OSError):
                st = path.stat()
                out[path.relative_to(app_dir).as_posix()] = (st.st_mtime_ns, st.st_size)
            if len(out) >= MAX_WATCHED:
                return out
    return out


def changed(before: Stamps, after: Stamps) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


# -- talking to the hub and the shell --------------------------------------------------------------
class HubLine:
    """A small synchronous client of the hub: rescans (app.list) and closes apps (app.close)."""

    def __init__(self, endpoint: str, *, timeout: float = 10.0) -> None:
        self._sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(endpoint)
        self._timeout_ms = int(timeout * 1000)
        self._ids = itertools.count(1)
        self.request("hello", {"role": "client", "api_level": API_LEVEL})

    def send(self, type_: str, payload: dict[str, Any]) -> int:
        message_id = next(self._ids)
        self._sock.send(encode(Envelope(type_, message_id, "client", "hub", payload)))
        return message_id

    def request(self, type_: str, payload: dict[str, Any]) -> Envelope:
        message_id = self.send(type_, payload)
        deadline = time.monotonic() + self._timeout_ms / 1000
        while (left := deadline - time.monotonic()) > 0:
            if not self._sock.poll(int(left * 1000)):
                break
            reply = decode(self._sock.recv())
            if reply.id == message_id and reply.source == "hub":
                return reply
        raise HostTimeoutError(f"the hub did not answer {type_} within {self._timeout_ms / 1000:g} s")

    def close(self) -> None:
        self._sock.close(0)


class Reloader:
    def __init__(self, app_dir: Path, hub: HubLine, driver: ShellDriver) -> None:
        self.app_dir = app_dir
        self.hub = hub
        self.driver = driver
        self.app_id: str | None = None

    def reload(self, manifest: Manifest | None, error: str | None) -> tuple[Snapshot, float]:
        """Relaunch the app (or show why not); the shell's state afterwards and the time taken."""
        started = time.monotonic()
        self.hub.request("app.list", {})  # the hub rescans: app.json may have changed
        if manifest is None:
            snap = self.driver.snapshot()
        else:
            if self.app_id is not None:
                self._close(self.app_id)
            self.app_id = manifest.app_id
            self.driver.eval(f"vh.launch({json.dumps(self.app_id)})")
            snap = self.driver.wait_for(
                self._settled, timeout=LAUNCH_TIMEOUT_S, what=f"{self.app_id} to paint"
            )
        took = (time.monotonic() - started) * 1000
        if error is not None and snap.get("error") is None:
            self.show_banner(error)
        elif manifest is not None and snap.get("error") is None:
            time.sleep(SETTLE_S)  # a script error in onLoad arrives just after the first paint
            snap = self.driver.snapshot()
        return snap, took

    def _settled(self, snap: Snapshot) -> bool:
        painted = snap.get("painted")
        return snap.get("appId") == self.app_id and (
            (isinstance(painted, int) and painted > 0) or snap.get("error") is not None
        )

    def _close(self, app_id: str) -> None:
        before = self.driver.snapshot()
        shown = before.get("view") == "app" and before.get("appId") == app_id
        self.hub.send("app.close", {"app_id": app_id})
        self.hub.request("hub.stats", {})  # in order: app.closed is on its way to the shell
        if shown:  # the shell goes home when app.closed arrives; launching before that would be undone
            with contextlib.suppress(HostTimeoutError):
                self.driver.wait_for(
                    lambda s: s.get("view") != "app" or s.get("appId") != app_id,
                    timeout=5,
                    what="the shell to close the app",
                )
        else:
            time.sleep(0.2)

    def show_banner(self, text: str) -> None:
        self.driver.eval(
            "(function(){var b=document.getElementById('banner');if(!b)return;"
            f"b.textContent={json.dumps('vehicle-host dev: ' + text[:2000])};b.classList.add('shown');}})()"
        )


def report(snap: Snapshot) -> str | None:
    """The error the shell shows for the app, as one line (None when the app runs)."""
    error = snap.get("error")
    if not isinstance(error, dict):
        return None
    return f"{error.get('title', '')}: {error.get('text', '')}"


# -- the command -----------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except VehicleHostError as exc:
        print(f"vehicle-host dev: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    app_dir = Path(args.dir).resolve()
    if not (app_dir / "app.json").is_file():
        raise VehicleHostError(f"{app_dir} holds no app.json; create an app with: vehicle-host new NAME")
    width, height = parse_size(args.size)
    state_dir = args.state_dir or str(Path.home() / ".local" / "state" / "vehicle-host-dev")
    cfg = host_config.resolve(None, args.runtime_dir, state_dir=state_dir, config_file=args.config)
    host_config.ensure_private_dir(cfg.runtime_dir)
    apps_dir = cfg.runtime_dir / "dev-apps"
    _link_app(apps_dir, app_dir)
    cfg = dataclasses.replace(cfg, apps_dir=apps_dir)
    for stale in ("hub.sock", "shell-control.sock"):
        with contextlib.suppress(FileNotFoundError):
            (cfg.runtime_dir / stale).unlink()
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    env = dict(os.environ)
    python = [sys.executable, "-m", "vehicle_host"]
    common = ["--runtime-dir", str(cfg.runtime_dir), "--log-level", args.log_level]
    manifest, error = check_bundle(app_dir)
    if error is not None:
        say(f"error: {error}")
    with contextlib.ExitStack() as stack:
        if headless:
            env["DISPLAY"] = stack.enter_context(VirtualDisplay(width, height)).display
            say(f"no display: started a virtual display {env['DISPLAY']} ({width}x{height})")
        hub_log, shell_log = cfg.runtime_dir / "hub.log", cfg.runtime_dir / "shell.log"
        hub = start_hub(stack, cfg, env, args.log_level, simulator=args.simulator, config_file=args.config)
        say(f"hub running (log {hub_log})")
        control = cfg.runtime_dir / "shell-control.sock"
        shell_env = {**env, CONTROL_ENV: f"ipc://{control}"}
        shell = stack.enter_context(
            child([*python, "shell", "--size", args.size, *common], shell_env, shell_log)
        )
        wait_for_path(control, shell, "the shell", shell_log)
        driver = ShellDriver(f"ipc://{control}", env.get("DISPLAY", ""))
        stack.callback(driver.close)
        line = HubLine(f"ipc://{cfg.runtime_dir / 'hub.sock'}")
        stack.callback(line.close)
        say(f"shell running (log {shell_log}; control channel ipc://{control})")
        driver.wait_for(lambda s: bool(s.get("online")), what="the shell to reach the hub")
        reloader = Reloader(app_dir, line, driver)
        seen = stamps(app_dir)
        _reload(reloader, manifest, error, "opened")
        say(f"watching {len(seen)} files in {app_dir} (Ctrl-C to stop)")
        alive: Callable[[], bool] = lambda: shell.poll() is None and hub.poll() is None  # noqa: E731
        deadline = None if args.exit_after is None else time.monotonic() + args.exit_after
        try:
            while alive() and (deadline is None or time.monotonic() < deadline):
                time.sleep(POLL_S)
                now = stamps(app_dir)
                paths = changed(seen, now)
                if not paths:
                    continue
                seen = now
                manifest, error = check_bundle(app_dir)
                _reload(reloader, manifest, error, "changed: " + ", ".join(paths[:5]))
        except KeyboardInterrupt:  # Ctrl-C reaches the hub and shell too: how they end is no error
            say("stopping")
            return 0
        if hub.poll() not in (None, 0):
            raise VehicleHostError(f"the hub stopped with code {hub.returncode}; see {hub_log}")
        if shell.poll() not in (None, 0):
            raise VehicleHostError(f"the shell stopped with code {shell.returncode}; see {shell_log}")
    return 0


def _reload(reloader: Reloader, manifest: Manifest | None, error: str | None, what: str) -> None:
    try:
        snap, took = reloader.reload(manifest, error)
    except HostTimeoutError as exc:
        say(f"{what} — error: {exc}")
        return
    shown = report(snap)
    if error is not None:
        say(f"{what} — error: {error}")
    elif shown is not None:
        say(f"{what} — error: {shown}")
    else:
        say(f"{what} — reloaded in {took:.0f} ms")
        banner = snap.get("banner")
        if isinstance(banner, str) and banner:
            say(f"warning: {banner}")


def _link_app(apps_dir: Path, app_dir: Path) -> None:
    """``apps_dir`` holds one entry: a link to the app being developed."""
    apps_dir.mkdir(mode=0o700, exist_ok=True)
    for entry in apps_dir.iterdir():
        if entry.is_symlink():
            entry.unlink()
    link = apps_dir / (app_dir.name or "app")
    link.symlink_to(app_dir, target_is_directory=True)
