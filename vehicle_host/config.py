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

import json
import os
import stat
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vehicle_host.errors import VehicleHostError

MAX_CONFIG_BYTES = 256 * 1024
DEFAULT_CONFIG_FILE = Path("/etc/vehicle-host/host.toml")

SECTIONS = frozenset({"host", "plugins", "sandbox"})
HOST_KEYS = frozenset({"apps", "state", "dealer_apps_need_role"})
MAX_PATH_CHARS = 4096
#: a plugin's table goes to its process as one command-line argument (Linux allows 128 KiB)
MAX_PLUGIN_SECTION_BYTES = 64 * 1024
MAX_SECONDS = 86400

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
    """Read the TOML config file; a missing default file is fine, a broken one is an error.

    The file must be a regular file of at most ``MAX_CONFIG_BYTES`` bytes of UTF-8 TOML: a
    directory, a FIFO or a device (``/dev/zero``) is refused before anything is read."""
    explicit = path is not None
    path = path or DEFAULT_CONFIG_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        if explicit:
            raise VehicleHostError(f"config file {path} does not exist") from None
        return {}
    except OSError as exc:
        raise VehicleHostError(f"config file {path}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise VehicleHostError(f"config file {path} is a directory; give the TOML file itself")
        raise VehicleHostError(f"config file {path} is not a regular file (a device, FIFO or socket)")
    with os.fdopen(fd, "rb") as f:
        try:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise VehicleHostError(f"config file {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise VehicleHostError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VehicleHostError(
            f"config file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VehicleHostError(f"config file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise VehicleHostError(f"config file {path} nests arrays or tables too deeply") from None


def _section(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise VehicleHostError(f"config: [{name}] must be a table")
    return value


def _known_keys(section: Mapping[str, Any], where: str, known: frozenset[str]) -> None:
    for key in section:
        if key not in known:
            raise VehicleHostError(
                f"config: {where}{key!r} is not a setting; known: {', '.join(sorted(known))}"
            )


def _path_value(section: Mapping[str, Any], key: str) -> str | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\0" in value or len(value) > MAX_PATH_CHARS:
        raise VehicleHostError(
            f"config: host.{key} must be a path: a non-empty string without NUL of at most "
            f"{MAX_PATH_CHARS} characters (got {_show(value)})"
        )
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plugin_names(doc_plugins: dict[str, Any]) -> tuple[list[str] | None, dict[str, dict[str, Any]]]:
    """``enabled`` and the per-plugin tables of ``[plugins]``, each checked against the installed plugins."""
    from vehicle_host.plugins import registry

    installed = registry.names()

    def check_name(name: str, where: str) -> None:
        if name not in installed:
            raise VehicleHostError(
                f"config: {where} names {name[:64]!r}, which is not an installed plugin "
                f"(installed: {', '.join(installed) or 'none'}); fix the name"
            )

    enabled = doc_plugins.pop("enabled", None)
    if enabled is not None:
        if not isinstance(enabled, list) or not all(isinstance(n, str) for n in enabled):
            raise VehicleHostError("config: plugins.enabled must be a list of plugin names")
        for name in enabled:
            check_name(name, "plugins.enabled")
    sections: dict[str, dict[str, Any]] = {}
    for name, section in doc_plugins.items():
        if not isinstance(section, dict):
            raise VehicleHostError(f"config: [plugins.{name}] must be a table")
        check_name(name, f"[plugins.{name[:64]}]")
        try:
            size = len(json.dumps(section))
        except (TypeError, ValueError) as exc:
            raise VehicleHostError(
                f"config: [plugins.{name}] holds a value JSON cannot carry ({exc}); "
                "write dates and times as strings"
            ) from None
        if size > MAX_PLUGIN_SECTION_BYTES:
            raise VehicleHostError(
                f"config: [plugins.{name}] is {size} bytes as JSON; a plugin's settings may hold at most "
                f"{MAX_PLUGIN_SECTION_BYTES} (put large data in a file and name it here)"
            )
        sections[name] = dict(section)
    return enabled, sections


def _sandbox(section: dict[str, Any]) -> dict[str, Any]:
    """The ``[sandbox]`` table with every value's type and range checked now, naming the key."""
    from vehicle_host.sandbox.config import SandboxConfig, WorkerLimits

    kinds = {f.name: str(f.type) for f in fields(SandboxConfig) if f.name != "limits"}
    kinds.update({f.name: "int" for f in fields(WorkerLimits)})
    _known_keys(section, "sandbox.", frozenset(kinds))
    for key, value in section.items():
        kind = kinds[key]
        where = f"config: sandbox.{key}"
        if kind == "bool" and not isinstance(value, bool):
            raise VehicleHostError(f"{where} must be true or false (got {_show(value)})")
        if kind == "int" and type(value) is not int:
            raise VehicleHostError(f"{where} must be an integer (got {_show(value)})")
        if kind == "float" and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 < value <= MAX_SECONDS  # also refuses nan
        ):
            raise VehicleHostError(
                f"{where} must be a number of seconds in (0, {MAX_SECONDS}] (got {_show(value)})"
            )
        if kind == "str" and (not isinstance(value, str) or not value or "\0" in value):
            raise VehicleHostError(f"{where} must be a non-empty string (got {_show(value)})")
        if key == "worker_user" and not (isinstance(value, str) or type(value) is int):
            raise VehicleHostError(f'{where} must be "UID:GID" (got {_show(value)})')
    try:
        SandboxConfig.resolve(section, env={})  # ranges, now rather than when the hub starts
    except VehicleHostError as exc:
        raise VehicleHostError(f"config: [sandbox] {exc}") from None
    return section


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
    _known_keys(doc, "", SECTIONS)
    host = _section(doc, "host")
    _known_keys(host, "host.", HOST_KEYS)
    enabled, sections = _plugin_names(_section(doc, "plugins"))
    for name, overrides in (plugin_overrides or {}).items():
        sections.setdefault(name, {}).update(overrides)
    env_enabled = env.get("VEHICLE_HOST_PLUGINS")
    if env_enabled is not None:
        enabled = [n.strip() for n in env_enabled.split(",") if n.strip()]
    return HostConfig(
        apps_dir=Path(
            apps_dir
            or env.get("VEHICLE_HOST_APPS")
            or _path_value(host, "apps")
            or "/var/lib/vehicle-host/apps"
        ),
        runtime_dir=Path(runtime_dir or env.get("VEHICLE_HOST_RUNTIME_DIR") or default_runtime_dir()),
        state_dir=Path(
            state_dir
            or env.get("VEHICLE_HOST_STATE_DIR")
            or _path_value(host, "state")
            or "/var/lib/vehicle-host/state"
        ),
        plugins=sections,
        enabled_plugins=tuple(enabled) if enabled is not None else None,
        sandbox=_sandbox(_section(doc, "sandbox")),
        dealer_apps_need_role=_flag(host, "dealer_apps_need_role"),
    )


def _flag(section: Mapping[str, Any], key: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise VehicleHostError(f"config: host.{key} must be true or false")
    return value
