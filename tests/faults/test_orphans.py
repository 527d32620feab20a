"""A hub killed while it is still starting its workers and plugins leaves no process behind.

A plugin asks the kernel for SIGTERM on its parent's death as it starts and then checks that its
parent is still the hub that started it (``vehicle_host/parent_death.py``); a worker exits when its
connection to the hub closes or its hello stays unanswered for ``HUB_SILENCE_S`` (bubblewrap asks
for its own parent-death signal only once it runs, so a sandbox started in the instant of the kill
can miss it).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import start_hub
from tests.faults.kill_helpers import describe
from vehicle_host.logic_worker.worker import HUB_SILENCE_S

pytestmark = pytest.mark.integration

#: how long after the hub process starts it is killed: before, during and after its children start
KILL_AFTER_S = (0.15, 0.4, 0.8, 1.5)


def children_of_run(marker: str) -> list[int]:
    """Running processes whose command line names ``marker`` (a zombie awaiting init does not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("delay", KILL_AFTER_S)
def test_a_hub_killed_while_starting_leaves_no_child_behind(
    short_dir: Path, apps_dir: Path, delay: float
) -> None:
    pool = {"VEHICLE_HOST_POOL_SIZE": "2"}
    hub = start_hub(short_dir, apps_dir, plugins="storage,network,profile", env=pool, wait=False)
    run = hub.runtime_dir
    time.sleep(delay)
    seen = children_of_run(str(run))  # what the hub had started when it died
    hub.process.send_signal(signal.SIGKILL)
    hub.process.wait()
    deadline = time.monotonic() + HUB_SILENCE_S + 15  # plugins stop on SIGTERM, an unanswered worker gives up
    left = children_of_run(str(run))
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = children_of_run(str(run))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"killed {delay} s after start (children then: {seen}); still running: {describe(left)}"
