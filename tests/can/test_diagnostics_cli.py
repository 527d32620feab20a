"""``vehicle-host diag`` in a subprocess against ``vehicle-host simulate-ecu`` in another, over vhbus."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vehicle_host.simulator import Scenario


@pytest.fixture
def bus_url(short_dir: Path) -> Iterator[str]:
    url = f"ipc://{short_dir / 'can.sock'}"
    log = (short_dir / "sim.log").open("wb")
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vehicle_host",
            "simulate-ecu",
            "--interface",
            "vhbus",
            "--channel",
            url,
            "--parked",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while not (short_dir / "can.sock").exists():
        assert sim.poll() is None and time.monotonic() < deadline, (short_dir / "sim.log").read_text()
        time.sleep(0.05)
    yield url
    os.killpg(sim.pid, signal.SIGTERM)
    sim.wait(10)
    log.close()


def diag(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "vehicle_host", "diag", "--interface", "vhbus", "--channel", url, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_scan_vin_and_dtcs_across_processes(bus_url: str) -> None:
    scan = diag(bus_url, "scan")
    assert scan.returncode == 0, scan.stderr
    lines = scan.stdout.splitlines()
    assert lines[0].split() == ["ECU", "request", "answer", "present", "UDS", "OBD-II"]
    assert any(line.split()[:4] == ["engine", "0x7E0", "0x7E8", "yes"] for line in lines)
    vin = diag(bus_url, "--json", "vin")
    assert json.loads(vin.stdout) == {"ecu": "engine", "vin": Scenario.default().vin}
    dtc = diag(bus_url, "dtc", "--ecu", "engine")
    assert dtc.returncode == 0, dtc.stderr
    assert "P0301-00" in dtc.stdout and "Cylinder 1 Misfire Detected" in dtc.stdout
    as_json = json.loads(diag(bus_url, "--json", "dtc", "--snapshots").stdout)
    codes = {(d["ecu"], d["code"]) for d in as_json["dtcs"]}
    assert ("abs", "C0035") in codes and ("transmission", "P0700") in codes
    assert any(d.get("snapshots") for d in as_json["dtcs"])


def test_clear_needs_yes(bus_url: str) -> None:
    refused = diag(bus_url, "clear")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert json.loads(diag(bus_url, "--json", "dtc", "--ecu", "engine").stdout)["dtcs"]
    done = diag(bus_url, "clear", "--yes", "--ecu", "engine")
    assert done.returncode == 0 and "engine" in done.stdout
    assert json.loads(diag(bus_url, "--json", "dtc", "--ecu", "engine").stdout)["dtcs"] == []


def test_pids_and_watch_with_count(bus_url: str) -> None:
    pids = json.loads(diag(bus_url, "--json", "pids", "rpm", "speed").stdout)
    assert pids["speed"]["value"] == 0 and pids["rpm"]["unit"] == "rpm"  # parked, idling
    watch = diag(bus_url, "--json", "watch", "--count", "3", "--rate", "10", "rpm")
    lines = [json.loads(line) for line in watch.stdout.splitlines()]
    assert len(lines) == 3 and all("rpm" in line["values"] for line in lines)


def test_missing_bus_is_a_clear_error(short_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vehicle_host",
            "diag",
            "--interface",
            "no_such_interface",
            "--channel",
            "x",
            "scan",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot open CAN adapter x" in result.stderr
