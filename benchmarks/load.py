"""Ten mini-apps open at once with live CAN data: input-to-repaint latency and memory over a soak.

    .venv/bin/python -m benchmarks load [--json] [--minutes 10] [--warmup 60] [--tap-every 1.0]

The long (soak) command is ``python -m benchmarks load --minutes 10``; ``tests/load`` runs the same
code for under a minute and asserts behaviour instead of figures.

Set-up (benchmarks/load_stack.py): the wiring of ``vehicle-host run --simulator`` (virtual CAN bus
with the ECU simulator, dealer service, hub with every plugin) and the real shell in a pywebview
window under Xvfb. The six sample apps and ``--live`` (default 4) generated live apps are opened one
after the other (the shell keeps an app running when the driver goes home), so ten run at once. Each
live app streams OBD-II rpm and speed from the simulated engine ECU (``fc.vehicle.watchPids``,
``--rate`` readings per second) through the can_diagnostics plugin, and setData's a counter per
reading; the car follows the simulator's drive cycle, so the shell also gets the vehicle state
(speed, gear) up to 10 times a second. The last live app stays on screen.

Input to repaint: every ``--tap-every`` seconds a real X click (xdotool, through ShellDriver.click)
on the on-screen app's button, whose handler calls setData. The tap ends when the shell's top frame
has seen the renderer's "painted" for that very patch (matched by the renderer's sequence number, as
live readings patch the same page) and then a task after the next animation frame (the frame with
the change was produced). ``tap_ms`` runs from just before xdotool is started (so it includes
xdotool's own start, ``xdotool_ms``) to that point, with the page clock mapped onto Python's
(``clock_error_ms``: half the best control-channel round trip); ``page_ms`` runs from the page's event
message to the same point, in the page's clock only. Target: ``tap_ms`` p99 <= 100 ms.

Memory: every ``--sample-every`` seconds the resident set of the hub, the shell and its WebKit
processes, every worker (and idle pooled ones) and every plugin, from /proc. After ``--warmup`` the
least-squares slope of the total (MB/min) and its growth are reported; "bounded" means the slope is at
most ``SLOPE_LIMIT_MB_PER_MIN`` over the soak.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.load_stack import Stack, running_stack  # noqa: E402

TARGET_TAP_P99_MS = 100.0
SLOPE_LIMIT_MB_PER_MIN = 1.0  # the whole host's RSS after warm-up, over a soak of 10 minutes or more
TAP_TIMEOUT_S = 5.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Options:
    minutes: float = 10.0
    warmup_s: float = 60.0
    tap_every_s: float = 1.0
    sample_every_s: float = 5.0
    live: int = 4
    rate_hz: float = 5.0


@dataclass
class Tap:
    tap_ms: float
    page_ms: float
    applied_ms: float  # page event -> renderer applied the patch
    xdotool_ms: float
    #: the renderer's paint was the one for this tap's patch: its sequence number is the patch's,
    #: the patch was not painted before the tap, and no frame painted more patches than it was sent
    matched: bool = True


@dataclass
class Sample:
    t: float  # seconds since the load started
    memory: dict[str, float]
    ticks: dict[str, int]  # live app -> readings counted so far (as setData reached the shell)
    setdata: dict[str, int]  # app -> setData messages that reached the shell


@dataclass
class Run:
    """What happened; ``figures()`` turns it into the report."""

    options: Options
    apps: list[str]
    live: list[str]
    tap_app: str
    opened: dict[str, str] = field(default_factory=dict)  # app -> "ok" or what went wrong
    taps: list[Tap] = field(default_factory=list)
    taps_sent: int = 0
    taps_missed: int = 0
    samples: list[Sample] = field(default_factory=list)
    pids_start: dict[str, int] = field(default_factory=dict)  # "hub", "shell", "worker:..", "plugin:.."
    pids_end: dict[str, int] = field(default_factory=dict)
    crashes: dict[str, int] = field(default_factory=dict)
    plugin_restarts: dict[str, int] = field(default_factory=dict)
    running_end: list[str] = field(default_factory=list)
    shell_error: Any = None
    clock_error_ms: float = 0.0
    seconds: float = 0.0

    def after_warmup(self) -> list[Sample]:
        late = [s for s in self.samples if s.t >= self.options.warmup_s]
        return late if len(late) >= 2 else self.samples[-2:]

    def restarted(self) -> list[str]:
        """Processes whose pid changed or that went away, plus plugins the hub restarted."""
        changed = [k for k, pid in self.pids_start.items() if self.pids_end.get(k) != pid]
        return changed + [f"plugin:{n}" for n, r in self.plugin_restarts.items() if r]

    def stalled(self) -> dict[str, list[int]]:
        """Live apps whose reading counter did not advance between two samples after the first."""
        out: dict[str, list[int]] = {}
        for app_id in self.live:
            series = [s.ticks.get(app_id, 0) for s in self.samples]
            if len(series) < 2 or any(b <= a for a, b in itertools.pairwise(series)):
                out[app_id] = series
        return out

    def figures(self) -> dict[str, Any]:
        taps = [t.tap_ms for t in self.taps]
        late = self.after_warmup()
        first, last = late[0], late[-1]
        minutes = max((last.t - first.t) / 60, 1e-9)
        memory: dict[str, Any] = {}
        for key in self.samples[0].memory if self.samples else []:
            values = [s.memory.get(key, 0.0) for s in late]
            memory[key] = {
                "start_mb": round(values[0], 1),
                "end_mb": round(values[-1], 1),
                "max_mb": round(max(s.memory.get(key, 0.0) for s in self.samples), 1),
                "slope_mb_per_min": round(slope([s.t for s in late], values), 3),
            }
        total = memory.get("total", {})
        readings = {
            app: round((last.ticks.get(app, 0) - first.ticks.get(app, 0)) / (minutes * 60), 2)
            for app in self.live
        }
        return {
            "apps_open": sum(1 for v in self.opened.values() if v == "ok"),
            "tap_ms_p50": pct(taps, 0.50),
            "tap_ms_p95": pct(taps, 0.95),
            "tap_ms_p99": pct(taps, 0.99),
            "tap_ms_max": round(max(taps), 1) if taps else None,
            "page_ms_p50": pct([t.page_ms for t in self.taps], 0.50),
            "page_ms_p99": pct([t.page_ms for t in self.taps], 0.99),
            "applied_ms_p50": pct([t.applied_ms for t in self.taps], 0.50),
            "xdotool_ms_p50": pct([t.xdotool_ms for t in self.taps], 0.50),
            "clock_error_ms": round(self.clock_error_ms, 2),
            "taps_sent": self.taps_sent,
            "taps_repainted": len(self.taps),
            "taps_missed": self.taps_missed,
            "taps_unmatched": sum(1 for t in self.taps if not t.matched),
            "rss_total_start_mb": total.get("start_mb"),
            "rss_total_end_mb": total.get("end_mb"),
            "rss_total_max_mb": total.get("max_mb"),
            "rss_total_slope_mb_per_min": total.get("slope_mb_per_min"),
            "rss_total_growth_mb": round(last.memory["total"] - first.memory["total"], 1) if late else None,
            "bounded": bool(total) and total["slope_mb_per_min"] <= SLOPE_LIMIT_MB_PER_MIN,
            "readings_per_s": readings,
            "restarted": self.restarted(),
            "stalled_live_apps": sorted(self.stalled()),
            "memory": memory,
            "samples": {
                "seconds": round(self.seconds, 1),
                "warmup_s": self.options.warmup_s,
                "memory_samples": len(self.samples),
                "apps": self.apps,
                "tap_app": self.tap_app,
            },
        }


def pct(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(float(ordered[min(len(ordered) - 1, int(len(ordered) * q))]), 1)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (seconds), in units per minute."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 60


# -- the load ----------------------------------------------------------------------------------
def _painted_or_failed(app_id: str, snap: dict[str, Any]) -> bool:
    return snap.get("appId") == app_id and (snap.get("painted", 0) > 0 or snap.get("error") is not None)


def open_apps(stack: Stack, order: list[str]) -> dict[str, str]:
    """Launch every app in turn from the launcher; all but the last go to the background."""
    driver = stack.driver
    result = {}
    for index, app_id in enumerate(order):
        driver.eval(f"vh.launch({json.dumps(app_id)})")
        snap = driver.wait_for(
            functools.partial(_painted_or_failed, app_id),
            timeout=45,
            what=f"{app_id} to paint",
        )
        result[app_id] = "ok" if snap.get("error") is None else f"error: {snap['error']}"
        if index < len(order) - 1:
            driver.eval("vh.home()")
            driver.wait_for(lambda s: s.get("view") == "launcher", what="the launcher")
    return result


def calibrate(stack: Stack, tries: int = 5) -> tuple[float, float]:
    """(Python ms - page ms, half the best round trip): maps the page's performance.now() onto
    time.monotonic()."""
    best = (0.0, float("inf"))
    for _ in range(tries):
        a = time.monotonic()
        page = float(stack.driver.eval("performance.now()"))
        b = time.monotonic()
        if (b - a) * 500 < best[1]:
            best = ((a + b) * 500 - page, (b - a) * 500)
    return best


def button_centre(stack: Stack) -> tuple[float, float]:
    snap = stack.driver.snapshot()
    frame = snap.get("frame")
    node = next((n for n in stack.driver.inspect()["nodes"] if n.get("id") == "tap"), None)
    if frame is None or node is None:
        raise RuntimeError(f"no tap button on screen: {snap.get('appId')}, error {snap.get('error')}")
    return frame["x"] + node["x"] + node["w"] / 2, frame["y"] + node["y"] + node["h"] / 2


def tap_once(stack: Stack, run: Run, where: tuple[float, float], expect: int, offset: float) -> bool:
    driver = stack.driver
    source = f"app:{run.tap_app}"
    if driver.eval(f"__load.arm({json.dumps(source)}, {expect})") is None:
        return False
    run.taps_sent += 1
    t0 = time.monotonic()
    driver.click(*where)
    t1 = time.monotonic()
    deadline = t1 + TAP_TIMEOUT_S
    while time.monotonic() < deadline:
        done = driver.eval(f"__load.take({expect})")
        if done:
            start_page = t0 * 1000 - offset
            event = done.get("event")
            run.taps.append(
                Tap(
                    tap_ms=done["frame"] - start_page,
                    page_ms=done["frame"] - event if event is not None else float("nan"),
                    applied_ms=done["applied"] - event if event is not None else float("nan"),
                    xdotool_ms=(t1 - t0) * 1000,
                    matched=done["appliedSeq"] == done["seq"]
                    and done["seqBefore"] < done["seq"]
                    and done["drift"] <= 0,
                )
            )
            return True
        time.sleep(0.02)
    run.taps_missed += 1
    return False


def sample(stack: Stack, run: Run, t: float) -> None:
    counters = stack.driver.eval("__load.counters()")
    apps = counters["apps"]
    run.samples.append(
        Sample(
            t=t,
            memory=stack.memory(),
            ticks={a: int(apps.get(f"app:{a}", {}).get("ticks", 0)) for a in run.live},
            setdata={a: int(apps.get(f"app:{a}", {}).get("setData", 0)) for a in run.apps},
        )
    )


def process_ids(stack: Stack) -> tuple[dict[str, int], dict[str, Any]]:
    stats = stack.hub_stats()
    pids = {"hub": stack.hub.pid, "shell": stack.shell.pid} if stack.alive() else {}
    pids |= {f"worker:{a}": int(p) for a, p in stats.get("workers", {}).items()}
    for name, info in stats.get("plugins", {}).get("plugins", {}).items():
        if info.get("pid"):
            pids[f"plugin:{name}"] = int(info["pid"])
    return pids, stats


def drive(stack: Stack, options: Options, progress: Callable[[str], None] = say) -> Run:
    """Open every app, then tap and sample until ``options.minutes`` have passed."""
    tap_app = stack.apps.live[0]
    order = [*stack.apps.samples, *stack.apps.live[1:], tap_app]
    run = Run(options, order, list(stack.apps.live), tap_app)
    progress(f"opening {len(order)} apps...")
    run.opened = open_apps(stack, order)
    progress(f"opened: {run.opened}")
    run.pids_start, _ = process_ids(stack)
    where = button_centre(stack)
    offset, run.clock_error_ms = calibrate(stack)
    expect = int(stack.driver.eval("__load.counters()")["lastTaps"].get(f"app:{tap_app}", 0)) + 1
    started = time.monotonic()
    end = started + options.minutes * 60
    next_tap = next_sample = started
    next_report = started + 60
    while (now := time.monotonic()) < end:
        if now >= next_sample:
            sample(stack, run, now - started)
            offset, error = calibrate(stack, 3)
            run.clock_error_ms = max(run.clock_error_ms, error)
            next_sample += options.sample_every_s
        if now >= next_report:
            last = run.samples[-1]
            progress(
                f"  {now - started:5.0f} s: {len(run.taps)} taps,"
                f" p99 {pct([t.tap_ms for t in run.taps], 0.99)} ms, RSS total {last.memory['total']:.0f} MB"
            )
            next_report += 60
        if now >= next_tap:
            if tap_once(stack, run, where, expect, offset):
                expect += 1
            else:  # re-synchronise with what the app reached, and look for the button again
                seen = stack.driver.eval("__load.counters()")["lastTaps"].get(f"app:{tap_app}", 0)
                expect = int(seen) + 1
                with contextlib.suppress(Exception):
                    where = button_centre(stack)
            next_tap = max(next_tap + options.tap_every_s, time.monotonic())
        time.sleep(max(0.0, min(next_tap, next_sample, end) - time.monotonic()))
    sample(stack, run, time.monotonic() - started)
    run.seconds = time.monotonic() - started
    run.pids_end, stats = process_ids(stack)
    apps_stats = stats.get("supervisor", {}).get("apps", {})
    run.crashes = {a: int(apps_stats.get(a, {}).get("crashes", 0)) for a in order}
    plugins = stats.get("plugins", {}).get("plugins", {})
    run.plugin_restarts = {n: int(p.get("restarts", 0)) for n, p in plugins.items()}
    snap = stack.driver.snapshot()
    run.running_end = list(snap.get("running", []))
    run.shell_error = snap.get("error")
    return run


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="vh-load-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(options: Options, progress: Callable[[str], None] = say) -> Run:
    with scratch() as root, running_stack(root, live=options.live, rate_hz=options.rate_hz) as stack:
        try:
            return drive(stack, options, progress)
        except Exception:
            progress(stack.log_tail())
            raise


def print_table(figures: dict[str, Any]) -> None:
    targets = {"tap_ms_p99": TARGET_TAP_P99_MS, "rss_total_slope_mb_per_min": SLOPE_LIMIT_MB_PER_MIN}
    print(f"{'figure':28s} {'value':>10s} {'target':>10s} {'ratio':>7s}")
    for key, value in figures.items():
        if isinstance(value, dict | list):
            continue
        target = targets.get(key)
        ratio = f"{value / target:.2f}" if target and isinstance(value, int | float) else ""
        print(f"{key:28s} {value!s:>10s} {target if target else '':>10} {ratio:>7s}")
    print(f"{'memory (MB)':28s} {'start':>8s} {'end':>8s} {'max':>8s} {'MB/min':>8s}")
    for key, m in figures["memory"].items():
        print(
            f"  {key:26s} {m['start_mb']:8.1f} {m['end_mb']:8.1f} {m['max_mb']:8.1f}"
            f" {m['slope_mb_per_min']:8.3f}"
        )
    print(f"readings per second: {figures['readings_per_s']}")
    print(
        f"restarted: {figures['restarted'] or 'none'};"
        f" stalled live apps: {figures['stalled_live_apps'] or 'none'}"
    )
    print(f"samples: {figures['samples']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks load", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the memory slope")
    parser.add_argument("--tap-every", type=float, default=1.0, help="seconds between taps")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--live", type=int, default=4, help="generated live-data apps (plus the 6 samples)")
    parser.add_argument("--rate", type=float, default=5.0, help="readings per second per live app (<= 10)")
    args = parser.parse_args(argv)
    options = Options(args.minutes, args.warmup, args.tap_every, args.sample_every, args.live, args.rate)
    figures = measure(options).figures()
    if args.json:
        print(json.dumps(figures))
    else:
        print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
