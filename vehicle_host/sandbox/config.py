"""Typed settings for worker isolation and supervision, with documented environment overrides.

Precedence: explicit arguments > environment > the config file's ``[sandbox]`` section > defaults
(``SandboxConfig.resolve``). Environment variables (all optional):

==============================================  =======================================================
``VEHICLE_HOST_SANDBOX``                        ``0`` runs workers without bubblewrap (development only;
                                                logged loudly). Default ``1``.
``VEHICLE_HOST_CONFINE``                        ``0`` skips no_new_privs/seccomp/rlimits in the worker.
``VEHICLE_HOST_BWRAP``                          path of the bubblewrap binary (default: ``bwrap`` on PATH)
``VEHICLE_HOST_WORKER_USER``                    ``UID:GID`` workers run as when the hub is root
                                                (default ``65534:65534``, nobody)
``VEHICLE_HOST_WORKER_TIME_MS``                 QuickJS time limit per callback (default 1000)
``VEHICLE_HOST_WORKER_MEMORY_MB``               QuickJS memory limit (default 64)
``VEHICLE_HOST_WORKER_DATA_HEADROOM_MB``        RLIMIT_DATA = memory + this, for Python itself (128)
``VEHICLE_HOST_WORKER_CPU_S``                   RLIMIT_CPU: CPU seconds in a worker's life (3600)
``VEHICLE_HOST_WORKER_NOFILE``                  RLIMIT_NOFILE (64)
``VEHICLE_HOST_WORKER_NPROC``                   RLIMIT_NPROC (1024; counts every task of the worker uid)
``VEHICLE_HOST_POOL_SIZE``                      idle pre-started workers (default 1, 0 disables the pool)
``VEHICLE_HOST_HEARTBEAT_TIMEOUT_S``            a worker silent this long is killed (default 5)
``VEHICLE_HOST_START_TIMEOUT_S``                a new worker must say hello within this (default 15)
``VEHICLE_HOST_CRASH_LIMIT``                    crashes within the window that block restarts (3)
``VEHICLE_HOST_CRASH_WINDOW_S``                 that window (default 60)
``VEHICLE_HOST_BACKOFF_S`` / ``_BACKOFF_MAX_S`` first block and its cap; doubles each time (10 / 300)
``VEHICLE_HOST_WORKER_MSG_RATE``                messages/s a worker may send sustained (2000)
``VEHICLE_HOST_WORKER_MSG_BURST``               messages it may send at once (4000)
``VEHICLE_HOST_WORKER_MSG_KILL``                dropped messages within 5 s that get it killed (20000)
==============================================  =======================================================
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from vehicle_host.errors import VehicleHostError

NOBODY = (65534, 65534)


class SandboxConfigError(VehicleHostError):
    """A sandbox setting is invalid (the operator's fault)."""


@dataclass(frozen=True, slots=True)
class WorkerLimits:
    """What one worker may consume. ``time_ms`` and ``memory_mb`` also go to QuickJS in worker.start."""

    time_ms: int = 1000
    memory_mb: int = 64
    data_headroom_mb: int = 128
    cpu_s: int = 3600
    nofile: int = 64
    nproc: int = 1024
    msg_rate: int = 2000
    msg_burst: int = 4000
    msg_kill_dropped: int = 20_000

    def __post_init__(self) -> None:
        bounds = {
            "time_ms": (10, 60_000),
            "memory_mb": (8, 4096),
            "data_headroom_mb": (32, 4096),
            "cpu_s": (1, 10**7),
            "nofile": (16, 65536),
            "nproc": (16, 1 << 22),
            "msg_rate": (1, 10**7),
            "msg_burst": (1, 10**8),
            "msg_kill_dropped": (1, 10**9),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise SandboxConfigError(f"worker limit {name}={value!r} must be an integer in {low}..{high}")

    @property
    def data_bytes(self) -> int:
        """RLIMIT_DATA: the QuickJS heap plus what the Python runtime, pyzmq and its threads need."""
        return (self.memory_mb + self.data_headroom_mb) * 1024 * 1024

    def for_worker_start(self) -> dict[str, int]:
        """The ``limits`` field of ``worker.start``."""
        return {"time_ms": self.time_ms, "memory_mb": self.memory_mb}


@dataclass(frozen=True, slots=True)
class ConfineSpec:
    """What a worker applies to itself before running JS (travels as JSON on its command line)."""

    data_bytes: int
    cpu_s: int
    nofile: int
    nproc: int
    seccomp: bool = True
    uid: int | None = None  # set (with gid) when the worker starts as root and must drop to this user
    gid: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ConfineSpec:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SandboxConfigError(f"--confine is not JSON: {exc}") from exc
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - names:
            raise SandboxConfigError(f"--confine must be an object with the keys {sorted(names)}")
        for key in ("data_bytes", "cpu_s", "nofile", "nproc"):
            if type(data.get(key)) is not int or data[key] <= 0:
                raise SandboxConfigError(f"--confine: {key} must be a positive integer")
        for key in ("uid", "gid"):
            if data.get(key) is not None and (type(data[key]) is not int or data[key] < 0):
                raise SandboxConfigError(f"--confine: {key} must be a non-negative integer or null")
        return cls(**data)


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Isolation and supervision of logic workers."""

    enabled: bool = True  # bubblewrap
    confine: bool = True  # no_new_privs + seccomp + rlimits inside the worker
    bwrap: str = "bwrap"
    worker_user: tuple[int, int] = NOBODY  # used only when the hub runs as root
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    pool_size: int = 1
    heartbeat_timeout_s: float = 5.0
    start_timeout_s: float = 15.0
    crash_limit: int = 3
    crash_window_s: float = 60.0
    backoff_s: float = 10.0
    backoff_max_s: float = 300.0
    sample_interval_s: float = 1.0
    usage_log_every_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.pool_size <= 16:
            raise SandboxConfigError(f"pool size {self.pool_size} must be in 0..16")
        for name in (
            "heartbeat_timeout_s",
            "start_timeout_s",
            "crash_window_s",
            "backoff_s",
            "backoff_max_s",
        ):
            value = getattr(self, name)
            if not 0 < value <= 86400:
                raise SandboxConfigError(f"{name}={value} must be in (0, 86400] seconds")
        if self.crash_limit < 1:
            raise SandboxConfigError("crash limit must be at least 1")

    def bwrap_path(self) -> str | None:
        """The bubblewrap executable, or None when it is not installed."""
        if os.sep in self.bwrap:
            return self.bwrap if os.access(self.bwrap, os.X_OK) else None
        return shutil.which(self.bwrap)

    def confine_spec(self) -> ConfineSpec:
        drop = os.geteuid() == 0 and self.enabled
        return ConfineSpec(
            data_bytes=self.limits.data_bytes,
            cpu_s=self.limits.cpu_s,
            nofile=self.limits.nofile,
            nproc=self.limits.nproc,
            uid=self.worker_user[0] if drop else None,
            gid=self.worker_user[1] if drop else None,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> SandboxConfig:
        """Defaults, then the ``VEHICLE_HOST_*`` variables above, then ``overrides``."""
        return cls.resolve({}, env, **overrides)

    @classmethod
    def resolve(
        cls, section: Mapping[str, Any], env: Mapping[str, str] | None = None, **overrides: Any
    ) -> SandboxConfig:
        """Defaults < the config file's ``[sandbox]`` section < environment < ``overrides``.

        The section uses the field names of this class and of WorkerLimits (flat), e.g.
        ``enabled = true``, ``memory_mb = 64``, ``pool_size = 1``, ``worker_user = "65534:65534"``.
        """
        env = os.environ if env is None else env
        top = {f.name for f in fields(cls)} - {"limits"}
        limit_names = {f.name for f in fields(WorkerLimits)}
        values: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        for key, value in section.items():
            if key in limit_names:
                limits[key] = value
            elif key in top:
                values[key] = _user(str(value)) if key == "worker_user" else value
            else:
                raise SandboxConfigError(
                    f"[sandbox] {key!r} is not a setting; known: {sorted(top | limit_names)}"
                )
        for var, key in (("VEHICLE_HOST_SANDBOX", "enabled"), ("VEHICLE_HOST_CONFINE", "confine")):
            if var in env:
                values[key] = _flag(var, env[var])
        for var, key, parse, is_limit in _ENVIRONMENT:
            if env.get(var):
                (limits if is_limit else values)[key] = parse(var, env[var])
        limit_overrides = overrides.pop("limits", None)
        try:
            config = cls(**values, limits=WorkerLimits(**limits))
            if limit_overrides is not None:
                config = replace(config, limits=limit_overrides)
            return replace(config, **overrides)
        except TypeError as exc:
            raise SandboxConfigError(f"sandbox settings: {exc}") from None


def _flag(var: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SandboxConfigError(f"{var}={text!r}: use 1 or 0")


def _number(var: str, text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise SandboxConfigError(f"{var}={text!r} is not a number") from None


def _user(text: str) -> tuple[int, int]:
    uid, _, gid = text.partition(":")
    try:
        pair = (int(uid), int(gid or uid))
    except ValueError:
        raise SandboxConfigError(f"VEHICLE_HOST_WORKER_USER={text!r}: use UID:GID (numbers)") from None
    if min(pair) <= 0:
        raise SandboxConfigError("VEHICLE_HOST_WORKER_USER must not be root")
    return pair


def _text(var: str, text: str) -> str:
    return text


def _int(var: str, text: str) -> int:
    value: int = _number(var, text, int)
    return value


def _float(var: str, text: str) -> float:
    value: float = _number(var, text, float)
    return value


def _worker_user(var: str, text: str) -> tuple[int, int]:
    return _user(text)


#: ``VEHICLE_HOST_*`` variables (a set, non-empty one counts) -> (field, parser, a WorkerLimits field?)
_ENVIRONMENT: tuple[tuple[str, str, Callable[[str, str], Any], bool], ...] = (
    ("VEHICLE_HOST_BWRAP", "bwrap", _text, False),
    ("VEHICLE_HOST_WORKER_USER", "worker_user", _worker_user, False),
    ("VEHICLE_HOST_WORKER_TIME_MS", "time_ms", _int, True),
    ("VEHICLE_HOST_WORKER_MEMORY_MB", "memory_mb", _int, True),
    ("VEHICLE_HOST_WORKER_DATA_HEADROOM_MB", "data_headroom_mb", _int, True),
    ("VEHICLE_HOST_WORKER_CPU_S", "cpu_s", _int, True),
    ("VEHICLE_HOST_WORKER_NOFILE", "nofile", _int, True),
    ("VEHICLE_HOST_WORKER_NPROC", "nproc", _int, True),
    ("VEHICLE_HOST_WORKER_MSG_RATE", "msg_rate", _int, True),
    ("VEHICLE_HOST_WORKER_MSG_BURST", "msg_burst", _int, True),
    ("VEHICLE_HOST_WORKER_MSG_KILL", "msg_kill_dropped", _int, True),
    ("VEHICLE_HOST_POOL_SIZE", "pool_size", _int, False),
    ("VEHICLE_HOST_HEARTBEAT_TIMEOUT_S", "heartbeat_timeout_s", _float, False),
    ("VEHICLE_HOST_START_TIMEOUT_S", "start_timeout_s", _float, False),
    ("VEHICLE_HOST_CRASH_LIMIT", "crash_limit", _int, False),
    ("VEHICLE_HOST_CRASH_WINDOW_S", "crash_window_s", _float, False),
    ("VEHICLE_HOST_BACKOFF_S", "backoff_s", _float, False),
    ("VEHICLE_HOST_BACKOFF_MAX_S", "backoff_max_s", _float, False),
)
