"""The plugin contract: what a plugin declares (as data) and the one class it subclasses.

A plugin is a trusted Python service in its own process. It declares each method it offers with the
permission the calling mini-app needs, whether the user must consent, whether the call is allowed
while driving, whether it streams, and JSON Schemas for arguments and results. The hub's gateway
reads these declarations as plain data (``Method.to_wire()``); it special-cases no plugin.

A plugin subclasses :class:`Plugin` and marks its handlers with :func:`method`::

    class Vehicle(Plugin):
        name = "vehicle"
        version = "1.0.0"

        @method("vehicle.readVin", permission="vehicle.diagnostics.read",
                args={"type": "object", "properties": {}}, result={"type": "object"})
        async def read_vin(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
            ...

        @method("vehicle.watch", permission="vehicle.signals", streams=True, rate_hz=10)
        async def watch(self, args, call) -> AsyncIterator[dict[str, Any]]:
            while True:
                yield {...}

Handlers raise :class:`PluginError` subclasses (or ``VehicleHostError``) for failures the caller
should see; any other exception is reported as ``failed`` without the plugin process going down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from vehicle_host.errors import VehicleHostError

#: Method names are "namespace.name"; the namespace becomes fc.<namespace> in mini-apps.
DRIVING_RULES = ("allowed", "parked_only")
OPEN_OBJECT: Mapping[str, Any] = {"type": "object"}
#: The ``error.code`` values of the runtime protocol; any other code travels as ``failed``.
ERROR_CODES = frozenset(
    {
        "denied",
        "unknown_method",
        "invalid_args",
        "unavailable",
        "timeout",
        "device",
        "failed",
        "cancelled",
        "busy",
    }
)


class PluginError(VehicleHostError):
    """A failure the calling mini-app sees as ``fail({errMsg, code})``."""

    code = "failed"


class DeviceUnavailable(PluginError):
    """The hardware behind the call is absent or went away (e.g. CAN adapter disconnected)."""

    code = "device"


class PluginTimeout(PluginError):
    code = "timeout"


class InvalidArguments(PluginError):
    code = "invalid_args"


@dataclass(frozen=True, slots=True)
class Method:
    """One declared method. ``handler`` is the attribute name on the plugin class."""

    name: str
    handler: str
    permission: str | None = None
    consent: bool = False
    driving: str = "allowed"
    streams: bool = False
    args: Mapping[str, Any] = field(default_factory=lambda: dict(OPEN_OBJECT))
    result: Mapping[str, Any] = field(default_factory=dict)
    timeout_s: float = 10.0
    rate_hz: float | None = None  # streams: the most events per second a subscriber receives
    summary: str = ""

    def __post_init__(self) -> None:
        namespace, _, short = self.name.partition(".")
        if not namespace or not short or not self.name.replace(".", "").replace("_", "").isalnum():
            raise ValueError(f"method name {self.name!r} must look like 'namespace.name'")
        if self.driving not in DRIVING_RULES:
            raise ValueError(f"{self.name}: driving must be one of {DRIVING_RULES}")
        if self.consent and self.permission is None:
            raise ValueError(f"{self.name}: a method that needs consent must name a permission")

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "permission": self.permission,
            "consent": self.consent,
            "driving": self.driving,
            "streams": self.streams,
            "args": dict(self.args),
            "result": dict(self.result),
            "timeout_s": self.timeout_s,
            "summary": self.summary,
        }
        if self.rate_hz is not None:
            out["rate_hz"] = self.rate_hz
        return out


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling: the hub has already checked permission, grant and vehicle state."""

    app_id: str
    call_id: int
    method: str


def object_schema(
    properties: dict[str, Any], required: tuple[str, ...] = (), *, strict: bool = True
) -> dict[str, Any]:
    """A JSON Schema object of ``properties``; ``strict`` refuses any other property."""
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    if strict:
        out["additionalProperties"] = False
    return out


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch, as plugins stamp their records and state."""
    return int(time.time() * 1000)


#: the arguments of a method that takes none
NO_ARGS = object_schema({})


def method(
    name: str,
    *,
    permission: str | None = None,
    consent: bool = False,
    driving: str = "allowed",
    streams: bool = False,
    args: Mapping[str, Any] | None = None,
    result: Mapping[str, Any] | None = None,
    timeout_s: float = 10.0,
    rate_hz: float | None = None,
    summary: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a plugin coroutine (or async generator, for ``streams=True``) as a declared method."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__vh_method__ = Method(  # type: ignore[attr-defined]
            name=name,
            handler=fn.__name__,
            permission=permission,
            consent=consent,
            driving=driving,
            streams=streams,
            args=dict(args) if args is not None else dict(OPEN_OBJECT),
            result=dict(result) if result is not None else {},
            timeout_s=timeout_s,
            rate_hz=rate_hz,
            summary=summary or (fn.__doc__ or "").strip().split("\n")[0],
        )
        return fn

    return mark


def config_number(config: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    """The setting ``key`` if it is a number (not true/false) from ``low`` to ``high``, else ``default``."""
    value = config.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high
    return float(value) if ok else default


def config_integer(config: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    """The setting ``key`` if it is a whole number from ``low`` to ``high``, else ``default``."""
    value = config.get(key, default)
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    return value if ok else default


PublishState = Callable[[str, Mapping[str, Any]], Awaitable[None]]


@dataclass
class PluginContext:
    """What the host gives a plugin: its config section, a logger and a way to publish state."""

    config: Mapping[str, Any]
    publish_state: PublishState
    state_dir: str = ""
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("vehicle_host.plugin"))


class Plugin:
    """Base class of every plugin. Subclasses set ``name``/``version`` and mark handlers."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"

    def __init__(self, context: PluginContext) -> None:
        self.context = context

    @classmethod
    def declarations(cls) -> tuple[Method, ...]:
        found: dict[str, Method] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                decl = getattr(value, "__vh_method__", None)
                if isinstance(decl, Method):
                    found[decl.name] = decl
        return tuple(sorted(found.values(), key=lambda m: m.name))

    async def start(self) -> None:
        """Open devices, start background tasks. Called once before any call."""

    async def stop(self) -> None:
        """Release devices. Called once at shutdown."""

    async def call(self, decl: Method, args: dict[str, Any], call: CallContext) -> Any:
        """Run a unary method; the host process wraps this with the declared timeout."""
        handler = getattr(self, decl.handler)
        return await handler(args, call)

    def stream(self, decl: Method, args: dict[str, Any], call: CallContext) -> AsyncIterator[Any]:
        """Open a streaming method; the host rate-limits to ``decl.rate_hz`` and stops on cancel."""
        handler = getattr(self, decl.handler)
        iterator: AsyncIterator[Any] = handler(args, call)
        return iterator


#: how long opening a state file waits for another process that is opening it too
OPEN_WAIT_S = 10.0


class StateDB:
    """A plugin's SQLite file in its state directory, for blocking use from ``asyncio.to_thread``.

    The file is created with mode 0600 (its directory 0700), journals in WAL with
    ``synchronous=FULL`` (a committed write is on disk), and ``schema`` (one statement) creates
    its table. One connection serves every thread: hold ``self._lock`` around each use.
    """

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
        # two processes opening a new file at once (an old plugin process and its replacement): SQLite
        # answers "locked" at once, without waiting, while the other switches the journal to WAL
        deadline = time.monotonic() + OPEN_WAIT_S
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute(schema)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    self._db.close()
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        with self._lock:
            self._db.close()


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a plugin's background ``task`` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


DB = TypeVar("DB", bound=StateDB)


class StatePlugin(Plugin, Generic[DB]):
    """A plugin whose state is one :class:`StateDB` file in its state directory.

    ``start`` calls :meth:`open_db` (the file is opened in a thread), ``stop`` calls
    :meth:`close_db`; handlers use :attr:`db`, which tells the caller to retry while it is not open.
    """

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self._db: DB | None = None

    async def open_db(self, opener: Callable[[Path], DB], filename: str) -> DB:
        if not self.context.state_dir:
            raise PluginError(f"the {self.name} plugin needs a state directory (--state-dir)")
        self._db = await asyncio.to_thread(opener, Path(self.context.state_dir) / filename)
        return self._db

    async def close_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await asyncio.to_thread(db.close)

    @property
    def db(self) -> DB:
        if self._db is None:
            raise PluginError(f"the {self.name} plugin is not open yet; retry in a moment")
        return self._db
