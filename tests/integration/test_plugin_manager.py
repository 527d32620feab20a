"""The hub-side PluginManager with a real broker socket and a real storage plugin process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.hub.broker import Broker, Origin
from vehicle_host.hub.client import HubClient
from vehicle_host.hub.gateway import MethodRule
from vehicle_host.hub.plugins import PluginManager, Relay
from vehicle_host.wire import API_LEVEL, Envelope

pytestmark = pytest.mark.integration
APP = "com.test.notes"


class MiniHub:
    """The part of the hub that talks to plugins, wired as the real hub should wire it."""

    def __init__(self, runtime_dir: Path, state_dir: Path) -> None:
        self.broker = Broker(runtime_dir, self.handle)
        self.relays: asyncio.Queue[Relay] = asyncio.Queue()
        self.state: dict[str, dict[str, Any]] = {}
        self.manager = PluginManager(
            self.broker.front_endpoint,
            state_dir,
            send=self.broker.send_front,
            deliver=self.relays.put,
            enabled=["storage"],
            backoff=(0.1, 1.0),
        )

    async def handle(self, message: Envelope, origin: Origin) -> None:
        p, peer = message.payload, origin.peer
        if message.type == "hello" and p["role"] == "plugin":
            if self.manager.on_hello(peer, p):
                reply = message.reply("hello.ok", {"api_level": API_LEVEL, "hub_version": "test"})
            else:
                reply = message.reply("error", {"code": "denied", "message": "unknown plugin or wrong token"})
            await self.broker.send_front(peer, reply)
            return
        if self.manager.plugin_of(peer) is None:
            return  # only authenticated plugins may send plugin messages
        if message.type == "plugin.declare":
            self.manager.on_declare(peer, p)
        elif message.type in ("plugin.result", "plugin.event"):
            relay = (self.manager.on_result if message.type == "plugin.result" else self.manager.on_event)(
                peer, p
            )
            if relay is not None:
                await self.relays.put(relay)
        elif message.type == "state.publish":
            self.state[p["key"]] = p["value"]

    def rule(self, method: str) -> MethodRule:
        return self.manager.rules()[method]

    async def call(self, call_id: int, method: str, args: dict[str, Any]) -> Relay:
        await self.manager.call(APP, call_id, self.rule(method), args)
        return await self.answer(call_id)

    async def answer(self, call_id: int) -> Relay:
        while True:
            relay = await asyncio.wait_for(self.relays.get(), 15)
            if relay.payload["call_id"] == call_id:
                return relay

    async def declared(self, method: str, *, not_pid: int | None = None) -> None:
        async def wait() -> None:
            while method not in self.manager.rules() or self.manager.pid("storage") == not_pid:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(wait(), 20)


def run(short_dir: Path, body: Callable[[MiniHub], Awaitable[None]]) -> None:
    async def main() -> None:
        hub = MiniHub(short_dir / "run", short_dir / "state")
        hub.broker.start()
        await hub.manager.start()
        try:
            await hub.declared("storage.set")
            await body(hub)
        finally:
            pid = hub.manager.pid("storage")
            await hub.manager.stop_all()
            await hub.broker.close()
            if pid is not None:
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)

    asyncio.run(main())


def test_hello_declare_call_and_clean_stop(short_dir: Path) -> None:
    async def body(hub: MiniHub) -> None:
        rule = hub.rule("storage.set")
        assert rule.owner == "storage" and rule.permission is None
        ok = await hub.call(1, "storage.set", {"key": "k", "value": json.dumps({"a": 1})})
        assert ok.payload == {"call_id": 1, "ok": True, "result": {}} and ok.final
        snap = await hub.call(2, "storage.snapshot", {})
        assert snap.payload["result"] == {"items": {"k": '{"a": 1}'}, "next": None}
        info = await hub.call(3, "storage.info", {})
        assert info.payload["result"]["keys"] == ["k"] and info.payload["result"]["limitSize"] == 10240
        bad = await hub.call(4, "storage.set", {"key": "k", "value": "{not json"})
        assert bad.payload["ok"] is False and "JSON" in bad.payload["error"]["message"]

    run(short_dir, body)


def test_a_wrong_token_is_refused(short_dir: Path) -> None:
    async def body(hub: MiniHub) -> None:
        intruder = HubClient(hub.broker.front_endpoint, role="plugin")
        intruder.open()
        try:
            payload = {"role": "plugin", "api_level": API_LEVEL, "plugin": "storage", "token": "guess"}
            reply = await intruder.request("hello", "hub", payload)
            assert reply.type == "error" and reply.payload["code"] == "denied"
            # not authenticated: its plugin messages are ignored
            intruder.send("plugin.declare", "hub", {"name": "storage", "version": "6.6.6", "methods": []})
            await asyncio.sleep(0.2)
            assert "storage.set" in hub.manager.rules()
        finally:
            await intruder.close()
        assert hub.manager.counters["refused_hello"] == 1

    run(short_dir, body)


def test_a_killed_plugin_fails_its_calls_and_is_restarted(short_dir: Path) -> None:
    async def body(hub: MiniHub) -> None:
        assert (await hub.call(1, "storage.set", {"key": "before", "value": "1"})).payload["ok"]
        pid = hub.manager.pid("storage")
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the call below is then certainly in flight when it dies
        await hub.manager.call(APP, 2, hub.rule("storage.snapshot"), {})
        os.kill(pid, signal.SIGKILL)
        died = await hub.answer(2)
        assert died.payload["ok"] is False
        assert died.payload["error"]["code"] == "unavailable"
        await hub.declared("storage.set", not_pid=pid)
        assert hub.manager.stats()["plugins"]["storage"]["restarts"] == 1
        snap = await hub.call(3, "storage.snapshot", {})
        assert snap.payload["result"]["items"] == {"before": "1"}  # written before the crash: durable

    run(short_dir, body)


def test_calls_of_an_app_that_stopped_are_cancelled_and_unknown_results_dropped(short_dir: Path) -> None:
    async def body(hub: MiniHub) -> None:
        pid = hub.manager.pid("storage")
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        await hub.manager.call(APP, 5, hub.rule("storage.info"), {})
        assert hub.manager.stats()["calls_in_flight"] == 1
        await hub.manager.cancel_app(APP)
        assert hub.manager.stats()["calls_in_flight"] == 0
        os.kill(pid, signal.SIGCONT)
        await asyncio.sleep(0.3)
        assert hub.relays.empty()  # the plugin's late answer went nowhere
        assert (await hub.call(6, "storage.info", {})).payload["ok"] is True

    run(short_dir, body)
