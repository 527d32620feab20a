"""``vehicle-host simulate-ecu``: serve the simulated ECUs on a CAN bus until SIGINT/SIGTERM.

The arguments are declared in ``vehicle_host/cli.py`` (kept import-light); :func:`run` does the work.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

import can

from vehicle_host.errors import DeviceError
from vehicle_host.simulator.scenario import Scenario
from vehicle_host.simulator.server import Simulator

LOG = logging.getLogger(__name__)


def open_bus(interface: str, channel: str, bitrate: int | None = None, **kwargs: Any) -> can.BusABC:
    """``can.Bus(...)`` with python-can's errors turned into a :class:`DeviceError` saying what to do."""
    options: dict[str, Any] = dict(kwargs)
    if bitrate is not None:
        options["bitrate"] = bitrate
    try:
        return can.Bus(interface=interface, channel=channel, **options)
    except (can.CanError, OSError, ValueError, ImportError, NotImplementedError) as exc:
        raise DeviceError(_hint(interface, channel, exc)) from exc


def _hint(interface: str, channel: str, exc: BaseException) -> str:
    text = f"cannot open CAN interface {interface!r} channel {channel!r}: {exc}"
    if interface == "socketcan":
        if channel.startswith("vcan"):
            return (
                f"{text}. {channel} not found: create it with "
                f"`ip link add dev {channel} type vcan && ip link set up {channel}` "
                "(needs the vcan kernel module: `modprobe vcan`)"
            )
        return f"{text}. Is the adapter plugged in and up? `ip link set {channel} up type can bitrate N`"
    if interface == "vhbus":
        return text
    return f"{text}. Check --interface and --channel (python-can interfaces: {sorted(can.VALID_INTERFACES)})"


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    scenario = Scenario.load(args.scenario) if args.scenario else Scenario.default()
    if args.parked:
        from dataclasses import replace

        scenario = replace(scenario, parked=True)
    bus = open_bus(args.interface, args.channel, args.bitrate)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    simulator = Simulator(bus, scenario)
    try:
        simulator.start()
        print(f"simulating on {args.interface} {args.channel}:", flush=True)
        for line in simulator.describe():
            print(f"  {line}", flush=True)
        print("  functional requests on 0x7DF; Ctrl-C stops", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
        bus.shutdown()
    print(f"stopped: {dict(simulator.stats)}", file=sys.stderr)
    return 0
