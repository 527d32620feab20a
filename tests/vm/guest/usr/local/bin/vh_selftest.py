"""Runs inside the booted image: checks CAN, the units and the diagnostics path, one line per check.

Each line is ``name<TAB>PASS|FAIL<TAB>detail``; the report is rewritten to the results disk after
every check, so a hang still leaves what was done. Runs as root under vehicle-host-selftest.service.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

VIN = "1VHDA5E26NA104729"
HUB = "vehicle-host-hub.service"
SIMULATOR = "vehicle-host-simulator@vcan0.service"
VH = "/opt/vehicle-host/bin/vehicle-host"
DIAG = [VH, "diag", "--interface", "socketcan", "--channel", "vcan0", "--json"]


class Report:
    def __init__(self, device: str) -> None:
        self.device = device
        self.lines: list[str] = []
        self.failed = False

    def check(self, name: str, fn: Callable[[], tuple[bool, str]]) -> None:
        started = time.monotonic()
        try:
            ok, detail = fn()
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        detail = " ".join(detail.split())[:800]
        line = f"{name}\t{'PASS' if ok else 'FAIL'}\t{detail} ({time.monotonic() - started:.1f}s)"
        print(line, flush=True)
        self.lines.append(line)
        self.failed |= not ok
        self.flush()

    def flush(self) -> None:
        data = ("\n".join([*self.lines, "END" if self.done else "..."]) + "\n").encode()
        with open(self.device, "r+b") as disk:
            disk.write(data + b"\0" * 512)
            disk.flush()
            os.fsync(disk.fileno())

    done = False


def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return predicate()


def prop(unit: str, name: str) -> str:
    return run("systemctl", "show", "-p", name, "--value", unit).stdout.strip()


def vcan_up() -> tuple[bool, str]:
    flags = Path("/sys/class/net/vcan0/flags")
    ok = wait_for(lambda: flags.exists() and int(flags.read_text(), 16) & 1 == 1, 60)
    kind = run("ip", "-details", "link", "show", "vcan0").stdout
    return ok and " vcan " in kind, kind


def unit_active(unit: str) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        ok = wait_for(lambda: prop(unit, "ActiveState") == "active", 120)
        return ok, f"ActiveState={prop(unit, 'ActiveState')} SubState={prop(unit, 'SubState')}"

    return check


def hub_identity() -> tuple[bool, str]:
    pid = int(prop(HUB, "MainPID"))
    uid = os.stat(f"/proc/{pid}").st_uid
    user = pwd.getpwuid(uid).pw_name
    sock = Path("/run/vehicle-host/hub.sock")
    ok_sock = wait_for(sock.exists, 60)
    owner = pwd.getpwuid(sock.stat().st_uid).pw_name if ok_sock else "-"
    mode = oct(Path("/run/vehicle-host").stat().st_mode & 0o777)
    nnp = "NoNewPrivs:\t1" in Path(f"/proc/{pid}/status").read_text()
    ok = user == "vehicle-host" and owner == "vehicle-host" and mode == "0o700" and nnp
    return ok, f"user={user} socket_owner={owner} runtime_dir_mode={mode} no_new_privs={nnp}"


def cgroup_cmdlines(unit: str) -> list[str]:
    cgroup = prop(unit, "ControlGroup")
    procs = Path("/sys/fs/cgroup", cgroup.lstrip("/"), "cgroup.procs")
    lines = []
    for pid in procs.read_text().split() if procs.exists() else []:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


def worker_sandboxed() -> tuple[bool, str]:
    def ready() -> bool:
        log = run("journalctl", "-b", "-u", HUB, "-o", "cat", "--no-pager").stdout
        return "worker ready" in log

    ok = wait_for(ready, 150)
    cmds = cgroup_cmdlines(HUB)
    bwrap = [c for c in cmds if c.startswith("bwrap ") or "/bwrap " in c]
    worker = [c for c in cmds if "vehicle_host.logic_worker" in c and "bwrap" not in c.split()[0]]
    detail = f"worker_ready_logged={ok} bwrap={len(bwrap)} workers={len(worker)}"
    if not ok:
        detail += " log: " + run("journalctl", "-b", "-u", HUB, "-o", "cat", "-n", "15").stdout
    return ok and bool(bwrap) and bool(worker), detail


def diag_vin() -> tuple[bool, str]:
    proc = run(*DIAG, "vin")
    data = json.loads(proc.stdout) if proc.returncode == 0 else {}
    return data.get("vin") == VIN, f"rc={proc.returncode} out={proc.stdout.strip()} err={proc.stderr[-300:]}"


def diag_dtc() -> tuple[bool, str]:
    proc = run(*DIAG, "dtc")
    data = json.loads(proc.stdout) if proc.stdout.strip() else {}
    codes = sorted({d.get("code", "") for d in data.get("dtcs", [])})
    return "P0301" in codes, f"rc={proc.returncode} codes={codes} errors={data.get('errors')}"


def candump_during(filters: str, action: Callable[[], None], frames: int = 50) -> list[str]:
    dump = subprocess.Popen(
        ["candump", "-L", "-n", str(frames), "-T", "8000", f"vcan0,{filters}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    action()
    time.sleep(1.0)
    dump.terminate()
    out, _ = dump.communicate(timeout=10)
    return [line.split()[2] for line in out.splitlines() if len(line.split()) == 3]


def candump_sees_diag() -> tuple[bool, str]:
    frames = candump_during("7E0:7FF,7E8:7FF", lambda: run(*DIAG, "vin").check_returncode())
    request = any(f.upper().startswith("7E0#0322F190") for f in frames)
    first = any(f.upper().startswith("7E8#10") and f.upper()[8:14] == "62F190" for f in frames)
    return request and first, f"frames={frames[:6]}"


def cansend_obd() -> tuple[bool, str]:
    request = "7DF#02010C0000000000"  # OBD-II mode 01 PID 0C (engine speed), functional address
    frames = candump_during("7E8:7FF", lambda: run("cansend", "vcan0", request).check_returncode())
    answer = [f for f in frames if f.upper().startswith("7E8#") and f.upper()[6:10] == "410C"]
    return bool(answer), f"rpm answers={answer[:3]}"


def isotp_vin() -> tuple[bool, str]:
    recv = subprocess.Popen(
        ["isotprecv", "-s", "7E0", "-d", "7E8", "vcan0"], stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.5)
    send = subprocess.run(
        ["isotpsend", "-s", "7E0", "-d", "7E8", "-p", "AA:", "vcan0"],
        input="22 F1 90\n",
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    try:
        out, _ = recv.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        recv.kill()
        out, _ = recv.communicate()
    data = bytes.fromhex(out.strip()) if out.strip() else b""
    vin = data[3:].decode("ascii", "replace").strip() if data[:3] == b"\x62\xf1\x90" else ""
    return vin == VIN, f"send_rc={send.returncode} response={out.strip()[:80]} vin={vin}"


def hub_restarts() -> tuple[bool, str]:
    before_pid, before_n = prop(HUB, "MainPID"), int(prop(HUB, "NRestarts"))
    run("systemctl", "kill", "-s", "KILL", HUB).check_returncode()

    def back() -> bool:
        return prop(HUB, "ActiveState") == "active" and prop(HUB, "MainPID") not in ("0", before_pid)

    ok = wait_for(back, 90) and int(prop(HUB, "NRestarts")) == before_n + 1
    return ok, (
        f"pid {before_pid}->{prop(HUB, 'MainPID')} NRestarts {before_n}->{prop(HUB, 'NRestarts')} "
        f"state={prop(HUB, 'ActiveState')}"
    )


def units_verify() -> tuple[bool, str]:
    units = [f"/usr/lib/systemd/system/{HUB}", f"/usr/lib/systemd/system/{SIMULATOR}"]
    proc = run("systemd-analyze", "verify", "--man=no", *units, timeout=120)
    return proc.returncode == 0 and not proc.stderr.strip(), f"rc={proc.returncode} stderr={proc.stderr}"


def udev_rules_clean() -> tuple[bool, str]:
    log = run("journalctl", "-b", "-u", "systemd-udevd", "-o", "cat", "--no-pager").stdout
    bad = [line for line in log.splitlines() if "vehicle-host" in line]
    return not bad, f"udevd messages about our rules: {bad[:3]}"


def main() -> int:
    report = Report(sys.argv[1])
    report.check("vcan0_up", vcan_up)
    report.check("units_verify", units_verify)
    report.check("hub_active", unit_active(HUB))
    report.check("hub_identity", hub_identity)
    report.check("simulator_active", unit_active(SIMULATOR))
    report.check("worker_sandboxed", worker_sandboxed)
    report.check("diag_vin", diag_vin)
    report.check("diag_dtc", diag_dtc)
    report.check("candump_sees_diag", candump_sees_diag)
    report.check("cansend_obd", cansend_obd)
    report.check("isotp_vin", isotp_vin)
    report.check("hub_restarts", hub_restarts)
    report.check("hub_worker_after_restart", worker_after_restart)
    report.check("udev_rules_clean", udev_rules_clean)
    report.done = True
    report.flush()
    return 1 if report.failed else 0


def worker_after_restart() -> tuple[bool, str]:
    ok = wait_for(lambda: any("vehicle_host.logic_worker" in c for c in cgroup_cmdlines(HUB)), 150)
    return ok, f"processes in the hub's cgroup: {len(cgroup_cmdlines(HUB))}"


if __name__ == "__main__":
    sys.exit(main())
