"""``vehicle-host diag``: diagnostics from a terminal (scan, VIN, DTCs, clear, live PIDs).

This module imports python-can and friends only when a command runs, so building the
``vehicle-host`` argument parser stays cheap.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from vehicle_host.plugins.can_diagnostics.service import DiagnosticsService

DEFAULT_PIDS = ("rpm", "speed", "coolantTemp", "engineLoad", "throttle")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options and sub-commands of ``vehicle-host diag``."""
    parser.add_argument(
        "--interface", default="socketcan", help="python-can interface (socketcan, vhbus, ...)"
    )
    parser.add_argument("--channel", default="can0", help="can0, vcan0, ipc:///path/can0.sock, ...")
    parser.add_argument("--bitrate", type=int, help="bitrate for interfaces that set one (e.g. 500000)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--p2", type=float, default=1.0, help="seconds to wait for an ECU answer (P2)")
    sub = parser.add_subparsers(dest="diag_command", required=True, metavar="COMMAND")
    sub.add_parser("scan", help="list the ECUs that answer (UDS and OBD-II)")
    vin = sub.add_parser("vin", help="read the VIN (UDS 22 F190)")
    vin.add_argument("--ecu", default="engine")
    dtc = sub.add_parser("dtc", help="read trouble codes with descriptions")
    dtc.add_argument("--ecu", help="one ECU (default: every ECU)")
    dtc.add_argument("--mask", type=lambda v: int(v, 0), default=0xFF, help="UDS status mask (default 0xFF)")
    dtc.add_argument("--snapshots", action="store_true", help="also read each DTC's snapshot records")
    dtc.add_argument("--obd", choices=["stored", "pending", "permanent"], help="use OBD-II mode 03/07/0A")
    clear = sub.add_parser("clear", help="clear trouble codes (needs --yes; the vehicle must be parked)")
    clear.add_argument("--ecu", help="one ECU (default: every ECU)")
    clear.add_argument("--yes", action="store_true", help="really clear (codes and freeze frames are lost)")
    pids = sub.add_parser("pids", help="read live OBD-II values once")
    pids.add_argument("pids", nargs="*", default=list(DEFAULT_PIDS), help="PID names or hex numbers")
    pids.add_argument("--ecu", default="engine")
    watch = sub.add_parser("watch", help="print live OBD-II values until Ctrl-C")
    watch.add_argument("pids", nargs="*", default=list(DEFAULT_PIDS), help="PID names or hex numbers")
    watch.add_argument("--ecu", default="engine")
    watch.add_argument("--rate", type=float, default=5.0, help="readings per second (at most 10)")
    watch.add_argument("--count", type=int, default=0, help="stop after N readings (0: until Ctrl-C)")


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str], out: TextIO) -> None:
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def _emit(data: Any, out: TextIO) -> None:
    print(json.dumps(data, ensure_ascii=False, sort_keys=True), file=out)
    out.flush()


def _ecus(service: DiagnosticsService, ecu: str | None) -> list[str]:
    return [ecu] if ecu else [e.name for e in service.ecus]


def _scan(service: DiagnosticsService, args: argparse.Namespace, out: TextIO) -> int:
    found = service.scan()
    if args.json:
        _emit(found, out)
    else:
        rows = [
            (e["name"], e["tx"], e["rx"], "yes" if e["present"] else "no", "yes" if e["uds"] else "-",
             "yes" if e["obd"] else "-")
            for e in found
        ]  # fmt: skip
        _table(rows, ("ECU", "request", "answer", "present", "UDS", "OBD-II"), out)
    return 0 if any(e["present"] for e in found) else 1


def _dtc(service: DiagnosticsService, args: argparse.Namespace, out: TextIO) -> int:
    from vehicle_host.plugins.contract import DeviceUnavailable, PluginError

    found: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for ecu in _ecus(service, args.ecu):
        try:
            if args.obd:
                items = service.obd_dtcs(args.obd, ecu)
            else:
                items = service.read_dtcs(ecu, args.mask, with_snapshots=args.snapshots)
        except DeviceUnavailable:
            raise
        except PluginError as exc:
            errors[ecu] = str(exc)
            continue
        found.extend({"ecu": ecu, **item} for item in items)
    if args.json:
        _emit({"dtcs": found, "errors": errors}, out)
    else:
        rows = [(d["ecu"], d.get("dtc", d["code"]), _status(d), d["description"]) for d in found]
        _table(rows, ("ECU", "DTC", "status", "description"), out)
        for d in found:
            for record in d.get("snapshots", []):
                values = ", ".join(_value(v["value"]) for v in record["values"])
                print(f"  {d['ecu']} {d['code']} snapshot {record['record']}: {values}", file=out)
        for ecu, message in errors.items():
            print(f"{ecu}: {message}", file=out)
    return 0 if not errors else 1


def _status(d: dict[str, Any]) -> str:
    bits = d.get("statusBits")
    if not bits:
        return ""
    names = {"confirmedDTC": "confirmed", "pendingDTC": "pending", "testFailed": "failing",
             "warningIndicatorRequested": "MIL"}  # fmt: skip
    return ",".join(short for key, short in names.items() if bits.get(key)) or f"0x{d['status']:02X}"


def _value(value: Any) -> str:
    if isinstance(value, dict) and "value" in value:
        unit = f" {value['unit']}" if value.get("unit") else ""
        return f"{value.get('key', value.get('name'))}={value['value']}{unit}"
    return str(value)


def _clear(service: DiagnosticsService, args: argparse.Namespace, out: TextIO) -> int:
    if not args.yes:
        print("vehicle-host diag clear: refusing without --yes (trouble codes and freeze frames are lost; "
              "park the vehicle first)", file=sys.stderr)  # fmt: skip
        return 2
    cleared = []
    for ecu in _ecus(service, args.ecu):
        service.clear_dtcs(ecu)
        cleared.append(ecu)
    if args.json:
        _emit({"cleared": cleared}, out)
    else:
        print(f"cleared DTCs on {', '.join(cleared)}", file=out)
    return 0


def _pids_line(values: dict[str, dict[str, Any]]) -> str:
    return "  ".join(_value(v) for v in values.values())


def _pids(service: DiagnosticsService, args: argparse.Namespace, out: TextIO) -> int:
    values = service.read_pids(args.pids, args.ecu)
    if args.json:
        _emit(values, out)
    else:
        rows = [
            (f"{v['pid']:02X}", v.get("name"), v.get("value", v.get("raw")), v.get("unit", ""))
            for v in values.values()
        ]
        _table(rows, ("PID", "name", "value", "unit"), out)
    return 0


def _watch(service: DiagnosticsService, args: argparse.Namespace, out: TextIO) -> int:
    from vehicle_host.plugins.contract import DeviceUnavailable, InvalidArguments, PluginError

    period = 1.0 / min(max(args.rate, 0.1), 10.0)
    shown = 0
    next_at = time.monotonic()
    while args.count <= 0 or shown < args.count:
        try:
            values = service.read_pids(args.pids, args.ecu)
            line: dict[str, Any] = {"t": round(time.time(), 3), "values": values}
        except (DeviceUnavailable, InvalidArguments):
            raise
        except PluginError as exc:
            line = {"t": round(time.time(), 3), "error": str(exc)}
        if args.json:
            _emit(line, out)
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime(line["t"]))
            print(f"{stamp}  {_pids_line(line['values']) if 'values' in line else line['error']}", file=out)
            out.flush()
        shown += 1
        next_at = max(next_at + period, time.monotonic())
        time.sleep(max(next_at - time.monotonic(), 0))
    return 0


def _vin(service: DiagnosticsService, args: argparse.Namespace, out: TextIO) -> int:
    vin = service.read_vin(args.ecu)
    if args.json:
        _emit({"ecu": args.ecu, "vin": vin}, out)
    else:
        print(vin, file=out)
    return 0


COMMANDS = {"scan": _scan, "vin": _vin, "dtc": _dtc, "clear": _clear, "pids": _pids, "watch": _watch}


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Open the bus, run one ``diag`` command, close the bus. Errors raise ``VehicleHostError``."""
    from vehicle_host.plugins.can_diagnostics.service import DiagnosticsService, receive_ids_for
    from vehicle_host.plugins.can_diagnostics.transport import DEFAULT_ECUS, open_bus

    out = out or sys.stdout
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("UdsClient").setLevel(logging.CRITICAL)  # errors are reported as exceptions
    logging.getLogger("isotp").setLevel(logging.CRITICAL)
    bus = open_bus(
        args.interface, args.channel, bitrate=args.bitrate, receive_ids=receive_ids_for(DEFAULT_ECUS)
    )
    try:
        with DiagnosticsService(bus, p2_timeout=args.p2, adapter=args.channel) as service:
            try:
                return COMMANDS[args.diag_command](service, args, out)
            except KeyboardInterrupt:
                return 0
    finally:
        bus.shutdown()
