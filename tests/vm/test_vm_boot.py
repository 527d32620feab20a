"""Boot the amd64 device image in qemu (TCG) and check it from inside: real SocketCAN vcan0, the hub
and ECU simulator units, ``vehicle-host diag``, can-utils cross-checks, a sandboxed worker under the
hub's unit and a restart after SIGKILL.

The image is built by ``image/build.sh`` into ``.cache/vm/amd64`` (rebuilt only when the recipe,
units, guest test or project sources change). The guest's ``vehicle-host-selftest.service`` writes
one line per check to a second virtio disk and powers off; this side parses and asserts the lines.
Needs root and the apt packages qemu-system-x86 qemu-utils mmdebstrap busybox-static kmod e2fsprogs
cpio (``scripts/setup`` installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = ROOT / ".cache" / "vm" / "amd64"
GUEST = Path(__file__).resolve().parent / "guest"
BOOT_TIMEOUT_S = 900
EXPECTED = [
    "vcan0_up",
    "units_verify",
    "hub_active",
    "hub_identity",
    "simulator_active",
    "worker_sandboxed",
    "diag_vin",
    "diag_dtc",
    "candump_sees_diag",
    "cansend_obd",
    "isotp_vin",
    "hub_restarts",
    "hub_worker_after_restart",
    "udev_rules_clean",
]
TOOLS = ["qemu-system-x86_64", "mmdebstrap", "mke2fs", "cpio", "busybox", "modprobe"]


def _progress(message: str) -> None:
    print(f"[vm] {message}", file=sys.stderr, flush=True)


def _build_image() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, (
        f"missing {missing}: run scripts/setup (apt-get install qemu-system-x86 qemu-utils mmdebstrap "
        "busybox-static kmod e2fsprogs cpio)"
    )
    command = [
        str(ROOT / "image" / "build.sh"),
        "--arch", "amd64", "--out", str(IMAGE_DIR), "--headless",
        "--overlay", str(GUEST), "--enable", "vehicle-host-selftest.service",
    ]  # fmt: skip
    if os.geteuid() != 0:
        command = ["sudo", "-n", *command]
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=sys.stderr, timeout=1200)
    _progress(f"image ready in {time.monotonic() - started:.0f}s")


def _boot(results: Path, serial: Path) -> int:
    results.write_bytes(b"\0" * (1 << 20))
    command = [
        "qemu-system-x86_64",
        "-accel", "tcg,thread=multi", "-cpu", "max", "-m", "2048", "-smp", "2",
        "-no-reboot", "-display", "none", "-monitor", "none", "-nic", "none",
        "-serial", f"file:{serial}",
        "-kernel", str(IMAGE_DIR / "vmlinuz"), "-initrd", str(IMAGE_DIR / "initrd.img"),
        "-append", "console=ttyS0 root=/dev/vda panic=-1 fsck.mode=skip systemd.show_status=0",
        "-drive", f"file={IMAGE_DIR / 'rootfs.ext4'},format=raw,if=virtio,snapshot=on",
        "-drive", f"file={results},format=raw,if=virtio",
    ]  # fmt: skip
    started = time.monotonic()
    _progress("booting the image in qemu (TCG)")
    proc = subprocess.run(command, stdin=subprocess.DEVNULL, timeout=BOOT_TIMEOUT_S, check=False)
    _progress(f"guest powered off after {time.monotonic() - started:.0f}s (qemu rc={proc.returncode})")
    return proc.returncode


def test_image_boots_and_serves_can_diagnostics(tmp_path: Path) -> None:
    _build_image()
    results, serial = tmp_path / "results.img", tmp_path / "serial.log"
    rc = _boot(results, serial)
    text = results.read_bytes().split(b"\0", 1)[0].decode("utf-8", "replace")
    keep = ROOT / "artifacts" / "vm"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(serial, keep / "serial.log")
    (keep / "results.txt").write_text(text)
    _progress("guest results:\n" + text)
    lines = text.splitlines()
    checks = {}
    for line in lines:
        parts = line.split("\t", 2)
        if len(parts) == 3:
            checks[parts[0]] = (parts[1], parts[2])
    tail = serial.read_text(errors="replace")[-3000:]
    assert rc == 0, f"qemu exited with {rc}; serial tail:\n{tail}"
    assert lines and lines[-1] == "END", f"the guest test did not finish; serial tail:\n{tail}"
    assert list(checks) == EXPECTED
    failed = {name: detail for name, (status, detail) in checks.items() if status != "PASS"}
    assert not failed, f"guest checks failed: {failed}"
