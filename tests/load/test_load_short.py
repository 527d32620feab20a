"""The load run of ``python -m benchmarks load``, short: ten apps open at once with live CAN data, a
real tap every half second on the app on screen, memory sampled every few seconds.

It asserts behaviour, not speed: every app opened and is still running in the same worker process,
every live app kept receiving readings from the simulated ECU, every tap got its repaint, no process
of the host was restarted, and the host's resident memory did not grow past a generous bound after
warm-up (a resource bound; the timing figures are the benchmark's job).

The soak is ``python -m benchmarks load --minutes 10``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.load import Options, Run, drive
from benchmarks.load_stack import running_stack

pytestmark = pytest.mark.e2e

OPTIONS = Options(minutes=0.75, warmup_s=15.0, tap_every_s=0.5, sample_every_s=4.0, live=4, rate_hz=5.0)
#: growth of the whole host's RSS (hub, shell + WebKit, workers, plugins) from the first sample after
#: warm-up to the last; a leak of the live-data path (about 1 000 live readings and 90 taps
#: in this run) shows here
GROWTH_BOUND_MB = 64.0


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    root = Path(tempfile.mkdtemp(prefix="vh-load-"))
    try:
        with running_stack(root, live=OPTIONS.live, rate_hz=OPTIONS.rate_hz) as stack:
            try:
                result = drive(stack, OPTIONS, progress=lambda _: None)
            except Exception:
                print(stack.log_tail())
                raise
    finally:
        shutil.rmtree(root, ignore_errors=True)
    yield result


def test_ten_apps_were_open_at_once_and_stayed_running(run: Run) -> None:
    assert len(run.apps) == 10
    assert run.opened == dict.fromkeys(run.apps, "ok")
    assert sorted(run.running_end) == sorted(run.apps)
    assert run.shell_error is None
    assert sorted(k.removeprefix("worker:") for k in run.pids_end if k.startswith("worker:")) == sorted(
        run.apps
    )
    assert run.crashes == dict.fromkeys(run.apps, 0)


def test_every_live_app_kept_receiving_readings(run: Run) -> None:
    assert len(run.live) == 4 and len(run.samples) >= 5
    assert run.stalled() == {}
    for app_id in run.live:  # every app's setData stream reached the shell, sample after sample
        assert run.samples[-1].setdata[app_id] > run.samples[0].setdata[app_id]


def test_every_tap_got_its_repaint(run: Run) -> None:
    assert run.taps_sent >= 20
    assert run.taps_missed == 0
    assert len(run.taps) == run.taps_sent
    assert all(math.isfinite(t.tap_ms) and math.isfinite(t.page_ms) for t in run.taps)
    assert all(t.matched for t in run.taps)  # each repaint was that tap's patch, not a live reading's


def test_no_process_was_restarted(run: Run) -> None:
    assert {"hub", "shell", "plugin:can_diagnostics"} <= set(run.pids_start)
    assert run.restarted() == []


def test_memory_stays_bounded_after_warm_up(run: Run) -> None:
    late = run.after_warmup()
    assert len(late) >= 3
    growth = max(s.memory["total"] for s in late[-2:]) - late[0].memory["total"]
    assert growth <= GROWTH_BOUND_MB, [s.memory for s in (late[0], late[-1])]
