"""``vehicle-host dev``: a real headless window (Xvfb), hub, shell and simulator; a broken template is
reported with file and line on the terminal and in the window, and the fixed app reloads."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vehicle_host.devkit import scaffold
from vehicle_host.shell.driver import ShellDriver

pytestmark = pytest.mark.integration


class Terminal:
    """The dev command's output, line by line, read beside the test."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stream = process.stdout

        def pump() -> None:
            for line in stream:
                self.lines.put(line)

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} on the terminal; saw:\n{''.join(self.seen)}")


def test_dev_reports_a_broken_template_and_reloads_the_fixed_app(short_dir: Path) -> None:
    app = scaffold.scaffold("hello", short_dir / "hello", app_id="org.test.hello")
    runtime = short_dir / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vehicle_host.devkit",
            "dev",
            str(app),
            "--runtime-dir",
            str(runtime),
            "--state-dir",
            str(short_dir / "state"),
            "--exit-after",
            "90",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    terminal = Terminal(process)
    driver: ShellDriver | None = None
    try:
        assert "reloaded in" in terminal.wait_for("opened", timeout=45)
        terminal.wait_for("watching 12 files")
        driver = ShellDriver(f"ipc://{runtime / 'shell-control.sock'}", "")
        assert "Not tapped yet" in driver.inspect()["text"]

        wxml = app / "pages/index/index.wxml"
        good = wxml.read_text()
        wxml.write_text('<view class="card">\n  <text>{{count</text>\n</view>\n')
        line = terminal.wait_for("changed: pages/index/index.wxml")
        assert "error: pages/index/index.wxml:2:" in line
        snap = driver.wait_for(lambda s: s.get("error") is not None, what="the error screen")
        assert "pages/index/index.wxml:2:" in snap["error"]["text"]

        wxml.write_text(good.replace("{{label}}", "Edited: {{label}}"))
        assert "reloaded in" in terminal.wait_for("changed: pages/index/index.wxml")
        snap = driver.snapshot()
        assert snap["error"] is None and snap["appId"] == "org.test.hello" and snap["painted"] > 0
        assert "Edited: Not tapped yet" in driver.inspect()["text"]
    finally:
        if driver is not None:
            driver.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, "".join(terminal.seen)
