"""The plugin registry and the checks on what a plugin declares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.hub.gateway import rules_from_declare
from vehicle_host.plugins import registry
from vehicle_host.plugins.contract import (
    CallContext,
    Plugin,
    PluginContext,
    PluginError,
    StateDB,
    StatePlugin,
    method,
    stop_task,
)
from vehicle_host.plugins.registry import PluginLoadError, check_declarations


def test_names_lists_entry_points_without_importing_them() -> None:
    names = registry.names()
    assert {"storage", "network", "can_diagnostics"} <= set(names)
    assert names == sorted(names)


def test_load_imports_and_checks_a_shipped_plugin() -> None:
    cls = registry.load("storage")
    assert issubclass(cls, Plugin) and cls.name == "storage"
    assert {m.name for m in cls.declarations()} >= {"storage.set", "storage.snapshot", "storage.info"}
    # what the host declares on the wire is what the gateway accepts
    rules = rules_from_declare("storage", [m.to_wire() for m in cls.declarations()])
    assert rules["storage.set"].permission is None


def test_load_of_a_missing_plugin_says_what_is_installed() -> None:
    with pytest.raises(PluginLoadError, match=r"no plugin named 'nope' is installed .*storage"):
        registry.load("nope")


class Good(Plugin):
    name = "good"
    version = "1.0"

    @method("good.ping", result={"type": "object"})
    async def ping(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        return {}

    @method("good.watch", streams=True, rate_hz=5)
    async def watch(self, args: dict[str, Any], call: CallContext) -> AsyncIterator[int]:
        yield 1


def test_a_good_plugin_passes() -> None:
    assert [m.name for m in check_declarations(Good)] == ["good.ping", "good.watch"]


def test_plugins_with_bad_declarations_are_refused() -> None:
    class NoName(Good):
        name = ""

    class SyncHandler(Plugin):
        name = "p"

        @method("p.sync")
        def sync(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
            return {}

    class StreamNotGenerator(Plugin):
        name = "p"

        @method("p.s", streams=True)
        async def s(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
            return {}

    class BadSchema(Plugin):
        name = "p"

        @method("p.b", args={"type": "nonsense"})
        async def b(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
            return {}

    class UiMethod(Plugin):
        name = "p"

        @method("ui.showToast")
        async def t(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
            return {}

    class Empty(Plugin):
        name = "p"

    cases = [
        (NoName, "'name'"),
        (SyncHandler, "async def"),
        (StreamNotGenerator, "async generator"),
        (BadSchema, "not valid JSON Schema"),
        (UiMethod, "ui namespace"),
        (Empty, "declares no methods"),
    ]
    for cls, message in cases:
        with pytest.raises(PluginLoadError, match=message):
            check_declarations(cls)


def test_bad_method_options_fail_at_declaration() -> None:
    with pytest.raises(ValueError, match="driving"):
        method("a.b", driving="fast")(lambda: None)  # type: ignore[arg-type]


class Notes(StatePlugin[StateDB]):
    name = "notes"


def _notes(state_dir: str) -> Notes:
    async def publish(topic: str, state: Any) -> None:
        return None

    return Notes(PluginContext(config={}, publish_state=publish, state_dir=state_dir))


def _open_notes(path: Path) -> StateDB:
    return StateDB(path, "CREATE TABLE IF NOT EXISTS notes (text TEXT)")


def test_a_state_plugin_opens_its_file_and_says_retry_while_closed(tmp_path: Path) -> None:
    plugin = _notes(str(tmp_path / "state"))
    with pytest.raises(PluginError, match="notes plugin is not open yet; retry"):
        _ = plugin.db

    async def cycle() -> None:
        db = await plugin.open_db(_open_notes, "notes.sqlite3")
        assert plugin.db is db
        await plugin.close_db()
        await plugin.close_db()  # a second stop is harmless

    asyncio.run(cycle())
    assert (tmp_path / "state" / "notes.sqlite3").stat().st_mode & 0o777 == 0o600
    with pytest.raises(PluginError, match="not open yet"):
        _ = plugin.db


def test_a_state_plugin_without_a_state_directory_says_which_flag() -> None:
    with pytest.raises(PluginError, match=r"notes plugin needs a state directory \(--state-dir\)"):
        asyncio.run(_notes("").open_db(_open_notes, "notes.sqlite3"))


def test_stop_task_cancels_and_waits() -> None:
    async def run() -> tuple[bool, bool]:
        ended = asyncio.Event()

        async def forever() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                ended.set()

        task = asyncio.create_task(forever())
        await asyncio.sleep(0)
        await stop_task(task)
        await stop_task(None)
        return task.cancelled(), ended.is_set()

    assert asyncio.run(run()) == (True, True)
