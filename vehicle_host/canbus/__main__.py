"""``python -m vehicle_host.canbus --endpoint E``: run a vhbus broker until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from vehicle_host.canbus.broker import serve_bus
from vehicle_host.errors import VehicleHostError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vehicle_host.canbus", description="Run a vhbus broker")
    parser.add_argument("--endpoint", required=True, help="ipc:///path/can0.sock or tcp://127.0.0.1:PORT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        serve_bus(args.endpoint, stop)
    except VehicleHostError as exc:
        print(f"vhbus: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
