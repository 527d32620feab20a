"""A virtual X display for headless machines (the tour, CI, end-to-end tests)."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time

from vehicle_host.errors import DeviceError

START_TIMEOUT_S = 15.0


class VirtualDisplay:
    """``Xvfb`` on a free display number (chosen by Xvfb itself through -displayfd)."""

    def __init__(self, width: int = 800, height: int = 480) -> None:
        self.width = width
        self.height = height
        self.display = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        if shutil.which("Xvfb") is None:
            raise DeviceError("no display and no Xvfb: install the 'xvfb' package or set DISPLAY")
        read_fd, write_fd = os.pipe()
        self._process = subprocess.Popen(
            [
                "Xvfb",
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                f"{self.width}x{self.height}x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        deadline = time.monotonic() + START_TIMEOUT_S
        number = b""
        with os.fdopen(read_fd, "rb") as pipe:
            while not number.endswith(b"\n"):
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.stop()
                    raise DeviceError("Xvfb did not start")
                ready, _, _ = select.select([pipe], [], [], 0.2)
                if not ready:
                    continue
                chunk = os.read(read_fd, 16)
                if not chunk:
                    break
                number += chunk
        if not number.strip().isdigit():
            self.stop()
            raise DeviceError("Xvfb did not report its display number")
        self.display = f":{number.decode().strip()}"
        return self.display

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> VirtualDisplay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
