"""Killing the installer at every write step leaves the old or the new version, whole.

A child process installs and activates version 2 over an active version 1 while a wrapper counts
its ``os.fsync``, ``os.replace`` and ``os.rename`` calls and SIGKILLs the process at call N, before
or after the call runs. After each kill a fresh cache on the same root must serve version 1 or 2
with every file intact, and installing again must succeed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vehicle_host.bundle_cache import BundleCache
from vehicle_host.bundles import archive, catalog

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "vehicle-info"
APP = "org.vehiclehost.samples.vehicleinfo"

CHILD = """
import os, signal, sys
from pathlib import Path

root, bundle, kill_at, when = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
calls = 0

def wrap(real):
    def step(*args, **kwargs):
        global calls
        calls += 1
        if calls == kill_at and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if calls == kill_at and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return step

os.fsync, os.replace, os.rename = wrap(os.fsync), wrap(os.replace), wrap(os.rename)

from vehicle_host.bundle_cache import BundleCache

cache = BundleCache(root)
installed = cache.install(bundle)
cache.activate(installed.app_id, installed.digest)
print(calls)
"""


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def version_source(tmp: Path, version: str, extra_files: int) -> Path:
    src = tmp / f"src-{version}"
    shutil.copytree(EXAMPLE, src)
    doc = json.loads((src / "app.json").read_text())
    doc["vehicle"]["version"] = version
    (src / "app.json").write_text(json.dumps(doc))
    for n in range(extra_files):
        (src / "assets" / f"d{n}").mkdir(parents=True, exist_ok=True)
        (src / "assets" / f"d{n}" / f"data{n}.txt").write_text(f"{version} {n}\n" * 200)
    return src


def run_child(
    script: Path, root: Path, bundle: Path, kill_at: int, when: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), str(root), str(bundle), str(kill_at), when],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_a_kill_at_any_write_step_leaves_the_old_or_the_new_version(tmp_path: Path) -> None:
    sources = {"1.0.0": version_source(tmp_path, "1.0.0", 0), "2.0.0": version_source(tmp_path, "2.0.0", 2)}
    expected = {version: tree(src) for version, src in sources.items()}
    v1, v2 = tmp_path / "v1.vhb", tmp_path / "v2.vhb"
    archive.pack(sources["1.0.0"], v1)
    archive.pack(sources["2.0.0"], v2)
    base = tmp_path / "base"
    with BundleCache(base) as cache:
        old = cache.install(v1)
        cache.activate(APP, old.digest)
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    full = run_child(script, tmp_path / "dry", v2, 0, "never")
    assert full.returncode == 0, full.stderr
    total = int(full.stdout)
    assert total == 19  # 9 files, 6 folders, the object rename, the link replace and their folder syncs

    seen = set()
    for kill_at in range(1, total + 1):
        for when in ("before", "after"):
            root = tmp_path / f"root-{kill_at}-{when}"
            shutil.copytree(base, root, symlinks=True)
            child = run_child(script, root, v2, kill_at, when)
            assert child.returncode == -9, f"step {kill_at} {when}: {child.returncode} {child.stderr}"

            with BundleCache(root) as cache:
                apps, broken = catalog.scan(cache.apps_dir)
                assert broken == [], f"step {kill_at} {when}"
                [app] = apps
                version = app.manifest.version
                seen.add(version)
                assert tree(app.path) == expected[version], f"step {kill_at} {when}: files of {version}"
                active = cache.active(APP)
                assert active is not None and active.version == version
                assert catalog.compile_page(app, app.manifest.entry).tree

                again = cache.install(v2)
                cache.activate(APP, again.digest)
                [app] = catalog.scan(cache.apps_dir)[0]
                assert app.manifest.version == "2.0.0"
                assert tree(app.path) == expected["2.0.0"]
                assert cache.rollback(APP).version == "1.0.0"
                assert not [p for p in (root / "objects").iterdir() if p.name.startswith(".")]
            shutil.rmtree(root)
    assert seen == {"1.0.0", "2.0.0"}
