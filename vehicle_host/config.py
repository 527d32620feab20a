"""Typed host configuration. Precedence: command line > environment > config file > defaults.

The config file is TOML (``--config`` or ``$VEHICLE_HOST_CONFIG``, else ``/etc/vehicle-host/host.toml``
when present)::

    [host]
    apps = "/var/lib/vehicle-host/apps"
    state = "/var/lib/vehicle-host/state"

    [plugins]
    enabled = ["storage", "network", "can_diagnostics"]   # default: every registered plugin

    [plugins.can_diagnostics]
    interface = "socketcan"
    channel = "can0"
    dbc = "/etc/vehicle-host/vehicle.dbc"

    [sandbox]
    enabled = true
    memory_mb = 64
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vehicle_host.errors import VehicleHostError

MAX_CONFIG_BYTES = 256 * 1024
DEFAULT_CONFIG_FILE = Path("/etc/vehicle-host/host.toml")

#: ipc:// socket paths must fit in sockaddr_un (108 bytes with the terminator)
MAX_RUNTIME_DIR_CHARS = 80


@dataclass(frozen=True, slots=True)
class HostConfig:
    apps_dir: Path
    runtime_dir: Path
    state_dir: Path = Path("/var/lib/vehicle-host/state")
    #: plugin name -> its config section; ``enabled_plugins`` None means every registered plugin
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    enabled_plugins: tuple[str, ...] | None = None
    sandbox: Mapping[str, Any] = field(default_factory=dict)
    #: dealer-group apps start only while the profile plugin reports an unlocked dealer role
    dealer_apps_need_role: bool = False

    def __post_init__(self) -> None:
        if len(str(self.runtime_dir)) > MAX_RUNTIME_DIR_CHARS:
            raise VehicleHostError(
                f"runtime directory {self.runtime_dir} is longer than {MAX_RUNTIME_DIR_CHARS} characters; "
                "socket paths would not fit. Choose a shorter --runtime-dir."
            )

    @property
    def hub_endpoint(self) -> str:
        return f"ipc://{self.runtime_dir / 'hub.sock'}"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (0700) or check that it is ours and closed to others: sockets live there."""
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


def load_file(path: Path | None) -> dict[str, Any]:
    """Read the TOML config file; a missing default file is fine, a broken one is an error."""
    explicit = path is not None
    path = path or DEFAULT_CONFIG_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise VehicleHostError(f"config file {path} does not exist") from None
        return {}
    except OSError as exc:
        raise VehicleHostError(f"config file {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise VehicleHostError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise VehicleHostError(f"config file {path} is not valid TOML: {exc}") from None


def _section(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise VehicleHostError(f"config: [{name}] must be a table")
    return value


def resolve(
    apps_dir: str | None = None,
    runtime_dir: str | None = None,
    *,
    state_dir: str | None = None,
    config_file: str | None = None,
    plugin_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> HostConfig:
    env = os.environ
    chosen = config_file or env.get("VEHICLE_HOST_CONFIG")
    doc = load_file(Path(chosen) if chosen else None)
    host = _section(doc, "host")
    plugins = _section(doc, "plugins")
    enabled = plugins.pop("enabled", None)
    if enabled is not None and (
        not isinstance(enabled, list) or not all(isinstance(n, str) for n in enabled)
    ):
        raise VehicleHostError("config: plugins.enabled must be a list of plugin names")
    sections: dict[str, dict[str, Any]] = {}
    for name, section in plugins.items():
        if not isinstance(section, dict):
            raise VehicleHostError(f"config: [plugins.{name}] must be a table")
        sections[name] = dict(section)
    for name, overrides in (plugin_overrides or {}).items():
        sections.setdefault(name, {}).update(overrides)
    env_enabled = env.get("VEHICLE_HOST_PLUGINS")
    if env_enabled is not None:
        enabled = [n.strip() for n in env_enabled.split(",") if n.strip()]
    return HostConfig(
        apps_dir=Path(
            apps_dir or env.get("VEHICLE_HOST_APPS") or host.get("apps") or "/var/lib/vehicle-host/apps"
        ),
        runtime_dir=Path(runtime_dir or env.get("VEHICLE_HOST_RUNTIME_DIR") or default_runtime_dir()),
        state_dir=Path(
            state_dir
            or env.get("VEHICLE_HOST_STATE_DIR")
            or host.get("state")
            or "/var/lib/vehicle-host/state"
        ),
        plugins=sections,
        enabled_plugins=tuple(enabled) if enabled is not None else None,
        sandbox=_section(doc, "sandbox"),
        dealer_apps_need_role=_flag(host, "dealer_apps_need_role"),
    )


def _flag(section: Mapping[str, Any], key: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise VehicleHostError(f"config: host.{key} must be true or false")
    return value
