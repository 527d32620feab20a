"""The process that hosts one plugin: ``python -m vehicle_host.plugins.host --name NAME --endpoint EP``.

It connects a DEALER socket to the hub's front endpoint, introduces itself with
``hello{role: "plugin", plugin, token}`` (the token comes from ``VEHICLE_HOST_PLUGIN_TOKEN``),
declares its methods (``plugin.declare``), runs ``Plugin.start()`` and serves ``plugin.call``:

- unary methods run with the declared ``timeout_s``; the result is checked against the declared
  result schema and must encode as CBOR, else the caller gets ``failed`` (the process stays up);
- streams send ``plugin.event{data}`` at most ``rate_hz`` times a second (a faster producer is
  coalesced to its latest value) and end with ``plugin.event{data: null, end: true}``; a failing
  stream ends with ``plugin.result{ok: false, error}`` instead; ``plugin.cancel`` ends either kind
  (a cancelled unary call answers ``error{code: "cancelled"}``);
- at most ``max_in_flight`` calls run at once, and at most ``MAX_IN_FLIGHT_PER_APP`` of one app (so
  one app flooding a plugin cannot starve the others); more are answered ``error{code: "busy"}``.

Logs are JSON lines on stderr. SIGTERM (or the hub going away) stops the plugin and exits 0.
Exit codes: 0 stopped, 1 failed at run time (the hub may restart it), 78 cannot run as configured
(not installed, bad declarations, token refused: restarting will not help).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import zmq
import zmq.asyncio
from jsonschema.exceptions import best_match

from vehicle_host import logs
from vehicle_host.errors import VehicleHostError, WireError
from vehicle_host.parent_death import die_with_parent, hub_already_gone
from vehicle_host.plugins import registry
from vehicle_host.plugins.contract import (
    ERROR_CODES,
    CallContext,
    Method,
    Plugin,
    PluginContext,
    PluginError,
)
from vehicle_host.wire import API_LEVEL, MAX_MESSAGE_BYTES, Envelope, decode, encode

TOKEN_ENV = "VEHICLE_HOST_PLUGIN_TOKEN"  # noqa: S105 (the name of the variable, not a secret)
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 78
MAX_IN_FLIGHT = 64
MAX_IN_FLIGHT_PER_APP = 16
MAX_CONFIG_BYTES = 64 * 1024
HELLO_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
PARENT_POLL_S = 1.0

log = logging.getLogger("vehicle_host.plugins.host")


class PluginHost:
    """Runs one plugin instance against the hub. ``run()`` returns the process exit code."""

    def __init__(
        self,
        plugin_cls: type[Plugin],
        *,
        name: str,
        endpoint: str,
        token: str,
        config: Mapping[str, Any] | None = None,
        state_dir: str = "",
        max_in_flight: int = MAX_IN_FLIGHT,
        watch_parent: bool = True,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.max_in_flight = max_in_flight
        self._token = token
        self._address = f"plugin:{name}"[:128]
        self._ids = itertools.count(1)
        self._ctx = zmq.asyncio.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 1000)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES * 2)
        self._stop = asyncio.Event()
        self._watch_parent = watch_parent
        self._parent = os.getppid()  # the hub that started us (compared from the start, not from serving)
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._call_apps: dict[int, str] = {}  # call id -> the app it runs for
        self._cancel_requested: set[int] = set()
        self._answers: set[asyncio.Future[None]] = set()
        self.counters: dict[str, int] = {"calls": 0, "busy": 0, "dropped": 0, "failed": 0}
        self.log = logging.getLogger(f"vehicle_host.plugin.{name}")
        context = PluginContext(
            config=dict(config or {}), publish_state=self.publish_state, state_dir=state_dir, log=self.log
        )
        self.plugin = plugin_cls(context)
        self.methods: dict[str, Method] = {m.name: m for m in plugin_cls.declarations()}
        self._result_checks = {
            m.name: jsonschema.validators.validator_for(m.result, default=jsonschema.Draft202012Validator)(
                m.result
            )
            for m in self.methods.values()
            if m.result
        }

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        self._sock.connect(self.endpoint)
        try:
            code = await self._handshake()
            if code is not None:
                return code
            try:
                await self.plugin.start()
            except Exception:
                self.log.exception("the plugin failed to start", extra={"plugin": self.name})
                return EXIT_FAILED
            self.log.info("plugin ready", extra={"plugin": self.name, "methods": len(self.methods)})
            watchers = [asyncio.create_task(self._serve()), asyncio.create_task(self._stop.wait())]
            if self._watch_parent:
                watchers.append(asyncio.create_task(self._parent_gone()))
            done, pending = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    self.log.error("the serve loop failed", exc_info=task.exception())
            await self._shutdown()
            return EXIT_OK
        finally:
            self._sock.close()
            self._ctx.term()

    async def _handshake(self) -> int | None:
        hello_id = next(self._ids)
        payload = {"role": "plugin", "api_level": API_LEVEL, "plugin": self.name, "token": self._token}
        await self._sock.send(encode(Envelope("hello", hello_id, self._address, "hub", payload)))
        try:
            reply = await asyncio.wait_for(self._await_reply(hello_id), HELLO_TIMEOUT_S)
        except TimeoutError:
            self.log.error("the hub did not answer hello", extra={"endpoint": self.endpoint})
            return EXIT_FAILED
        if reply.type != "hello.ok":
            reason = str(reply.payload.get("message", ""))[:300]
            self.log.error("the hub refused this plugin", extra={"reply": reply.type, "reason": reason})
            return EXIT_CONFIG
        declare = {
            "name": self.name,
            "version": self.plugin.version,
            "methods": [m.to_wire() for m in self.methods.values()],
        }
        if not await self._send("plugin.declare", declare):
            return EXIT_CONFIG
        return None

    async def _await_reply(self, message_id: int) -> Envelope:
        while True:
            message = await self._recv()
            if message is not None and message.id == message_id and message.type in ("hello.ok", "error"):
                return message

    async def _parent_gone(self) -> None:
        parent = self._parent
        while os.getppid() == parent:
            await asyncio.sleep(PARENT_POLL_S)
        self.log.warning("the hub process went away; stopping", extra={"plugin": self.name})

    async def _shutdown(self) -> None:
        tasks = list(self._calls.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
        try:
            await asyncio.wait_for(self.plugin.stop(), STOP_TIMEOUT_S)
        except Exception:
            self.log.exception("the plugin failed to stop cleanly", extra={"plugin": self.name})
        self.log.info("plugin stopped", extra={"plugin": self.name})

    # -- messages -------------------------------------------------------------------------------
    async def _recv(self) -> Envelope | None:
        data = await self._sock.recv()
        try:
            message = decode(data)
        except WireError as exc:
            self.counters["dropped"] += 1
            self.log.warning("dropped a malformed message", extra={"error": str(exc)})
            return None
        if message.source != "hub":
            self.counters["dropped"] += 1
            return None
        return message

    async def _serve(self) -> None:
        while True:
            message = await self._recv()
            if message is None:
                continue
            if message.type == "plugin.call":
                await self._start_call(message.payload)
            elif message.type == "plugin.cancel":
                task = self._calls.get(message.payload["call_id"])
                if task is not None:
                    self._cancel_requested.add(message.payload["call_id"])
                    task.cancel()
            else:
                self.counters["dropped"] += 1

    async def _send(self, type_: str, payload: dict[str, Any]) -> bool:
        try:
            data = encode(Envelope(type_, next(self._ids), self._address, "hub", payload))
        except WireError as exc:
            self.log.warning("cannot send %s: %s", type_, exc)
            return False
        await self._sock.send(data)
        return True

    async def _fail(self, call_id: int, code: str, message: str) -> None:
        code = code if code in ERROR_CODES else "failed"
        error = {"code": code, "message": message[:2000]}
        await self._send("plugin.result", {"call_id": call_id, "ok": False, "error": error})

    async def publish_state(self, key: str, value: Mapping[str, Any]) -> None:
        """``PluginContext.publish_state``: the hub keeps the latest value per key."""
        if not await self._send("state.publish", {"key": key, "value": dict(value)}):
            raise VehicleHostError(f"state {key!r} cannot be published: keep values small plain data")

    # -- calls ----------------------------------------------------------------------------------
    async def _start_call(self, p: dict[str, Any]) -> None:
        call_id, method = p["call_id"], p["method"]
        self.counters["calls"] += 1
        decl = self.methods.get(method)
        if decl is None:
            await self._fail(call_id, "unknown_method", f"{self.name} does not offer {method[:100]}")
        elif call_id in self._calls:
            await self._fail(call_id, "failed", f"call id {call_id} is already in use")
        elif len(self._calls) >= self.max_in_flight:
            self.counters["busy"] += 1
            await self._fail(
                call_id, "busy", f"{self.name} is busy ({self.max_in_flight} calls running); retry"
            )
        elif sum(1 for app in self._call_apps.values() if app == p["app_id"]) >= MAX_IN_FLIGHT_PER_APP:
            self.counters["busy"] += 1
            await self._fail(
                call_id,
                "busy",
                f"{self.name}: this app already has {MAX_IN_FLIGHT_PER_APP} calls running; "
                "wait for their answers before calling again",
            )
        else:
            ctx = CallContext(app_id=p["app_id"], call_id=call_id, method=method)
            task = asyncio.create_task(self._run_call(decl, p["args"], ctx))
            self._calls[call_id] = task
            self._call_apps[call_id] = p["app_id"]
            task.add_done_callback(lambda done: self._call_done(done, decl, call_id))

    def _call_done(self, task: asyncio.Task[None], decl: Method, call_id: int) -> None:
        self._calls.pop(call_id, None)
        self._call_apps.pop(call_id, None)
        if call_id in self._cancel_requested:
            # cancelled before it ever ran: no handler saw the cancellation, so answer here
            self._cancel_requested.discard(call_id)
            answer = asyncio.ensure_future(self._cancelled(decl, call_id))
            self._answers.add(answer)
            answer.add_done_callback(self._answers.discard)

    async def _cancelled(self, decl: Method, call_id: int) -> None:
        if decl.streams:
            await self._send("plugin.event", {"call_id": call_id, "data": None, "end": True})
        else:
            await self._fail(call_id, "cancelled", f"{decl.name} was cancelled")

    async def _run_call(self, decl: Method, args: dict[str, Any], ctx: CallContext) -> None:
        call_id = ctx.call_id
        try:
            if decl.streams:
                await self._run_stream(decl, args, ctx)
                await self._send("plugin.event", {"call_id": call_id, "data": None, "end": True})
            else:
                result = await asyncio.wait_for(self.plugin.call(decl, args, ctx), decl.timeout_s)
                await self._send_result(decl, call_id, result)
        except asyncio.CancelledError:
            if call_id not in self._cancel_requested:
                raise  # shutting down: the hub answers for calls of a plugin that went away
            self._cancel_requested.discard(call_id)
            await self._cancelled(decl, call_id)
        except TimeoutError:
            await self._fail(call_id, "timeout", f"{decl.name} did not finish within {decl.timeout_s:g} s")
        except PluginError as exc:
            await self._fail(call_id, exc.code, str(exc) or exc.code)
        except VehicleHostError as exc:
            await self._fail(call_id, "failed", str(exc) or type(exc).__name__)
        except Exception:
            self.counters["failed"] += 1
            self.log.exception("%s failed", decl.name, extra={"plugin": self.name, "app_id": ctx.app_id})
            await self._fail(
                call_id, "failed", f"{decl.name} failed inside plugin {self.name}; see the host log"
            )

    async def _send_result(self, decl: Method, call_id: int, result: Any) -> None:
        check = self._result_checks.get(decl.name)
        if check is not None:
            try:
                error = best_match(check.iter_errors(result))
            except Exception as exc:
                error = jsonschema.ValidationError(f"cannot be checked ({type(exc).__name__})")
            if error is not None:
                self.counters["failed"] += 1
                self.log.error(
                    "%s returned a result that breaks its declared schema",
                    decl.name,
                    extra={"plugin": self.name, "path": error.json_path, "error": error.message[:300]},
                )
                await self._fail(
                    call_id, "failed", f"{decl.name} returned an invalid result; see the host log"
                )
                return
        if not await self._send("plugin.result", {"call_id": call_id, "ok": True, "result": result}):
            self.counters["failed"] += 1
            await self._fail(
                call_id, "failed", f"{decl.name} returned a result that cannot be sent (size or type)"
            )

    async def _run_stream(self, decl: Method, args: dict[str, Any], ctx: CallContext) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / decl.rate_hz if decl.rate_hz else 0.0
        iterator = self.plugin.stream(decl, args, ctx)
        latest: list[Any] = []  # at most one value waiting: a faster producer is coalesced
        wake = asyncio.Event()

        async def pump() -> None:
            async for item in iterator:
                latest[:] = [item]
                wake.set()
                await asyncio.sleep(0)  # a producer that never waits must not starve the loop

        producer = asyncio.create_task(pump())
        producer.add_done_callback(lambda _: wake.set())
        next_at = 0.0
        try:
            while True:
                await wake.wait()
                wake.clear()
                if latest:
                    delay = next_at - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    data = latest.pop()
                    if not await self._send("plugin.event", {"call_id": ctx.call_id, "data": data}):
                        raise VehicleHostError(
                            f"{decl.name} produced an event that cannot be sent (size or type)"
                        )
                    next_at = loop.time() + interval
                if producer.done() and not latest:
                    break
            producer.result()  # re-raise the stream's own failure
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await producer
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


def parse_config(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    if len(text) > MAX_CONFIG_BYTES:
        raise VehicleHostError(f"--config is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise VehicleHostError(f"--config is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise VehicleHostError("--config must be a JSON object")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vehicle_host.plugins.host", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--name", required=True, help="the plugin's entry-point name")
    parser.add_argument(
        "--endpoint", required=True, help="the hub's front endpoint, e.g. ipc:///run/.../hub.sock"
    )
    parser.add_argument("--config", default=None, help="the plugin's configuration as a JSON object")
    parser.add_argument("--state-dir", default="", help="a directory the plugin may keep files in")
    args = parser.parse_args(argv)
    die_with_parent(signal.SIGTERM)  # the hub going away stops the plugin cleanly
    logs.setup(os.environ.get("VEHICLE_HOST_LOG_LEVEL", "INFO"))
    if hub_already_gone():
        log.warning("the hub that started this plugin is gone; not starting", extra={"plugin": args.name})
        return EXIT_OK
    token = os.environ.pop(TOKEN_ENV, "")
    try:
        config = parse_config(args.config)
        plugin_cls = registry.load(args.name)
        if args.state_dir:
            Path(args.state_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        host = PluginHost(
            plugin_cls,
            name=args.name,
            endpoint=args.endpoint,
            token=token,
            config=config,
            state_dir=args.state_dir,
        )
    except (VehicleHostError, OSError) as exc:
        log.error("plugin cannot run: %s", exc, extra={"plugin": args.name})
        return EXIT_CONFIG
    except Exception:
        log.exception("the plugin failed while being set up", extra={"plugin": args.name})
        return EXIT_CONFIG
    return asyncio.run(host.run())


if __name__ == "__main__":
    sys.exit(main())
