"""docs/DEVELOPER_GUIDE.md, run word for word: every ```sh block marked ``<!-- guide-test -->`` runs in
order, in one fresh directory, with the project's ``vehicle-host`` on PATH, and must exit 0.

A block marked ``<!-- guide-test background -->`` is a server the reader leaves running in a second
terminal: it is started in the background, must print its ready line (its first line) and keep
running, and is stopped after the last block. Every ```sh block carries a marker: one of those or
``<!-- guide-skip: why -->`` (a block that installs system packages or changes the reader's
interactive shell), so a new block cannot silently escape the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "DEVELOPER_GUIDE.md"
BLOCK = re.compile(r"^(?P<marker><!--[^\n]*-->\n)?```sh\n(?P<body>.*?)^```$", re.M | re.S)
RUN, BACKGROUND = "<!-- guide-test -->", "<!-- guide-test background -->"
BLOCK_TIMEOUT_S = 240
READY_TIMEOUT_S = 60


def blocks() -> list[tuple[str, str]]:
    """(marker, body) of every ```sh block, in order; marker '' when the line above is not a comment."""
    return [((m["marker"] or "").strip(), m["body"]) for m in BLOCK.finditer(GUIDE.read_text())]


def test_every_sh_block_is_marked() -> None:
    found = blocks()
    assert found, "the guide has no ```sh blocks"
    for marker, body in found:
        assert marker in (RUN, BACKGROUND) or re.fullmatch(r"<!-- guide-skip: .{10,} -->", marker), (
            f"mark this block with {RUN}, {BACKGROUND} or <!-- guide-skip: reason -->:\n{body}"
        )


def guide_env(short_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "VIRTUAL_ENV")}
    env = {k: v for k, v in env.items() if not k.startswith("VEHICLE_HOST_")}
    (short_dir / "home").mkdir()
    (short_dir / "host.toml").write_text("")  # not the machine's /etc/vehicle-host/host.toml
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(short_dir / "home"),
        XDG_RUNTIME_DIR=str(short_dir),
        VEHICLE_HOST_RUNTIME_DIR=str(short_dir / "run"),
        VEHICLE_HOST_CONFIG=str(short_dir / "host.toml"),
        PYTHONUNBUFFERED="1",
    )
    return env


def start_background(body: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", body],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stream = process.stdout
    assert stream is not None
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(READY_TIMEOUT_S)
    assert first and first[0].strip(), f"no ready line from:\n{body}"
    assert process.poll() is None, f"stopped after its first line {first[0]!r}:\n{body}"
    threading.Thread(target=stream.read, daemon=True).start()  # keep its pipe from filling up
    return process


def stop(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def test_the_guide_runs(short_dir: Path) -> None:
    work = short_dir / "guide"
    work.mkdir()
    env = guide_env(short_dir)
    marked = [(marker, body) for marker, body in blocks() if marker in (RUN, BACKGROUND)]
    assert len(marked) >= 10
    servers: list[subprocess.Popen[str]] = []
    try:
        for n, (marker, body) in enumerate(marked, 1):
            if marker == BACKGROUND:
                servers.append(start_background(body, work, env))
                continue
            try:
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", body],
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=BLOCK_TIMEOUT_S,
                    start_new_session=True,
                )
            except subprocess.TimeoutExpired as exc:
                raise AssertionError(
                    f"block {n} did not finish in {BLOCK_TIMEOUT_S} s:\n{body}\n{exc.stdout!r}"
                ) from None
            output = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            assert done.returncode == 0, f"block {n} exited {done.returncode}:\n{body}\n{output}"
            # dev exits 0 even when the app is broken: it reports on the terminal
            if "vehicle-host dev " in body:
                assert "reloaded in" in done.stdout and "error:" not in done.stdout, done.stdout
    finally:
        for server in servers:
            stop(server)
