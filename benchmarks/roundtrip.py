"""Prints wire codec costs and the tap -> setData round trip through a real hub and worker.

    .venv/bin/python benchmarks/roundtrip.py [--taps 500]

The round trip is what a driver's tap costs before the shell can repaint: shell -> hub -> worker
(JS handler, setData) -> hub -> shell, over ipc ZeroMQ sockets with CBOR envelopes.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vehicle_host.hub.client import HubClient
from vehicle_host.wire import Envelope, decode, encode

REPO = Path(__file__).resolve().parent.parent
APP = "org.vehiclehost.samples.vehicleinfo"
TARGET_P99_MS = 20.0  # budget for the messaging part of a tap (a display frame is 16.7 ms)


def codec() -> None:
    small = Envelope(
        "page.event",
        1,
        "shell",
        f"app:{APP}",
        {"page_id": 1, "handler": "onTap", "event": {"type": "tap", "detail": {"x": 1}}},
    )
    big = Envelope(
        "page.setData",
        2,
        f"app:{APP}",
        "shell",
        {"page_id": 1, "diff": {f"list[{i}]": {"name": f"item {i}", "ok": i % 2 == 0} for i in range(500)}},
    )
    for name, env in (("small event", small), ("500-item setData", big)):
        data = encode(env)
        n = 2000 if name == "small event" else 100
        t0 = time.perf_counter()
        for _ in range(n):
            encode(env)
        t1 = time.perf_counter()
        for _ in range(n):
            decode(data)
        t2 = time.perf_counter()
        print(
            f"codec {name:18s} {len(data):7d} B  encode {(t1 - t0) / n * 1e6:8.1f} us"
            f"  decode {(t2 - t1) / n * 1e6:8.1f} us"
        )


async def roundtrip(endpoint: str, taps: int) -> list[float]:
    shell = HubClient(endpoint, role="shell")
    await shell.connect()
    shell.send("app.launch", "hub", {"app_id": APP})
    opened = await shell.expect("page.open", app_id=APP)
    page_id = opened.payload["page_id"]
    await shell.expect("page.render", timeout=20, page_id=page_id)
    await shell.expect("page.setData", page_id=page_id)
    samples = []
    for _ in range(taps):
        t0 = time.perf_counter()
        shell.send("page.event", f"app:{APP}", {"page_id": page_id, "handler": "onTapCount", "event": {}})
        await shell.expect("page.setData", page_id=page_id)
        samples.append((time.perf_counter() - t0) * 1000)
    await shell.close()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--taps", type=int, default=500)
    args = parser.parse_args(argv)
    codec()
    root = Path(tempfile.mkdtemp(prefix="vh-bench-"))
    hub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vehicle_host",
            "hub",
            "--apps",
            str(REPO / "examples"),
            "--runtime-dir",
            str(root / "run"),
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        while not (root / "run" / "hub.sock").exists():
            time.sleep(0.05)
        t0 = time.perf_counter()
        samples = asyncio.run(roundtrip(f"ipc://{root / 'run' / 'hub.sock'}", args.taps))
        total = time.perf_counter() - t0
        samples.sort()
        p50 = statistics.median(samples)
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(
            f"tap round trip over {len(samples)} taps: p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
            f"max {samples[-1]:.2f} ms  (launch + taps {total:.1f} s)"
        )
        print(
            f"p99 / budget {TARGET_P99_MS:.0f} ms = {p99 / TARGET_P99_MS:.2f} "
            f"({'within' if p99 <= TARGET_P99_MS else 'OVER'} budget)"
        )
    finally:
        hub.terminate()
        hub.wait(10)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
