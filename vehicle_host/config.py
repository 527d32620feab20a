"""Typed host configuration. Precedence: command line > environment > defaults."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: ipc:// socket paths must fit in sockaddr_un (108 bytes with the terminator)
MAX_RUNTIME_DIR_CHARS = 80


@dataclass(frozen=True, slots=True)
class HostConfig:
    apps_dir: Path
    runtime_dir: Path

    def __post_init__(self) -> None:
        if len(str(self.runtime_dir)) > MAX_RUNTIME_DIR_CHARS:
            from vehicle_host.errors import VehicleHostError

            raise VehicleHostError(
                f"runtime directory {self.runtime_dir} is longer than {MAX_RUNTIME_DIR_CHARS} characters; "
                "socket paths would not fit. Choose a shorter --runtime-dir."
            )

    @property
    def hub_endpoint(self) -> str:
        return f"ipc://{self.runtime_dir / 'hub.sock'}"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (0700) or check that it is ours and closed to others: sockets live there."""
    from vehicle_host.errors import VehicleHostError

    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise VehicleHostError(
            f"runtime directory {path} must belong to this user and be closed to others (mode 0700); "
            "remove it or choose another --runtime-dir"
        )
    return path


def default_runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"vehicle-host-{os.getuid()}"


def resolve(apps_dir: str | None = None, runtime_dir: str | None = None) -> HostConfig:
    env = os.environ
    return HostConfig(
        apps_dir=Path(apps_dir or env.get("VEHICLE_HOST_APPS") or "/var/lib/vehicle-host/apps"),
        runtime_dir=Path(runtime_dir or env.get("VEHICLE_HOST_RUNTIME_DIR") or default_runtime_dir()),
    )
