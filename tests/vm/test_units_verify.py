"""``systemd-analyze verify`` on every unit in ``systemd/system`` against a scratch root.

The root holds the host's stock units (for targets and dependencies), our units, and executable stubs
at every ``ExecStart*=`` path, so verify checks the units themselves rather than what this machine has
installed (the shell's cage and the venv exist only in the image). Any stderr counts as a failure:
systemd only warns about unknown keys.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd" / "system"
STOCK = Path("/usr/lib/systemd/system")
EXEC_RE = re.compile(r"^Exec\w*=[-@:+!]*(/\S+)", re.MULTILINE)


def _scratch_root(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    root = tmp_path / "root"
    shutil.copytree(STOCK, root / "usr/lib/systemd/system", symlinks=True)
    target = root / "etc/systemd/system"
    target.mkdir(parents=True)
    sources = {p.name: p.read_text() for p in UNITS.glob("*.service")} | (extra or {})
    for name, text in sources.items():
        (target / name).write_text(text)
        for binary in EXEC_RE.findall(text):
            stub = root / binary.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
    return root


def _verify(root: Path, name: str) -> subprocess.CompletedProcess[str]:
    unit = name.replace("@.service", "@x0.service")
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", unit],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"SYSTEMD_LOG_COLOR": "0", "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize("name", sorted(p.name for p in UNITS.glob("*.service")))
def test_unit_verifies_cleanly(tmp_path: Path, name: str) -> None:
    proc = _verify(_scratch_root(tmp_path), name)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    hub = (UNITS / "vehicle-host-hub.service").read_text()
    broken = hub.replace("RestartSec=1s", "RestartSecs=1s")
    proc = _verify(_scratch_root(tmp_path, {"broken.service": broken}), "broken.service")
    assert "Unknown key 'RestartSecs'" in proc.stderr


def test_every_unit_is_covered() -> None:
    names = {p.name for p in UNITS.glob("*.service")}
    expected = {"vehicle-host-hub.service", "vehicle-host-shell.service", "vehicle-host-simulator@.service"}
    assert expected <= names
