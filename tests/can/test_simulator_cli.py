"""``vehicle-host simulate-ecu`` in its own process; udsoncan in this one reads the VIN over vhbus."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import can
import isotp
import udsoncan
from udsoncan.client import Client
from udsoncan.connections import PythonIsoTpConnection

from vehicle_host.simulator import Scenario


def test_simulator_process_serves_a_udsoncan_client(short_dir: Path) -> None:
    endpoint = f"ipc://{short_dir / 'can0.sock'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "vehicle_host", "simulate-ecu", "--interface", "vhbus", "--channel", endpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(5)]
        assert banner[0].startswith("simulating on vhbus")
        assert "engine 0x7E0->0x7E8 (OBD)" in "".join(banner)
        with can.Bus(interface="vhbus", channel=endpoint, broker="never") as bus:
            notifier = can.Notifier(bus, [], timeout=0.1)
            address = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=0x7E0, rxid=0x7E8)
            stack = isotp.NotifierBasedCanStack(bus, notifier, address=address)
            config = dict(udsoncan.configs.default_client_config)
            config["data_identifiers"] = {0xF190: udsoncan.AsciiCodec(17)}
            config["request_timeout"] = 5.0
            config["p2_timeout"] = 2.0
            try:
                with Client(PythonIsoTpConnection(stack), config=config) as client:
                    vin = client.read_data_by_identifier(0xF190).service_data.values[0xF190]
            finally:
                notifier.stop()
        assert vin == Scenario.default().vin
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert "'requests': 1" in stderr


def test_missing_vcan_interface_says_how_to_create_it() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vehicle_host",
            "simulate-ecu",
            "--interface",
            "socketcan",
            "--channel",
            "vcan97",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ip link add dev vcan97 type vcan" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_scenario_file_is_reported(short_dir: Path) -> None:
    scenario = short_dir / "car.json"
    scenario.write_text('{"vin": "1VHDA5E27NA104729", "ecus": []}')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vehicle_host",
            "simulate-ecu",
            "--interface",
            "virtual",
            "--channel",
            "x",
            "--scenario",
            str(scenario),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "car.json" in result.stderr and "Traceback" not in result.stderr
