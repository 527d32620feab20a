"""CAN figures: DBC decode rate at the bus limit, and UDS VIN reads against the ECU simulator.

    .venv/bin/python -m benchmarks.can [--seconds 3] [--interfaces virtual,vhbus] [--json]
    .venv/bin/python -m benchmarks can --interfaces socketcan --channel vcan0     (needs vcan0)

decode_frames_per_s: a sender offers 9,009 frames/s (11-bit, 8-byte frames at 1 Mbit/s, no stuffing)
of the DBC's VehicleSpeed message for a few seconds; the receiver is what the plugin uses (a
python-can bus with kernel-style ``can_filters``) and decodes every frame with cantools. The
message's 16-bit RollingCounter numbers the frames, so gaps count drops. For ``virtual`` the sender
is a thread (the bus is per process); for ``vhbus`` and ``socketcan`` it is another process.

uds_vin_req_per_s: udsoncan ``Client`` reading DID F190 (3 ISO-TP frames) in a loop against the
simulator; plugin_uds_vin_req_per_s: the same through the plugin's ``DiagnosticsService.read_vin()``
when that module is importable.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import can
import isotp
import udsoncan
from udsoncan.client import Client
from udsoncan.connections import PythonIsoTpConnection

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vehicle_host.simulator import DID_LENGTHS, Scenario, Simulator  # noqa: E402
from vehicle_host.simulator.vehicle import load_dbc  # noqa: E402

BUS_LIMIT_FPS = 9009  # 1 Mbit/s / 111 bits per 11-bit 8-byte frame
SPEED_ID = 0x1A0


# -- sender ---------------------------------------------------------------------------------------
def _payloads() -> list[bytes]:
    message = load_dbc().get_message_by_frame_id(SPEED_ID)
    template = message.encode(
        {"VehicleSpeed": 87.5, "EngineSpeed": 2200, "SpeedValid": 1, "RollingCounter": 0}
    )
    return [template[:6] + seq.to_bytes(2, "little") for seq in range(65536)]


def offer_frames(bus: can.BusABC, rate: float, seconds: float) -> dict[str, float]:
    """Send VehicleSpeed frames at ``rate`` per second for ``seconds``; returns what was sent."""
    payloads = _payloads()
    sent = failed = 0
    start = time.perf_counter()
    end = start + seconds
    while (now := time.perf_counter()) < end:
        due = int((now - start) * rate) - sent - failed
        for _ in range(min(due, 500)):
            msg = can.Message(arbitration_id=SPEED_ID, is_extended_id=False, data=payloads[sent & 0xFFFF])
            try:
                bus.send(msg, timeout=0.01)
                sent += 1
            except can.CanError:
                failed += 1
        if due <= 0:
            time.sleep(0.0005)
    elapsed = time.perf_counter() - start
    return {"sent": sent, "send_failed": failed, "send_seconds": elapsed}


def _sender_main(interface: str, channel: str, rate: float, seconds: float) -> int:
    with can.Bus(interface=interface, channel=channel) as bus:
        print("ready", flush=True)
        sys.stdin.readline()  # wait until the receiver says go
        print(json.dumps(offer_frames(bus, rate, seconds)), flush=True)
    return 0


# -- receiver -------------------------------------------------------------------------------------
def decode_frames(
    interface: str, channel: str, seconds: float, rate: float = BUS_LIMIT_FPS
) -> dict[str, Any]:
    db = load_dbc()
    filters = [{"can_id": SPEED_ID, "can_mask": 0x7FF, "extended": False}]
    receiver = can.Bus(interface=interface, channel=channel, can_filters=filters)
    result: dict[str, float] = {}
    process = None
    thread = None
    try:
        if interface == "virtual":
            sender_bus = can.Bus(interface=interface, channel=channel)

            def send() -> None:
                result.update(offer_frames(sender_bus, rate, seconds))
                sender_bus.shutdown()

            thread = threading.Thread(target=send, daemon=True)
            thread.start()
        else:
            code = (
                "import sys, benchmarks.can as b; "
                "sys.exit(b._sender_main(*sys.argv[1:3], *map(float, sys.argv[3:])))"
            )
            process = subprocess.Popen(
                [sys.executable, "-c", code, interface, channel, str(rate), str(seconds)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            assert process.stdin is not None and process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("the sender process did not start")
            process.stdin.write("go\n")
            process.stdin.flush()
        received = decoded = gaps = 0
        last_seq: int | None = None
        first_t = last_t = 0.0
        cpu_start = time.process_time()
        deadline = time.monotonic() + seconds + 30
        while time.monotonic() < deadline:
            msg = receiver.recv(1.0)
            if msg is None:
                if (thread is not None and not thread.is_alive()) or (
                    process is not None and process.poll() is not None
                ):
                    break
                continue
            now = time.perf_counter()
            if received == 0:
                first_t = now
            last_t = now
            received += 1
            values = db.decode_message(msg.arbitration_id, msg.data)
            decoded += 1
            seq = int(values["RollingCounter"])
            if last_seq is not None:
                gaps += (seq - last_seq - 1) & 0xFFFF
            last_seq = seq
        cpu = time.process_time() - cpu_start
        if process is not None:
            out, _ = process.communicate(timeout=30)
            result.update(json.loads(out.strip().splitlines()[-1]))
        elif thread is not None:
            thread.join(30)
    finally:
        receiver.shutdown()
        if process is not None and process.poll() is None:
            process.kill()
    sent = int(result.get("sent", 0))
    span = max(last_t - first_t, 1e-9)
    return {
        "interface": interface,
        "offered_fps": round(sent / max(result.get("send_seconds", 1.0), 1e-9)),
        "sent": sent,
        "received": received,
        "decoded": decoded,
        "dropped": sent - received,
        "sequence_gaps": gaps,
        "decode_frames_per_s": round(decoded / span),
        # whole process: for ``virtual`` this includes the sender thread
        "receiver_cpu_us_per_frame": round(cpu / max(received, 1) * 1e6, 1),
    }


# -- UDS --------------------------------------------------------------------------------------------
def _uds_client(bus: can.BusABC, notifier: can.Notifier) -> Client:
    address = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=0x7E0, rxid=0x7E8)
    stack = isotp.NotifierBasedCanStack(bus, notifier, address=address, params={"tx_padding": 0x55})
    config: Any = dict(udsoncan.configs.default_client_config)
    config["data_identifiers"] = {0xF190: udsoncan.AsciiCodec(DID_LENGTHS[0xF190])}
    config["use_server_timing"] = False
    return Client(PythonIsoTpConnection(stack), config=config, request_timeout=2.0)


def _rate(call: Callable[[], object], seconds: float) -> float:
    call()  # warm up
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        call()
        count += 1
    return count / elapsed


def uds_vin_rate(seconds: float, plugin: bool = False) -> float | None:
    """VIN reads per second against the simulator on a virtual bus (raw udsoncan, or the plugin)."""
    channel = f"bench-{os.getpid()}-{time.monotonic_ns()}"
    sim_bus = can.Bus(interface="virtual", channel=channel)
    bus = can.Bus(interface="virtual", channel=channel)
    expected = Scenario.default().vin
    try:
        with Simulator(sim_bus, Scenario.default()):
            if plugin:
                return plugin_vin_rate(bus, seconds, expected)
            notifier = can.Notifier(bus, [], timeout=0.1)
            try:
                with _uds_client(bus, notifier) as client:

                    def read() -> None:
                        vin = client.read_data_by_identifier(0xF190).service_data.values[0xF190]
                        assert vin == expected

                    return _rate(read, seconds)
            finally:
                notifier.stop()
    finally:
        bus.shutdown()
        sim_bus.shutdown()


def plugin_vin_rate(bus: can.BusABC, seconds: float, expected: str) -> float | None:
    """Hook for the plugin's figure: ``DiagnosticsService(bus).read_vin()`` when importable."""
    try:
        from vehicle_host.plugins.can_diagnostics.service import DiagnosticsService
    except ImportError as exc:
        print(f"plugin_uds_vin_req_per_s: unavailable ({exc})", file=sys.stderr)
        return None
    if not hasattr(DiagnosticsService, "read_vin"):
        print("plugin_uds_vin_req_per_s: unavailable (DiagnosticsService has no read_vin)", file=sys.stderr)
        return None
    service = DiagnosticsService(bus)
    try:

        def read() -> None:
            assert service.read_vin() == expected

        return _rate(read, seconds)
    finally:
        service.close()


def uds_vin_rate_vhbus(seconds: float) -> float:
    """VIN reads per second when the simulator is another process (``simulate-ecu`` on vhbus)."""
    tmp = Path(tempfile.mkdtemp(prefix="vhb-"))
    endpoint = f"ipc://{tmp / 'can0.sock'}"
    sim = subprocess.Popen(
        [sys.executable, "-m", "vehicle_host", "simulate-ecu", "--interface", "vhbus", "--channel", endpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        assert sim.stdout is not None
        sim.stdout.readline()
        with can.Bus(interface="vhbus", channel=endpoint, broker="never") as bus:
            notifier = can.Notifier(bus, [], timeout=0.1)
            try:
                with _uds_client(bus, notifier) as client:
                    return _rate(lambda: client.read_data_by_identifier(0xF190), seconds)
            finally:
                notifier.stop()
    finally:
        sim.terminate()
        sim.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


# -- report ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks can", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    parser.add_argument("--interfaces", default="virtual,vhbus", help="comma list: virtual, vhbus, socketcan")
    parser.add_argument("--channel", default="vcan0", help="channel for socketcan")
    parser.add_argument("--rate", type=float, default=BUS_LIMIT_FPS, help="offered frames per second")
    parser.add_argument("--no-plugin", action="store_true", help="skip plugin_uds_vin_req_per_s")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="vhb-"))
    report: dict[str, Any] = {"bus_limit_fps": BUS_LIMIT_FPS, "decode": []}
    try:
        for interface in [i.strip() for i in args.interfaces.split(",") if i.strip()]:
            channel = {
                "virtual": f"bench-{os.getpid()}",
                "vhbus": f"ipc://{tmp / 'decode.sock'}",
            }.get(interface, args.channel)
            report["decode"].append(decode_frames(interface, channel, args.seconds, args.rate))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["uds_vin_req_per_s"] = round(uds_vin_rate(args.seconds) or 0.0, 1)
    report["uds_vin_req_per_s_vhbus"] = round(uds_vin_rate_vhbus(args.seconds), 1)
    plugin = None if args.no_plugin else uds_vin_rate(args.seconds, plugin=True)
    report["plugin_uds_vin_req_per_s"] = None if plugin is None else round(plugin, 1)
    raw = report["uds_vin_req_per_s"]
    report["ratios"] = {
        "vhbus_vs_virtual_uds": round(report["uds_vin_req_per_s_vhbus"] / raw, 2) if raw else None,
        "plugin_vs_raw_uds": round(plugin / raw, 2) if plugin and raw else None,
        **{
            f"{d['interface']}_decode_vs_bus_limit": round(d["decode_frames_per_s"] / BUS_LIMIT_FPS, 2)
            for d in report["decode"]
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    header = ("interface", "offered/s", "sent", "received", "dropped", "gaps", "decoded/s", "cpu us/frame")
    print(f"{header[0]:<10} " + " ".join(f"{h:>12}" for h in header[1:]))
    for d in report["decode"]:
        keys = ("offered_fps", "sent", "received", "dropped", "sequence_gaps", "decode_frames_per_s")
        cells = [d[k] for k in keys] + [d["receiver_cpu_us_per_frame"]]
        print(f"{d['interface']:<10} " + " ".join(f"{c!s:>12}" for c in cells))
    print(f"\nuds_vin_req_per_s (udsoncan, virtual bus, same process)  {report['uds_vin_req_per_s']:>8}")
    print(f"uds_vin_req_per_s_vhbus (simulator in another process)    {report['uds_vin_req_per_s_vhbus']:>8}")
    shown = report["plugin_uds_vin_req_per_s"] if plugin is not None else "unavailable"
    print(f"plugin_uds_vin_req_per_s (DiagnosticsService.read_vin)  {shown!s:>8}")
    print("ratios: " + ", ".join(f"{k} {v}" for k, v in report["ratios"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
