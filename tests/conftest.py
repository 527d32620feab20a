"""Shared fixtures: short runtime directories (ipc paths are length-limited) and a real hub process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vh-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class HubProcess:
    process: subprocess.Popen[bytes]
    runtime_dir: Path
    apps_dir: Path
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.runtime_dir / 'hub.sock'}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.process.returncode


def start_hub(
    runtime_dir: Path,
    apps_dir: Path,
    *,
    plugins: str = "storage,network",
    config: Path | None = None,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> HubProcess:
    """A real hub process; ``plugins`` is the comma list of plugins it runs. With ``wait`` false it
    returns at once, while the hub is still starting."""
    log_path = runtime_dir / "hub.log"
    extra = ["--config", str(config)] if config is not None else []
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vehicle_host",
                "hub",
                "--apps",
                str(apps_dir),
                "--runtime-dir",
                str(runtime_dir / "run"),
                "--state-dir",
                str(runtime_dir / "state"),
                *extra,
            ],
            env={**os.environ, "VEHICLE_HOST_PLUGINS": plugins, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    hub = HubProcess(process, runtime_dir / "run", apps_dir, log_path)
    deadline = time.monotonic() + 20
    while wait and not (hub.runtime_dir / "hub.sock").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            hub.stop()  # a hub still starting must not outlive the test
            raise RuntimeError(f"hub did not start:\n{hub.log()}")
        time.sleep(0.05)
    return hub


@pytest.fixture
def apps_dir(short_dir: Path) -> Path:
    """A copy of the sample apps that a test may add to."""
    target = short_dir / "apps"
    shutil.copytree(EXAMPLES, target)
    return target


@pytest.fixture
def hub(short_dir: Path, apps_dir: Path) -> Iterator[HubProcess]:
    process = start_hub(short_dir, apps_dir)
    yield process
    process.stop()
