"""The plugin host against a ROUTER socket playing the hub: results, failures, streams, limits."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from vehicle_host.errors import VehicleHostError
from vehicle_host.plugins.contract import CallContext, DeviceUnavailable, Plugin, method
from vehicle_host.plugins.host import EXIT_CONFIG, EXIT_OK, PluginHost
from vehicle_host.wire import API_LEVEL, Envelope, decode, encode

pytestmark = pytest.mark.integration


class Sample(Plugin):
    name = "sample"
    version = "2.0.0"

    @method("sample.echo", args={"type": "object"}, result={"type": "object", "required": ["echo"]})
    async def echo(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        return {"echo": args, "app": call.app_id}

    @method("sample.wrongShape", result={"type": "object", "required": ["echo"]})
    async def wrong_shape(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        return {"nope": 1}

    @method("sample.unsendable")
    async def unsendable(self, args: dict[str, Any], call: CallContext) -> Any:
        return {"set": {1, 2}}

    @method("sample.device")
    async def device(self, args: dict[str, Any], call: CallContext) -> Any:
        raise DeviceUnavailable("the CAN adapter is unplugged; plug it in and retry")

    @method("sample.hostError")
    async def host_error(self, args: dict[str, Any], call: CallContext) -> Any:
        raise VehicleHostError("the ECU refused: wrong session")

    @method("sample.bug")
    async def bug(self, args: dict[str, Any], call: CallContext) -> Any:
        return {}["secret-internal-detail"]

    @method("sample.slow", timeout_s=0.3)
    async def slow(self, args: dict[str, Any], call: CallContext) -> Any:
        await asyncio.sleep(args.get("s", 30))
        return {}

    @method("sample.publish")
    async def publish(self, args: dict[str, Any], call: CallContext) -> Any:
        await self.context.publish_state("vehicle", {"parked": True})
        return {}

    @method("sample.count", streams=True, rate_hz=20)
    async def count(self, args: dict[str, Any], call: CallContext) -> AsyncIterator[int]:
        for i in range(args["n"]):
            yield i
            if i % 50 == 0:
                await asyncio.sleep(0.01)

    @method("sample.forever", streams=True)
    async def forever(self, args: dict[str, Any], call: CallContext) -> AsyncIterator[int]:
        for i in itertools.count():
            yield i
            await asyncio.sleep(0.01)

    @method("sample.brokenStream", streams=True)
    async def broken_stream(self, args: dict[str, Any], call: CallContext) -> AsyncIterator[int]:
        yield 1
        raise DeviceUnavailable("adapter gone")


class FakeHub:
    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.peer = b""
        self.ids = itertools.count(100)
        self.unread: list[Envelope] = []

    async def recv(self, timeout: float = 10.0) -> Envelope:
        peer, data = await asyncio.wait_for(self.sock.recv_multipart(), timeout)
        self.peer = peer
        return decode(data)

    async def expect(self, type_: str, call_id: int | None = None) -> Envelope:
        """The next message of ``type_`` (for ``call_id``); others wait in ``unread`` for later."""

        def wanted(message: Envelope) -> bool:
            return message.type == type_ and (call_id is None or message.payload.get("call_id") == call_id)

        for message in self.unread:
            if wanted(message):
                self.unread.remove(message)
                return message
        while True:
            message = await self.recv()
            if wanted(message):
                return message
            self.unread.append(message)

    async def send(self, type_: str, payload: dict[str, Any], message_id: int | None = None) -> None:
        mid = next(self.ids) if message_id is None else message_id
        await self.sock.send_multipart(
            [self.peer, encode(Envelope(type_, mid, "hub", "plugin:sample", payload))]
        )

    async def call(self, call_id: int, method_: str, args: dict[str, Any] | None = None) -> None:
        payload = {"call_id": call_id, "app_id": "com.test.app", "method": method_, "args": args or {}}
        await self.send("plugin.call", payload)


Body = Callable[[FakeHub], Awaitable[None]]


def run_host(short_dir: Path, body: Body, *, max_in_flight: int = 64, accept: bool = True) -> int:
    async def main() -> int:
        endpoint = f"ipc://{short_dir / 'hub.sock'}"
        hub = FakeHub(endpoint)
        host = PluginHost(
            Sample,
            name="sample",
            endpoint=endpoint,
            token="t0k",
            max_in_flight=max_in_flight,
            watch_parent=False,
        )
        task = asyncio.create_task(host.run())
        try:
            hello = await hub.expect("hello")
            assert hello.payload == {
                "role": "plugin",
                "api_level": API_LEVEL,
                "plugin": "sample",
                "token": "t0k",
            }
            if not accept:
                await hub.send("error", {"code": "denied", "message": "wrong token"}, hello.id)
                return await asyncio.wait_for(task, 10)
            await hub.send("hello.ok", {"api_level": API_LEVEL, "hub_version": "test"}, hello.id)
            declare = await hub.expect("plugin.declare")
            assert declare.payload["name"] == "sample" and declare.payload["version"] == "2.0.0"
            assert "sample.echo" in {m["name"] for m in declare.payload["methods"]}
            await body(hub)
        finally:
            host._stop.set()
        code = await asyncio.wait_for(task, 10)
        hub.sock.close(0)
        return code

    return asyncio.run(main())


async def result(hub: FakeHub, call_id: int) -> dict[str, Any]:
    return dict((await hub.expect("plugin.result", call_id)).payload)


def test_unary_results_and_every_kind_of_failure(short_dir: Path) -> None:
    async def body(hub: FakeHub) -> None:
        await hub.call(1, "sample.echo", {"x": 1})
        assert await result(hub, 1) == {
            "call_id": 1,
            "ok": True,
            "result": {"echo": {"x": 1}, "app": "com.test.app"},
        }
        expected = {
            "sample.wrongShape": ("failed", "invalid result"),
            "sample.unsendable": ("failed", "cannot be sent"),
            "sample.device": ("device", "unplugged"),
            "sample.hostError": ("failed", "wrong session"),
            "sample.bug": ("failed", "see the host log"),
            "sample.slow": ("timeout", "0.3 s"),
            "sample.nothing": ("unknown_method", "sample.nothing"),
        }
        for call_id, name in enumerate(expected, start=10):
            await hub.call(call_id, name)
        for call_id, (name, (code, text)) in enumerate(expected.items(), start=10):
            answer = await result(hub, call_id)
            assert answer["ok"] is False, name
            assert answer["error"]["code"] == code, name
            assert text in answer["error"]["message"], name
            assert "secret-internal-detail" not in answer["error"]["message"]
        # still serving after all that
        await hub.call(99, "sample.echo")
        assert (await result(hub, 99))["ok"] is True

    assert run_host(short_dir, body) == EXIT_OK


def test_streams_are_rate_limited_by_coalescing_and_end(short_dir: Path) -> None:
    async def body(hub: FakeHub) -> None:
        await hub.call(5, "sample.count", {"n": 400})
        seen: list[int] = []
        while True:
            event = await hub.expect("plugin.event", 5)
            if event.payload.get("end"):
                assert event.payload["data"] is None
                break
            seen.append(event.payload["data"])
        assert seen == sorted(seen)
        assert seen[-1] == 399  # the latest value is never lost
        assert len(seen) < 400  # coalesced

    assert run_host(short_dir, body) == EXIT_OK


def test_cancel_stops_a_stream_and_a_unary_call(short_dir: Path) -> None:
    async def body(hub: FakeHub) -> None:
        await hub.call(7, "sample.forever")
        await hub.expect("plugin.event", 7)
        await hub.send("plugin.cancel", {"call_id": 7})
        while not (await hub.expect("plugin.event", 7)).payload.get("end"):
            pass
        await hub.call(8, "sample.slow", {"s": 0.2})
        await hub.send("plugin.cancel", {"call_id": 8})
        answer = await result(hub, 8)
        assert answer["error"]["code"] == "cancelled"

    assert run_host(short_dir, body) == EXIT_OK


def test_a_failing_stream_ends_with_an_error_result(short_dir: Path) -> None:
    async def body(hub: FakeHub) -> None:
        await hub.call(3, "sample.brokenStream")
        answer = await result(hub, 3)
        assert answer["ok"] is False and answer["error"]["code"] == "device"

    assert run_host(short_dir, body) == EXIT_OK


def test_more_calls_than_the_bound_are_busy(short_dir: Path) -> None:
    async def body(hub: FakeHub) -> None:
        await hub.call(1, "sample.slow", {"s": 0.25})
        await hub.call(2, "sample.slow", {"s": 0.25})
        await hub.call(3, "sample.echo")
        assert (await result(hub, 3))["error"]["code"] == "busy"

    assert run_host(short_dir, body, max_in_flight=2) == EXIT_OK


def test_state_is_published(short_dir: Path) -> None:
    async def body(hub: FakeHub) -> None:
        await hub.call(1, "sample.publish")
        state = await hub.expect("state.publish")
        assert state.payload == {"key": "vehicle", "value": {"parked": True}}
        assert (await result(hub, 1))["ok"] is True

    assert run_host(short_dir, body) == EXIT_OK


def test_a_refused_hello_exits_with_the_config_code(short_dir: Path) -> None:
    async def body(hub: FakeHub) -> None:
        raise AssertionError("not reached")

    assert run_host(short_dir, body, accept=False) == EXIT_CONFIG
