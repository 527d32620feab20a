"""The ``vehicle-host`` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vehicle_host import __version__, config
from vehicle_host.errors import VehicleHostError

#: command groups with options of their own (their --help included), parsed by their modules
DELEGATED = {
    "bundle": "make, sign, check and install mini-app bundles (new, pack, sign, verify, inspect, install)",
    "registry": "run and drive the app registry (serve, partners, publish, review, rollouts)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vehicle-host", description="In-vehicle mini-app host")
    parser.add_argument("--version", action="version", version=f"vehicle-host {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--runtime-dir", help="directory for sockets (default $XDG_RUNTIME_DIR/vehicle-host-UID)"
        )
        p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    def host(p: argparse.ArgumentParser) -> None:
        p.add_argument("--apps", help="directory of installed mini-apps (default $VEHICLE_HOST_APPS)")
        p.add_argument("--state-dir", help="grants, storage, plugin data ($VEHICLE_HOST_STATE_DIR)")
        p.add_argument("--config", help="TOML config ($VEHICLE_HOST_CONFIG, /etc/vehicle-host/host.toml)")

    hub = sub.add_parser("hub", help="run the hub daemon (broker, gateway, supervisor)")
    host(hub)
    common(hub)

    shell = sub.add_parser("shell", help="run the touchscreen shell (pywebview window)")
    shell.add_argument("--size", default="800x480", help="window size WxH (default 800x480)")
    shell.add_argument("--fullscreen", action="store_true", help="kiosk mode")
    shell.add_argument(
        "--lockout-kmh",
        type=float,
        help="speed above which apps that are not drivingSafe pause (default 8; $VEHICLE_HOST_LOCKOUT_KMH)",
    )
    common(shell)

    run = sub.add_parser("run", help="run hub and shell together; tours the apps on a headless machine")
    host(run)
    run.add_argument("--screenshots", default="screenshots", help="where the tour saves screenshots")
    run.add_argument("--size", default="800x480", help="window size WxH (default 800x480)")
    run.add_argument(
        "--tour", action="store_true", help="tour the launcher and every app even with a display"
    )
    run.add_argument("--exit-after-tour", action="store_true", help="stop after the tour (for scripts)")
    run.add_argument(
        "--no-simulator",
        dest="simulator",
        action="store_false",
        help="do not start the virtual CAN bus and ECU simulator (use the configured CAN interface)",
    )
    common(run)

    sim = sub.add_parser("simulate-ecu", help="simulate ECUs (UDS, OBD-II, DBC frames) on a CAN bus")
    sim.add_argument("--interface", default="socketcan", help="python-can interface (socketcan, vhbus, ...)")
    sim.add_argument("--channel", default="vcan0", help="vcan0, ipc:///path/can0.sock, tcp://127.0.0.1:PORT")
    sim.add_argument("--scenario", help="scenario file (.json or .toml; default: the built-in car)")
    sim.add_argument("--bitrate", type=int, help="bitrate for interfaces that set one (e.g. 500000)")
    sim.add_argument("--parked", action="store_true", help="hold the car parked instead of driving")
    sim.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    from vehicle_host.devkit import dev, scaffold

    scaffold.add_arguments(sub.add_parser("new", help="create a mini-app that runs at once"))
    dev.add_arguments(sub.add_parser("dev", help="run one app in the window, reloaded on every save"))

    dealer = sub.add_parser(
        "dealer-service", help="run the reference dealer service (parts, orders, bookings)", add_help=False
    )
    dealer.add_argument("args", nargs=argparse.REMAINDER, help="--host, --port, --db (see --help)")
    for name, text in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False).add_argument("args", nargs=argparse.REMAINDER)

    from vehicle_host.plugins.can_diagnostics import cli as diag_cli

    diag_cli.add_arguments(sub.add_parser("diag", help="read and clear vehicle diagnostics (UDS, OBD-II)"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["dealer-service"]:  # its own options, --help included
        from vehicle_host.dealer_service import main as dealer_main

        return dealer_main(argv[1:])
    if argv[:1] == ["bundle"]:
        from vehicle_host.bundles.cli import main as bundle_main

        return bundle_main(argv[1:])
    if argv[:1] == ["registry"]:
        from vehicle_host.registry.cli import main as registry_main

        return registry_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "new":
            from vehicle_host.devkit import scaffold

            return scaffold.run(args)
        if args.command == "dev":
            from vehicle_host.devkit import dev

            return dev.run(args)
        if args.command == "simulate-ecu":
            from vehicle_host.simulator import cli as simulator_cli

            return simulator_cli.run(args)
        if args.command == "diag":
            from vehicle_host.plugins.can_diagnostics import cli as diag_cli

            return diag_cli.run(args)
        state_dir = getattr(args, "state_dir", None)
        if args.command == "run" and state_dir is None and not os.environ.get("VEHICLE_HOST_STATE_DIR"):
            state_dir = str(Path.home() / ".local" / "state" / "vehicle-host")  # a demo keeps its data
        cfg = config.resolve(
            getattr(args, "apps", None),
            args.runtime_dir,
            state_dir=state_dir,
            config_file=getattr(args, "config", None),
        )
        if args.command == "hub":
            from vehicle_host.hub import daemon

            return daemon.run(cfg, log_level=args.log_level)
        if args.command == "shell":
            from vehicle_host.shell import app

            return app.run(
                cfg,
                size=args.size,
                fullscreen=args.fullscreen,
                log_level=args.log_level,
                lockout=args.lockout_kmh,
            )
        from vehicle_host import launcher

        return launcher.run(cfg, args)
    except VehicleHostError as exc:
        print(f"vehicle-host: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
