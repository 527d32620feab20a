"""The real shell process in a virtual display, with its control channel: shared by the e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vehicle_host.shell.control import ENV as CONTROL_ENV
from vehicle_host.shell.driver import ShellDriver


@contextmanager
def shell_process(
    root: Path,
    runtime_dir: Path,
    display: str,
    *,
    size: tuple[int, int] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[ShellDriver]:
    """``vehicle-host shell`` on ``display`` talking to the hub in ``runtime_dir``; its log is
    ``root/shell.log`` (appended to: a shell restarted in ``root`` keeps the earlier log). Stopped with
    its whole process group afterwards."""
    control = root / "control.sock"
    control.unlink(missing_ok=True)  # left behind by a shell that was killed: wait for the new one
    full_env = {**os.environ, "DISPLAY": display, CONTROL_ENV: f"ipc://{control}", **(env or {})}
    command = [sys.executable, "-m", "vehicle_host", "shell", "--runtime-dir", str(runtime_dir)]
    if size is not None:
        command += ["--size", f"{size[0]}x{size[1]}"]
    with (root / "shell.log").open("ab") as log:
        process = subprocess.Popen(command, env=full_env, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 30
    while not control.exists():
        assert process.poll() is None and time.monotonic() < deadline, (root / "shell.log").read_text()
        time.sleep(0.05)
    driver = ShellDriver(f"ipc://{control}", display)
    try:
        yield driver
    finally:
        driver.close()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
