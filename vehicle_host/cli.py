"""The ``vehicle-host`` command."""

from __future__ import annotations

import argparse
import sys

from vehicle_host import __version__, config
from vehicle_host.errors import VehicleHostError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vehicle-host", description="In-vehicle mini-app host")
    parser.add_argument("--version", action="version", version=f"vehicle-host {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--runtime-dir", help="directory for sockets (default $XDG_RUNTIME_DIR/vehicle-host-UID)"
        )
        p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    hub = sub.add_parser("hub", help="run the hub daemon (broker, gateway, supervisor)")
    hub.add_argument("--apps", help="directory of installed mini-apps (default $VEHICLE_HOST_APPS)")
    common(hub)

    shell = sub.add_parser("shell", help="run the touchscreen shell (pywebview window)")
    shell.add_argument("--size", default="800x480", help="window size WxH (default 800x480)")
    shell.add_argument("--fullscreen", action="store_true", help="kiosk mode")
    common(shell)

    run = sub.add_parser("run", help="run hub and shell together; tours the apps on a headless machine")
    run.add_argument("--apps", help="directory of installed mini-apps (default $VEHICLE_HOST_APPS)")
    run.add_argument("--screenshots", default="screenshots", help="where the tour saves screenshots")
    run.add_argument("--size", default="800x480", help="window size WxH (default 800x480)")
    run.add_argument(
        "--tour", action="store_true", help="tour the launcher and every app even with a display"
    )
    run.add_argument("--exit-after-tour", action="store_true", help="stop after the tour (for scripts)")
    common(run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = config.resolve(getattr(args, "apps", None), args.runtime_dir)
        if args.command == "hub":
            from vehicle_host.hub import daemon

            return daemon.run(cfg, log_level=args.log_level)
        if args.command == "shell":
            from vehicle_host.shell import app

            return app.run(cfg, size=args.size, fullscreen=args.fullscreen, log_level=args.log_level)
        from vehicle_host import launcher

        return launcher.run(cfg, args)
    except VehicleHostError as exc:
        print(f"vehicle-host: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
