"""Update figures on the head unit: installing a bundle into the cache, and rolling back.

    .venv/bin/python -m benchmarks updates [--json] [--rounds 7] [--dir DIR]

install_mb_per_s: ``BundleCache.install`` + ``activate`` of a ~2 MiB bundle (the per-package
limit) whose content is like a real app's: incompressible images (random bytes) and JS/WXML text.
It reads and hashes the file, checks every entry, unpacks while counting bytes, fsyncs every file
and folder, renames the object into place and switches the app's link. Bundle megabytes (10^6
bytes) per second, median of the rounds, each into a fresh cache on the same file system.

rollback_ms: from the ``rollback()`` call until the old version is served: the link switched and
fsynced, ``catalog.scan`` of the apps directory, and ``compile_page`` of its entry page checked
to show the old version. Median and worst of the rounds (each rollback flips between two versions).

Targets: install >= 20 MB/s, rollback <= 1000 ms. Use ``--dir`` on the file system the cache
really lives on (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vehicle_host.bundle_cache import BundleCache  # noqa: E402
from vehicle_host.bundles import archive, catalog  # noqa: E402

EXAMPLE = REPO / "examples" / "vehicle-info"
APP = "org.vehiclehost.samples.vehicleinfo"
TARGETS = {"install_mb_per_s": 20.0, "rollback_ms": 1000.0}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_app(where: Path, version: str, seed: int) -> Path:
    """The example app at ``version`` plus images and scripts of a realistic size."""
    rng = random.Random(seed)
    src = where / f"src-{version}"
    shutil.copytree(EXAMPLE, src)
    doc = json.loads((src / "app.json").read_text())
    doc["vehicle"]["version"] = version
    (src / "app.json").write_text(json.dumps(doc, indent=2))
    page = src / "pages" / "index" / "index.wxml"
    page.write_text(page.read_text() + f'\n<text class="version">v{version}</text>\n')
    images = src / "images"
    images.mkdir()
    for n in range(14):  # 14 x 128 KiB of photo-like (incompressible) data
        (images / f"photo{n}.jpg").write_bytes(rng.randbytes(128 * 1024))
    lib = src / "lib"
    lib.mkdir()
    words = [
        "vehicle",
        "speed",
        "odometer",
        "setData",
        "function",
        "return",
        "this",
        "page",
        "value",
        "dealer",
    ]
    for n in range(36):  # 20 scripts and 16 JSON data files of ~24 KiB text (scripts: 768 KB at most)
        lines = [
            f"function f{n}_{i}(a, b) {{ var {rng.choice(words)} = a + b * {rng.randint(0, 9999)}; "
            f"return '{' '.join(rng.choice(words) for _ in range(6))}'; }}"
            for i in range(200)
        ]
        text = "\n".join(lines) + "\n"
        if n < 20:
            (lib / f"module{n}.js").write_text(text)
        else:
            (lib / f"data{n}.json").write_text(json.dumps({"lines": lines}))
    return src


def build_bundles(where: Path) -> tuple[Path, Path, int]:
    v1, v2 = where / "v1.vhb", where / "v2.vhb"
    archive.pack(make_app(where, "1.0.0", 1), v1)
    result = archive.pack(make_app(where, "2.0.0", 2), v2)
    unpacked = sum(p.stat().st_size for p in (where / "src-2.0.0").rglob("*") if p.is_file())
    say(f"bundle: {result.size} bytes, {len(result.files)} files, {unpacked} bytes unpacked")
    return v1, v2, unpacked


def measure_install(where: Path, bundle: Path, rounds: int) -> list[float]:
    seconds = []
    for n in range(rounds):
        root = where / f"install-{n}"
        with BundleCache(root) as cache:
            start = time.perf_counter()
            installed = cache.install(bundle)
            cache.activate(installed.app_id, installed.digest)
            seconds.append(time.perf_counter() - start)
        shutil.rmtree(root)
    return seconds


def measure_rollback(where: Path, v1: Path, v2: Path, rounds: int) -> list[float]:
    root = where / "rollback"
    millis = []
    with BundleCache(root) as cache:
        for bundle in (v1, v2):
            installed = cache.install(bundle)
            cache.activate(installed.app_id, installed.digest)
        expected = "1.0.0"
        for _ in range(rounds):
            start = time.perf_counter()
            cache.rollback(APP)
            apps, _ = catalog.scan(cache.apps_dir)
            [app] = [a for a in apps if a.manifest.app_id == APP]
            page = catalog.compile_page(app, app.manifest.entry)
            elapsed = (time.perf_counter() - start) * 1000
            if app.manifest.version != expected or f"v{expected}" not in json.dumps(page.tree):
                raise RuntimeError(f"rollback served {app.manifest.version}, expected {expected}")
            millis.append(elapsed)
            expected = "2.0.0" if expected == "1.0.0" else "1.0.0"
    shutil.rmtree(root)
    return millis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks updates", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="repetitions of each measurement")
    parser.add_argument("--dir", help="where to build the caches (default: a temporary directory)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    where = Path(tempfile.mkdtemp(prefix="vh-updates-", dir=args.dir))
    try:
        v1, v2, unpacked = build_bundles(where)
        size = os.path.getsize(v2)
        install = measure_install(where, v2, args.rounds)
        rollback = measure_rollback(where, v1, v2, args.rounds)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    install_s = statistics.median(install)
    report: dict[str, Any] = {
        "bundle_bytes": size,
        "unpacked_bytes": unpacked,
        "install_ms_p50": round(install_s * 1000, 1),
        "install_mb_per_s": round(size / install_s / 1e6, 1),
        "unpacked_mb_per_s": round(unpacked / install_s / 1e6, 1),
        "rollback_ms": round(statistics.median(rollback), 2),
        "rollback_ms_max": round(max(rollback), 2),
    }
    report["ratios"] = {
        "install_mb_per_s_vs_target": round(report["install_mb_per_s"] / TARGETS["install_mb_per_s"], 2),
        "rollback_ms_vs_target": round(report["rollback_ms"] / TARGETS["rollback_ms"], 4),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"bundle                {size} bytes ({unpacked} unpacked)")
    print(
        f"install_mb_per_s      {report['install_mb_per_s']:>8}  (target >= {TARGETS['install_mb_per_s']:g}; "
        f"{report['install_ms_p50']} ms p50, {report['unpacked_mb_per_s']} MB/s unpacked)"
    )
    print(
        f"rollback_ms           {report['rollback_ms']:>8}  (target <= {TARGETS['rollback_ms']:g}; "
        f"worst {report['rollback_ms_max']} ms)"
    )
    print("ratios: " + ", ".join(f"{k} {v}" for k, v in report["ratios"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
