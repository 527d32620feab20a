"""Plugins by name: entry points of group ``vehicle_host.plugins``.

The hub lists names without importing any plugin code (:func:`names`); only the plugin's own process
imports its class (:func:`load`), so a broken plugin cannot take the hub down.
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import EntryPoint, entry_points

import jsonschema

from vehicle_host.errors import VehicleHostError
from vehicle_host.plugins.contract import Method, Plugin

GROUP = "vehicle_host.plugins"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_TIMEOUT_S = 600.0
MAX_RATE_HZ = 1000.0


class PluginLoadError(VehicleHostError):
    """A plugin cannot be loaded: not installed, not importable, or its declarations are wrong."""


def names() -> list[str]:
    """The registered plugin names, sorted (nothing is imported)."""
    return sorted({ep.name for ep in entry_points(group=GROUP) if NAME.match(ep.name)})


def entry_point(name: str) -> EntryPoint:
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            return ep
    known = ", ".join(names()) or "none"
    raise PluginLoadError(
        f"no plugin named {name!r} is installed (installed: {known}); "
        f"install the package that provides it or fix the name in the host configuration"
    )


def load(name: str) -> type[Plugin]:
    """Import the plugin class registered as ``name`` and check its declarations."""
    ep = entry_point(name)
    try:
        obj = ep.load()
    except Exception as exc:  # any import-time failure of third-party code
        message = f"plugin {name!r} ({ep.value}) cannot be imported: {type(exc).__name__}: {exc}"
        raise PluginLoadError(message[:2000]) from exc
    if not (inspect.isclass(obj) and issubclass(obj, Plugin)) or obj is Plugin:
        raise PluginLoadError(
            f"plugin {name!r}: {ep.value} is not a subclass of vehicle_host.plugins.contract.Plugin"
        )
    check_declarations(obj, name)
    return obj


def check_declarations(cls: type[Plugin], name: str = "") -> tuple[Method, ...]:
    """Check what ``cls`` declares; raise PluginLoadError naming the first problem."""
    label = name or cls.__name__
    if not isinstance(cls.name, str) or not cls.name:
        raise PluginLoadError(f"plugin {label!r}: set the class attribute 'name'")
    if not isinstance(cls.version, str) or not cls.version:
        raise PluginLoadError(f"plugin {label!r}: set the class attribute 'version'")
    try:
        methods = cls.declarations()
    except ValueError as exc:
        raise PluginLoadError(f"plugin {label!r}: bad declaration: {exc}") from None
    if not methods:
        raise PluginLoadError(f"plugin {label!r} declares no methods; mark handlers with @method(...)")
    for decl in methods:
        _check_method(label, cls, decl)
    return methods


def _check_method(label: str, cls: type[Plugin], decl: Method) -> None:
    where = f"plugin {label!r}, method {decl.name}"
    if decl.name.startswith("ui."):
        raise PluginLoadError(f"{where}: the ui namespace belongs to the host")
    handler = getattr(cls, decl.handler, None)
    if handler is None:
        raise PluginLoadError(f"{where}: handler {decl.handler!r} is missing")
    if decl.streams and not inspect.isasyncgenfunction(handler):
        raise PluginLoadError(f"{where}: a streaming method must be an async generator (async def + yield)")
    if not decl.streams and not inspect.iscoroutinefunction(handler):
        raise PluginLoadError(f"{where}: the handler must be 'async def'")
    if not 0 < decl.timeout_s <= MAX_TIMEOUT_S:
        raise PluginLoadError(f"{where}: timeout_s must be in (0, {MAX_TIMEOUT_S:g}]")
    if decl.rate_hz is not None and not 0 < decl.rate_hz <= MAX_RATE_HZ:
        raise PluginLoadError(f"{where}: rate_hz must be in (0, {MAX_RATE_HZ:g}]")
    for what, schema in (("args", decl.args), ("result", decl.result)):
        try:
            jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(
                schema
            )
        except jsonschema.SchemaError as exc:
            raise PluginLoadError(
                f"{where}: the {what} schema is not valid JSON Schema: {exc.message}"
            ) from None
