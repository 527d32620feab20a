"""One mini-app's run in a worker: hub messages in, realm calls, hub messages out. No sockets.

The socket loop (``worker.py``) hands every decoded message to :meth:`AppSession.handle`, calls
:meth:`AppSession.tick` when :meth:`AppSession.next_deadline` passes, and sends what ``send`` is
given. Each callback into the realm (a message, a timer, an answer) is followed by its Promise jobs
and one flush: setData merged per page/component, calls and navigation sent, timers scheduled.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from vehicle_host.errors import BundleError, WireError
from vehicle_host.logic_worker.calls import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S, PendingCall, PendingCalls
from vehicle_host.logic_worker.runtime import (
    CALL_TIME_LIMIT_S,
    MEMORY_LIMIT_BYTES,
    JsRealm,
    ScriptError,
    from_js,
)
from vehicle_host.logic_worker.timers import TimerHeap
from vehicle_host.wire import Envelope
from vehicle_host.wire.schema import LOG_LEVELS

log = logging.getLogger("vehicle_host.worker")

Send = Callable[[str, str, dict[str, Any]], None]  # (type, target, payload)

#: A merged setData diff is cut into messages of at most this much JSON.
MAX_DIFF_CHUNK_BYTES = 256 * 1024
#: Outgoing messages per second before setData is held back and merged harder (never dropped).
MAX_MESSAGES_PER_S = 2000
#: console messages per second; more are dropped and counted.
MAX_LOGS_PER_S = 500
#: Rounds of drain -> setData callbacks -> drain in one turn.
MAX_FLUSH_ROUNDS = 16
MAX_RANDOM_BYTES = 1024
#: requestIdleCallback batches run at most this often (a callback that asks again waits this long).
IDLE_GAP_S = 0.01
#: ``worker.start.limits`` bounds.
TIME_LIMIT_MS = (10, 60_000)
MEMORY_LIMIT_MB = (8, 1024)


def _bounded(limits: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = limits.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(min(max(value, low), high))


class _Window:
    """Counts events in the current one-second window."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.start = 0.0
        self.count = 0

    def allow(self, now: float, n: int = 1) -> bool:
        if now - self.start >= 1.0:
            self.start, self.count = now, 0
        if self.count + n > self.limit:
            return False
        self.count += n
        return True

    def reopens(self) -> float:
        return self.start + 1.0


class AppSession:
    def __init__(self, send: Send, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._clock = clock
        self.app_id = ""
        self.realm: JsRealm | None = None
        self.broken = False  # the realm cannot run code any more: the worker must exit
        self._routes: dict[int, str] = {}
        self._timers = TimerHeap()
        self._calls = PendingCalls()
        self._call_timeout_s = DEFAULT_TIMEOUT_S
        self._held: dict[tuple[int, str], dict[str, Any]] = {}
        self._flushed_pending = False
        self._out = _Window(MAX_MESSAGES_PER_S)
        self._logs = _Window(MAX_LOGS_PER_S)
        self._dropped_logs = 0
        self._local: list[tuple[int, bool, Any, Any]] = []  # answers made in the worker
        self._idle_at: float | None = None  # when the realm's idle callbacks may run
        self._idle_ran = float("-inf")

    # -- the loop's view ---------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        times = [
            t for t in (self._timers.next_due(), self._calls.next_deadline(), self._idle_at) if t is not None
        ]
        if self._held:
            times.append(self._out.reopens())
        return min(times) if times else None

    def tick(self) -> None:
        """Fire due timers (one realm call each), time out late calls, send held-back diffs."""
        if self.realm is None or self.broken:
            return
        now = self._clock()
        for call in self._calls.expired(now):
            if call.kind == "api":
                self._send("api.cancel", "hub", {"call_id": call.call_id})
            self._answer_late(call)
        fired = 0
        while fired < 1000 and not self.broken:
            timer_id = self._timers.pop_due(now)
            if timer_id is None:
                break
            fired += 1
            self._callback(_fire(timer_id))
        if self._idle_at is not None and self._idle_at <= now and not self.broken:
            # nothing else was due: the idle callbacks' turn (what they ask for waits for the next one)
            self._idle_at = None
            self._idle_ran = now
            self._callback(lambda r: r.run_idle())
        if self._held and not self.broken:
            self._flush()

    def _answer_late(self, call: PendingCall) -> None:
        if call.kind == "nav":
            payload = {
                "call_id": call.call_id,
                "ok": False,
                "error": "timeout: the hub did not answer in time",
            }
            self._callback(lambda r: r.nav_result(payload))
        else:
            error = {"code": "timeout", "message": f"{call.method}: no answer in time"}
            self._callback(lambda r: r.api_result(call.call_id, False, None, error))

    # -- messages from the hub ---------------------------------------------------------------------
    def handle(self, message: Envelope) -> None:
        p = message.payload
        if message.type == "worker.start":
            self._start(p)
            return
        if self.realm is None or self.broken:
            log.warning("ignored %s: the app has not been started", message.type)
            return
        if message.type == "page.event":
            component = p.get("component", "")
            self._callback(lambda r: r.dispatch_event(p["page_id"], p["handler"], p["event"], component))
        elif message.type == "page.painted":
            self._callback(lambda r: r.painted(p["page_id"]))
        elif message.type == "nav.result":
            call = self._calls.pop(p["call_id"])
            if call is not None and call.kind != "nav":
                self._calls.add(call)  # not ours to answer
                return
            self._track_nav(p)
            self._callback(lambda r: r.nav_result(p))
        elif message.type == "api.result":
            api_call = self._calls.pop(p["call_id"])
            if api_call is None or api_call.kind != "api":
                return  # cancelled, timed out or never asked: nothing waits for it
            if api_call.stream and p["ok"]:
                self._calls.add(api_call)  # the stream goes on until its end event
                self._calls.started(api_call.call_id)
            self._callback(lambda r: r.api_result(p["call_id"], p["ok"], p.get("result"), p.get("error")))
        elif message.type == "api.event":
            stream = self._calls.started(p["call_id"])
            if stream is None:
                return
            end = bool(p.get("end", False))
            if end:
                self._calls.pop(p["call_id"])
            self._callback(lambda r: r.api_event(p["call_id"], p["data"], end))
        elif message.type == "app.visibility":
            self._callback(lambda r: r.visibility(bool(p["visible"])))
        else:
            log.warning("ignored a %s message", message.type)

    def _track_nav(self, p: dict[str, Any]) -> None:
        for page_id in p.get("closed") or []:
            if isinstance(page_id, int):
                self._routes.pop(page_id, None)
        opened = p.get("opened")
        if p.get("ok") and isinstance(opened, dict) and isinstance(opened.get("page_id"), int):
            self._routes[opened["page_id"]] = str(opened.get("route", ""))

    def _start(self, p: dict[str, Any]) -> None:
        if self.realm is not None:
            self.report(ScriptError("worker.start arrived twice; the second one was ignored"))
            return
        self.app_id = p["app_id"]
        limits = p["limits"]
        time_ms = _bounded(limits, "time_ms", CALL_TIME_LIMIT_S * 1000, *TIME_LIMIT_MS)
        memory_mb = _bounded(limits, "memory_mb", MEMORY_LIMIT_BYTES >> 20, *MEMORY_LIMIT_MB)
        timeout_ms = _bounded(limits, "call_timeout_ms", DEFAULT_TIMEOUT_S * 1000, 100, MAX_TIMEOUT_S * 1000)
        self._call_timeout_s = timeout_ms / 1000
        self.realm = JsRealm(
            time_limit_s=time_ms / 1000, memory_limit_bytes=int(memory_mb) << 20, clock=self._clock
        )
        settings = {
            "appId": self.app_id,
            "system": p["system"],
            "apis": p["apis"],
            "storage": p["storage"],
            "config": p["config"],
            "limits": {"call_timeout_ms": timeout_ms},
        }
        route = str(p["route"]).lstrip("/")
        query = {str(k): v for k, v in p["query"].items()}
        steps: list[Callable[[JsRealm], None]] = [lambda r: r.configure(settings)]
        steps += [
            self._loader(path, text, kind) for path, text, kind in _modules(p["sources"], p["config"], route)
        ]
        steps.append(
            lambda r: r.launch_app({"path": route, "query": query, "scene": 1001, "referrerInfo": {}})
        )
        steps.append(lambda r: r.open_page(route, p["page_id"], query))
        self._routes[p["page_id"]] = route
        for step in steps:
            self._callback(step)
            if self.broken:
                return

    def _loader(self, path: str, text: str, kind: str) -> Callable[[JsRealm], None]:
        def load(realm: JsRealm) -> None:
            try:
                realm.load_module(path, text, kind=kind)
            except BundleError as exc:
                self.report(ScriptError(str(exc), file=path if path.endswith(".js") else f"{path}.js"))

        return load

    # -- one callback: call, jobs, flush ---------------------------------------------------------
    def _callback(self, call: Callable[[JsRealm], None]) -> None:
        realm = self.realm
        if realm is None or self.broken:
            return
        try:
            call(realm)
        except ScriptError as exc:
            self.report(exc)
            if not realm.healthy():
                self.broken = True
                return
        self._flush()

    def _flush(self) -> None:
        """Run jobs and send what the realm emitted; setData callbacks run once their diff is sent."""
        realm = self.realm
        if realm is None:
            return
        for _ in range(MAX_FLUSH_ROUNDS):
            try:
                realm.run_jobs()
            except ScriptError as exc:
                self.report(exc)
            try:
                items = realm.drain()
            except ScriptError as exc:
                self.report(exc)
                self.broken = not realm.healthy()
                return
            for item in items:
                try:
                    self._emit(realm, item)
                except (WireError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    # whatever the app's data looks like, it costs the app an error, never the worker
                    self.report(ScriptError(f"the app produced data the host cannot send: {exc}"[:2000]))
            self._send_held()
            again = False
            if self._flushed_pending and not self._held:
                self._flushed_pending = False
                again = True
                try:
                    realm.after_flush()
                except ScriptError as exc:
                    self.report(exc)
            if self._local:
                again = True
                answers, self._local = self._local, []
                for call_id, ok, result, error in answers:
                    try:
                        realm.api_result(call_id, ok, result, error)
                    except ScriptError as exc:
                        self.report(exc)
            if not again:
                return

    def _emit(self, realm: JsRealm, item: dict[str, Any]) -> None:
        kind = item.get("t")
        if kind == "log":
            self._log(item["level"] if item.get("level") in LOG_LEVELS else "info", str(item["message"]))
        elif kind == "error":
            self.report(realm.script_error(f"{item['message']}\n{item['stack']}"))
        elif kind == "render":
            self._send_held()
            self._count()
            self._send("page.render", "shell", {"page_id": int(item["pageId"]), "data": item["data"]})
        elif kind == "setData":
            self._hold(int(item["pageId"]), str(item.get("comp", "")), item["diff"])
        elif kind == "flushed":
            self._flushed_pending = True
        elif kind == "timer":
            if not self._timers.add(
                int(item["id"]), float(item["ms"]), repeat=bool(item["repeat"]), now=self._clock()
            ):
                self._log("error", "too many timers; the newest was not scheduled")
        elif kind == "clear":
            self._timers.cancel(int(item["id"]))
        elif kind == "call":
            self._call(item)
        elif kind == "cancel":
            if self._calls.pop(int(item["id"])) is not None:
                self._send("api.cancel", "hub", {"call_id": int(item["id"])})
        elif kind == "nav":
            self._nav(item)
        elif kind == "idle" and self._idle_at is None:
            self._idle_at = max(self._clock(), self._idle_ran + IDLE_GAP_S)

    def _call(self, item: dict[str, Any]) -> None:
        call_id, method, args = int(item["id"]), str(item["method"]), item.get("args")
        if method == "$random":
            length = args.get("length") if isinstance(args, dict) else None
            if isinstance(length, int) and 0 < length <= MAX_RANDOM_BYTES:
                self._local.append((call_id, True, {"randomValues": os.urandom(length)}, None))
            else:
                self._local.append((call_id, False, None, {"code": "invalid_args", "message": "bad length"}))
            return
        timeout_ms = item.get("timeoutMs")
        timeout_s = self._call_timeout_s
        if isinstance(timeout_ms, int | float) and not isinstance(timeout_ms, bool):
            timeout_s = min(max(timeout_ms / 1000, 0.001), MAX_TIMEOUT_S)
        payload = {
            "call_id": call_id,
            "method": method,
            "args": from_js(args if isinstance(args, dict) else {}),
        }
        stream = bool(item.get("stream", False))
        deadline = self._clock() + timeout_s
        if not self._calls.add(PendingCall(call_id, "api", method, deadline, stream)):
            message = f"too many calls in flight ({len(self._calls)}); wait for answers before calling again"
            self._local.append((call_id, False, None, {"code": "failed", "message": message}))
            return
        self._count()
        try:
            self._send("api.call", "hub", payload)
        except WireError as exc:  # too big, too deep, not plain data: the call fails, nothing is sent
            self._calls.pop(call_id)
            self._local.append((call_id, False, None, {"code": "invalid_args", "message": str(exc)[:500]}))

    def _nav(self, item: dict[str, Any]) -> None:
        call_id = int(item["id"])
        payload: dict[str, Any] = {"call_id": call_id, "action": str(item["action"])}
        if "url" in item:
            payload["url"] = str(item["url"])
        if "delta" in item:
            payload["delta"] = int(item["delta"])
        self._calls.add(
            PendingCall(call_id, "nav", str(item["action"]), self._clock() + self._call_timeout_s)
        )
        self._count()
        self._send("nav.request", "hub", payload)

    # -- setData: merged per page/component, held back (and merged harder) when over the rate -----
    def _hold(self, page_id: int, comp: str, diff: dict[str, Any]) -> None:
        held = self._held.setdefault((page_id, comp), {})
        for key, value in diff.items():
            if held:
                for old in [k for k in held if k == key or k.startswith((key + ".", key + "["))]:
                    del held[old]
            held[key] = value

    def _send_held(self) -> None:
        while self._held:
            (page_id, comp), diff = next(iter(self._held.items()))
            chunks = self._chunks(page_id, diff)
            if not self._out.allow(self._clock(), len(chunks)):
                return  # over the rate: keep merging until the window reopens
            del self._held[(page_id, comp)]
            for chunk in chunks:
                payload: dict[str, Any] = {"page_id": page_id, "diff": chunk}
                if comp:
                    payload["component"] = comp
                try:
                    self._send("page.setData", "shell", payload)
                except WireError as exc:
                    self.report(ScriptError(f"setData could not be sent: {exc}"[:2000]))

    def _chunks(self, page_id: int, diff: dict[str, Any]) -> list[dict[str, Any]]:
        if len(json.dumps(diff)) <= MAX_DIFF_CHUNK_BYTES:
            return [diff]
        chunks: list[dict[str, Any]] = [{}]
        size = 0
        for key, value in diff.items():
            item = len(json.dumps({key: value}))
            if item > MAX_DIFF_CHUNK_BYTES:
                route = self._routes.get(page_id, str(page_id))
                self._log("error", f"setData on page {route} refused: key {key!r} grew to {item} bytes")
                continue
            if size + item > MAX_DIFF_CHUNK_BYTES and chunks[-1]:
                chunks.append({})
                size = 0
            chunks[-1][key] = value
            size += item
        return [c for c in chunks if c]

    # -- out ---------------------------------------------------------------------------------------
    def _count(self) -> None:
        self._out.allow(self._clock())

    def _log(self, level: str, message: str) -> None:
        if not self._logs.allow(self._clock()):
            self._dropped_logs += 1
            return
        if self._dropped_logs:
            dropped, self._dropped_logs = self._dropped_logs, 0
            self._send("log", "hub", {"level": "warn", "message": f"{dropped} console messages were dropped"})
        self._send("log", "hub", {"level": level, "message": message[:8000]})

    def report(self, exc: ScriptError) -> None:
        payload = {
            "message": exc.message[:8000],
            "file": exc.file[:200],
            "line": exc.line,
            "column": exc.column,
            "stack": exc.stack[:8000],
        }
        self._send("script.error", "hub", payload)


def _fire(timer_id: int) -> Callable[[JsRealm], None]:
    return lambda realm: realm.fire_timer(timer_id)


def _modules(sources: dict[str, Any], config: dict[str, Any], route: str) -> list[tuple[str, str, str]]:
    """(path, text, kind) of the bundle's .js files in load order: plain modules (registered, run on
    their first require), then app.js, the components of ``config.components``, the pages."""
    texts = {str(k).lstrip("/"): v for k, v in sources.items() if isinstance(v, str)}
    pages = [str(r).lstrip("/") for r in config.get("pages", []) if isinstance(r, str)]
    if route not in pages:
        pages.append(route)
    components = config.get("components")
    comp_paths = [str(c).lstrip("/") for c in components] if isinstance(components, dict) else []
    eager = {"app.js"} | {f"{p}.js" for p in pages} | {f"{c}.js" for c in comp_paths}
    out = [
        (path, text, "module") for path, text in texts.items() if path.endswith(".js") and path not in eager
    ]
    if "app.js" in texts:
        out.append(("app.js", texts["app.js"], "app"))
    out.extend((c, texts[f"{c}.js"], "component") for c in comp_paths if f"{c}.js" in texts)
    out.extend((p, texts[f"{p}.js"], "page") for p in pages if f"{p}.js" in texts)
    return out
