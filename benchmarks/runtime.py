"""Mini-app runtime figures, measured in the real pywebview window under Xvfb.

    .venv/bin/python -m benchmarks runtime [--json] [--launches 15] [--taps 100] [--calls 20000]

- cold launch: tile -> first paint with no pre-started worker (the hub starts a process);
- warm launch: the same with a pre-started (pooled) worker;
- round trip: a real X click on a button in the page's sandboxed iframe -> shell -> hub -> worker
  handler -> setData -> hub -> shell -> iframe patch -> painted, timed in the shell's own clock from
  the renderer's event message to the renderer's next "painted" message;
- setData/s: a page handler makes N setData calls over timer ticks; calls per second until the
  renderer painted the last value;
- worker memory: the worker process's resident set (RSS) after the flood, and the part of it that
  is its own (USS; shared libraries are counted once for all workers), from /proc.

Times come from ``performance.now()`` in the shell's top frame, which sees every message the page
frames post. Targets (2-core machine): warm <= 150 ms p50, cold <= 400 ms p50, round trip <= 5 ms
p50, worker RSS <= 20 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vehicle_host.hub.client import HubClient  # noqa: E402
from vehicle_host.shell.control import ENV as CONTROL_ENV  # noqa: E402
from vehicle_host.shell.driver import ShellDriver  # noqa: E402
from vehicle_host.shell.xvfb import VirtualDisplay  # noqa: E402

APP = "org.vehiclehost.bench.runtime"
TARGETS = {
    "warm_launch_ms_p50": 150.0,
    "cold_launch_ms_p50": 400.0,
    "roundtrip_ms_p50": 5.0,
    "worker_rss_mb": 20.0,
}
INSTRUMENT = """
(function () {
  if (window.__bench) return;
  window.__bench = { marks: [] };
  window.addEventListener('message', function (e) {
    var m = e.data;
    if (m && (m.type === 'painted' || m.type === 'event')) {
      window.__bench.marks.push([m.type, performance.now()]);
    }
  }, true);
})();
"""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Host:
    """Xvfb + hub + shell with its control channel, for one pool size."""

    def __init__(self, root: Path, display: str, pool_size: int) -> None:
        self.root = root
        self.run_dir = root / f"run{pool_size}"
        env = {**os.environ, "DISPLAY": display, "VEHICLE_HOST_POOL_SIZE": str(pool_size)}
        python = [sys.executable, "-m", "vehicle_host"]
        common = ["--runtime-dir", str(self.run_dir), "--log-level", "WARNING"]
        self.hub = subprocess.Popen(
            [*python, "hub", "--apps", str(root / "apps"), "--state-dir", str(root / "state"), *common],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(root / f"hub{pool_size}.log").open("wb"),
            start_new_session=True,
        )
        self._wait(self.run_dir / "hub.sock", self.hub)
        control = self.run_dir / "control.sock"
        self.shell = subprocess.Popen(
            [*python, "shell", *common],
            env={**env, CONTROL_ENV: f"ipc://{control}"},
            stdout=subprocess.DEVNULL,
            stderr=(root / f"shell{pool_size}.log").open("wb"),
            start_new_session=True,
        )
        self._wait(control, self.shell)
        self.driver = ShellDriver(f"ipc://{control}", display, timeout=30)
        self.driver.wait_for(lambda s: bool(s.get("online")) and s.get("apps", 0) > 0, timeout=30)
        self.driver.eval(INSTRUMENT)

    @staticmethod
    def _wait(path: Path, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while not path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"could not start {process.args}")
            time.sleep(0.05)

    def hub_request(self, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
        async def ask() -> dict[str, Any]:
            client = HubClient(f"ipc://{self.run_dir / 'hub.sock'}", role="client")
            await client.connect()
            try:
                if type_ == "hub.stats":
                    return dict((await client.request("hub.stats", "hub", {})).payload["stats"])
                client.send(type_, payload.pop("_target", "hub"), payload)
                await asyncio.sleep(0.05)
                return {}
            finally:
                await client.close()

        return asyncio.run(ask())

    def marks_since(self, t0: float) -> list[tuple[str, float]]:
        marks = self.driver.eval("window.__bench.marks")
        return [(kind, at) for kind, at in marks if at >= t0]

    def launch_ms(self) -> float:
        t0 = self.driver.eval(
            f"(function () {{ var t = performance.now(); vh.launch({json.dumps(APP)}); return t; }})()"
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            painted = [at for kind, at in self.marks_since(t0) if kind == "painted"]
            if painted:
                return float(painted[0] - t0)
            time.sleep(0.01)
        raise SystemExit("the benchmark app did not paint within 30 s")

    def close_app(self) -> None:
        self.hub_request("app.close", {"app_id": APP})
        self.driver.eval("vh.home()")
        self.driver.wait_for(lambda s: s.get("view") == "launcher")

    def worker_pid(self) -> int | None:
        stats = self.hub_request("hub.stats", {})
        workers = stats.get("workers", {})
        entry = workers.get(APP)
        if isinstance(entry, dict):
            return int(entry["pid"])
        return int(entry) if entry is not None else None

    def stop(self) -> None:
        self.driver.close()
        for process in (self.shell, self.hub):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def launches(host: Host, count: int, settle_s: float) -> list[float]:
    samples = []
    for _ in range(count):
        time.sleep(settle_s)  # lets the pool refill, as between two real launches
        samples.append(host.launch_ms())
        host.close_app()
    return samples


def roundtrips(host: Host, taps: int) -> list[float]:
    host.launch_ms()
    host.driver.inspect()
    samples = []
    for _ in range(taps):
        t0 = host.driver.eval("performance.now()")
        host.driver.tap_page_node("tap")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            marks = host.marks_since(t0)
            events = [at for kind, at in marks if kind == "event"]
            if events:
                painted = [at for kind, at in marks if kind == "painted" and at > events[0]]
                if painted:
                    samples.append(painted[0] - events[0])
                    break
            time.sleep(0.005)
    return samples


def flood(host: Host, calls: int, per_tick: int) -> float:
    page_id = host.driver.snapshot()["pageId"]
    t0 = host.driver.eval("performance.now()")
    host.hub_request(
        "page.event",
        {
            "_target": f"app:{APP}",
            "page_id": page_id,
            "handler": "onFlood",
            "event": {"type": "flood", "detail": {"calls": calls, "perTick": per_tick}},
        },
    )
    want = f"{calls} / {calls}"
    deadline = time.monotonic() + 120
    while want not in host.driver.inspect()["text"]:
        if time.monotonic() > deadline:
            raise SystemExit("the setData flood did not finish within 120 s")
        time.sleep(0.1)
    last_paint = max(at for kind, at in host.marks_since(t0) if kind == "painted")
    return calls / ((last_paint - t0) / 1000)


def memory_mb(pid: int | None) -> dict[str, float]:
    """The worker's resident size, and the part of it no other process shares (what one more
    running app costs): from /proc/<pid>/smaps_rollup."""
    if pid is None:
        return {"rss": float("nan"), "uss": float("nan"), "pss": float("nan")}
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0])
    uss = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"rss": fields["Rss"] / 1024, "uss": uss / 1024, "pss": fields["Pss"] / 1024}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="vh-rb-"))
    try:
        shutil.copytree(REPO / "benchmarks" / "apps", root / "apps")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with scratch() as root, VirtualDisplay(800, 480) as display:
        say("cold launches (no pre-started worker)...")
        cold_host = Host(root, display.display, pool_size=0)
        try:
            cold = launches(cold_host, args.launches, settle_s=0.3)
        finally:
            cold_host.stop()
        say("warm launches (pool of 1), taps, setData flood...")
        host = Host(root, display.display, pool_size=1)
        try:
            warm = launches(host, args.launches, settle_s=1.0)
            taps = roundtrips(host, args.taps)
            per_s = flood(host, args.calls, args.per_tick)
            memory = memory_mb(host.worker_pid())
        finally:
            host.stop()
    return {
        "warm_launch_ms_p50": round(statistics.median(warm), 1),
        "warm_launch_ms_p90": round(percentile(warm, 0.9), 1),
        "cold_launch_ms_p50": round(statistics.median(cold), 1),
        "cold_launch_ms_p90": round(percentile(cold, 0.9), 1),
        "roundtrip_ms_p50": round(statistics.median(taps), 2),
        "roundtrip_ms_p99": round(percentile(taps, 0.99), 2),
        "setdata_per_s": round(per_s),
        "worker_rss_mb": round(memory["rss"], 1),
        "worker_uss_mb": round(memory["uss"], 1),
        "worker_pss_mb": round(memory["pss"], 1),
        "samples": {"launches": args.launches, "taps": len(taps), "setdata_calls": args.calls},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks runtime", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--launches", type=int, default=15)
    parser.add_argument("--taps", type=int, default=100)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--per-tick", type=int, default=100)
    args = parser.parse_args(argv)
    figures = measure(args)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"{'figure':24s} {'value':>10s} {'target':>10s} {'ratio':>7s}")
    for key, value in figures.items():
        if key == "samples":
            continue
        target = TARGETS.get(key)
        ratio = f"{value / target:.2f}" if target else ""
        print(f"{key:24s} {value:>10} {target if target else '':>10} {ratio:>7s}")
    print(f"samples: {figures['samples']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
