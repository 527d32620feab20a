"""Running a plugin for a test: in this process on a state directory (:func:`run_plugin`), or as a real
plugin host process (``python -m vehicle_host.plugins.host``) against a ROUTER socket playing the hub
(:class:`FakeHub`). The host finds the plugin through its installed ``vehicle_host.plugins`` entry point."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import zmq
import zmq.asyncio

from vehicle_host.plugins.contract import Plugin, PluginContext
from vehicle_host.plugins.host import EXIT_OK, TOKEN_ENV
from vehicle_host.wire import API_LEVEL, Envelope, decode, encode

P = TypeVar("P", bound=Plugin)
Published = list[tuple[str, dict[str, Any]]]
TOKEN = "s3cret"
STOP_WAIT_S = 20


def run_plugin(
    plugin_class: type[P],
    state_dir: Path,
    body: Callable[[P, Published], Awaitable[None]],
    **config: Any,
) -> Published:
    """Start a plugin in this process, run ``body(plugin, published)``, stop it; what it published."""
    published: Published = []

    async def publish(key: str, value: Any) -> None:
        published.append((key, dict(value)))

    async def main() -> None:
        plugin = plugin_class(PluginContext(config=config, publish_state=publish, state_dir=str(state_dir)))
        await plugin.start()
        try:
            await body(plugin, published)
        finally:
            await plugin.stop()

    asyncio.run(main())
    return published


def start_host(endpoint: str, name: str, state_dir: Path, config: dict[str, Any]) -> subprocess.Popen[bytes]:
    """The plugin host process for plugin ``name``, connecting to ``endpoint`` with :data:`TOKEN`."""
    command = [sys.executable, "-m", "vehicle_host.plugins.host", "--name", name, "--endpoint", endpoint]
    command += ["--state-dir", str(state_dir), "--config", json.dumps(config)]
    env = {**os.environ, TOKEN_ENV: TOKEN, "VEHICLE_HOST_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_host(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL if it does not end in time; the exit code."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    return process.returncode


class FakeHub:
    """A ROUTER socket playing the hub for the host processes of one plugin.

    Every message received waits in ``messages`` until a ``recv``/``wait``/``call``/``state`` takes
    it or its process stops; every ``state.publish`` payload (``{"key", "value"}``) is also kept in
    ``states``.
    """

    def __init__(
        self, endpoint: str, plugin: str, app_id: str = "com.test.app", timeout: float = 20.0
    ) -> None:
        self.endpoint = endpoint
        self.plugin = plugin
        self.app_id = app_id
        self.timeout = timeout
        self.sock = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.peer = b""
        self.ids = itertools.count(100)
        self.messages: list[Envelope] = []
        self.states: list[dict[str, Any]] = []

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.sock.close(0)

    @asynccontextmanager
    async def host(self, state_dir: Path, config: dict[str, Any]) -> AsyncIterator[subprocess.Popen[bytes]]:
        """A host process of this plugin for the ``async with`` body; it must then stop cleanly, and
        what it sent that no one took is dropped (``states`` keeps its states)."""
        process = start_host(self.endpoint, self.plugin, state_dir, config)
        try:
            yield process
        finally:
            assert await asyncio.to_thread(stop_host, process) == EXIT_OK
            self.messages.clear()

    def values(self, key: str) -> list[dict[str, Any]]:
        """The values of the ``key`` states received so far, oldest first."""
        return [dict(state["value"]) for state in self.states if state["key"] == key]

    async def wait(self, match: Callable[[Envelope], bool], timeout: float | None = None) -> Envelope:
        """Take the oldest message ``match`` accepts, waiting for it if none came yet."""
        async with asyncio.timeout(self.timeout if timeout is None else timeout):
            while True:
                for message in self.messages:
                    if match(message):
                        self.messages.remove(message)
                        return message
                self.peer, data = await self.sock.recv_multipart()
                message = decode(data)
                if message.type == "state.publish":
                    self.states.append(dict(message.payload))
                self.messages.append(message)

    async def recv(self, type_: str, timeout: float | None = None) -> Envelope:
        return await self.wait(lambda m: m.type == type_, timeout)

    async def state(
        self, key: str, match: Callable[[dict[str, Any]], bool] = lambda v: True, timeout: float | None = None
    ) -> dict[str, Any]:
        """The value of the oldest ``key`` state not yet taken that ``match`` accepts."""
        message = await self.wait(
            lambda m: m.type == "state.publish" and m.payload["key"] == key and match(m.payload["value"]),
            timeout,
        )
        return dict(message.payload["value"])

    async def send(self, type_: str, payload: dict[str, Any], message_id: int | None = None) -> None:
        mid = next(self.ids) if message_id is None else message_id
        envelope = Envelope(type_, mid, "hub", f"plugin:{self.plugin}", payload)
        await self.sock.send_multipart([self.peer, encode(envelope)])

    async def accept(self) -> list[str]:
        """Answer the plugin's hello; the names of the methods it then declares."""
        hello = await self.recv("hello")
        assert hello.payload["plugin"] == self.plugin and hello.payload["token"] == TOKEN
        await self.send("hello.ok", {"api_level": API_LEVEL, "hub_version": "test"}, hello.id)
        declare = await self.recv("plugin.declare")
        return [m["name"] for m in declare.payload["methods"]]

    async def call(
        self,
        call_id: int,
        method: str,
        args: dict[str, Any] | None = None,
        app_id: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send ``plugin.call`` (from ``app_id``, else this hub's app) and wait for its result."""
        payload = {"call_id": call_id, "app_id": app_id or self.app_id, "method": method, "args": args or {}}
        await self.send("plugin.call", payload)
        answer = await self.wait(
            lambda m: m.type == "plugin.result" and m.payload["call_id"] == call_id, timeout
        )
        return dict(answer.payload)
