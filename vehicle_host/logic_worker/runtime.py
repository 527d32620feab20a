"""The JS realm of one mini-app: the prelude, the bundle's modules, calls in, messages out.

Pure of I/O: sources arrive as text (the worker reads no files). Every JS source is evaluated with
enough leading newlines that its lines get a range of their own in QuickJS's single ``<input>``
file, so a stack trace line maps back to the bundle file and line that threw.

The realm never calls into Python (QuickJS-ng refuses Python callables while a time limit is set):
JS pushes what it wants to say into an outbox that :meth:`JsRealm.drain` returns after every call.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import quickjs

from vehicle_host.errors import BundleError, VehicleHostError

#: Defaults of one realm (``worker.start.limits`` may change them within bounds).
MEMORY_LIMIT_BYTES = 64 * 1024 * 1024
CALL_TIME_LIMIT_S = 1.0
MAX_JOBS_PER_TURN = 100_000
MAX_SOURCE_BYTES = 2 * 1024 * 1024
MAX_TOTAL_LINES = 2_000_000
STACK_LIMIT_BYTES = 512 * 1024

#: The prelude, evaluated in this order in a fresh realm; ``door.js`` seals it.
PRELUDE_FILES = (
    "prelude.js",
    "modules.js",
    "lifecycle.js",
    "component.js",
    "timers.js",
    "fc-core.js",
    "fc-ui.js",
    "fc-storage.js",
    "fc-system.js",
    "fc-app.js",
    "fc-perf.js",
    "fc-animation.js",
    "door.js",
)
PRELUDE_NAME = "<prelude>"
BYTES_KEY = "__vh_bytes__"

_FRAME = re.compile(r"<input>:(\d+):(\d+)")
#: What a bundle .js file is: "module" runs on its first require, the others at once.
MODULE_KINDS = ("module", "app", "page", "component")

_MODULE_PATH = re.compile(r"^[\w@\-.]+(/[\w@\-.]+)*$")


class ScriptError(VehicleHostError):
    """Mini-app JS threw; ``file``/``line``/``column`` locate it in the bundle."""

    def __init__(
        self, message: str, *, file: str = "", line: int = 0, column: int = 0, stack: str = ""
    ) -> None:
        super().__init__(f"{file}:{line}:{column}: {message}" if file else message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.stack = stack


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    first_line: int  # global line of the source's line 1
    lines: int


def to_js(value: Any) -> Any:
    """Plain data the realm can JSON.parse: bytes become ``{"__vh_bytes__": base64}``, NaN null."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {BYTES_KEY: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): to_js(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_js(v) for v in value]
    return value


def from_js(value: Any) -> Any:
    """The reverse of :func:`to_js` for values the realm sends out (api.call args)."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(BYTES_KEY), str):
            try:
                return base64.b64decode(value[BYTES_KEY], validate=True)
            except ValueError:
                return b""
        return {k: from_js(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_js(v) for v in value]
    return value


def _literal(value: Any) -> str:
    """A JS string literal holding ``value`` as JSON text (parsed inside the realm)."""
    return json.dumps(json.dumps(to_js(value), allow_nan=False, separators=(",", ":")))


class JsRealm:
    """One QuickJS context with the prelude loaded; the only door in and out is ``__vh``."""

    def __init__(
        self,
        *,
        time_limit_s: float = CALL_TIME_LIMIT_S,
        memory_limit_bytes: int = MEMORY_LIMIT_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.time_limit_s = time_limit_s
        self._clock = clock
        self._ctx = quickjs.Context()
        self._ctx.set_memory_limit(memory_limit_bytes)
        self._ctx.set_max_stack_size(STACK_LIMIT_BYTES)
        self._sources: list[_Source] = []
        self._next_line = 1
        js = resources.files("vehicle_host.logic_worker").joinpath("js")
        # the prelude runs without a time limit: it is ours, and a loaded machine must not break it
        for name in PRELUDE_FILES:
            self._eval_source(PRELUDE_NAME, js.joinpath(name).read_text(encoding="utf-8"))
        self._ctx.set_time_limit(time_limit_s)

    # -- loading -------------------------------------------------------------------------------
    def configure(self, settings: Mapping[str, Any]) -> None:
        """Hand the realm what ``worker.start`` says: system, apis, storage, limits, config."""
        self._invoke("start", _literal(dict(settings)))

    def load_module(self, path: str, source: str, *, kind: str = "module") -> None:
        """Evaluate one bundle file as a CommonJS module (``require``, ``module``, ``exports``).

        ``kind`` "module" only registers it (it runs on its first ``require``); "app" (app.js; the
        older name "script" is accepted), "page" and "component" run it at once with Page() /
        Component() bound to ``path`` (the module path, with or without ``.js``).
        """
        if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
            raise BundleError(f"{path}: larger than {MAX_SOURCE_BYTES} bytes")
        kind = "app" if kind == "script" else kind
        name = path if path.endswith(".js") else f"{path}.js"
        if kind not in MODULE_KINDS or not _MODULE_PATH.match(name) or ".." in name.split("/"):
            raise BundleError(f"{path}: not a valid module path")
        # the wrapper's header is a line of its own, so the file's line N is the header's line + N
        # (see _eval_source); the source ends on a line of its own so a trailing // comment is harmless
        self._eval_source(
            name,
            f"__vh.define({json.dumps(name)}, {json.dumps(kind)}, function (require, module, exports) {{\n"
            f"{source}\n}});",
        )

    def _eval_source(self, name: str, code: str) -> None:
        # the wrapper's first line holds no user code, so user line N sits at global first_line + N
        wrapped_first = self._next_line
        line_count = code.count("\n") + 1
        if wrapped_first + line_count > MAX_TOTAL_LINES:
            raise BundleError("the mini-app's scripts are too large")
        padding = "\n" * (wrapped_first - 1)
        first_user_line = wrapped_first + (0 if name == PRELUDE_NAME else 1)
        self._sources.append(_Source(name, first_user_line, line_count))
        self._next_line = wrapped_first + line_count
        self._guarded(lambda: self._ctx.eval(padding + code))

    # -- calls into the app --------------------------------------------------------------------
    def launch_app(self, options: dict[str, Any]) -> None:
        self._invoke("launch", _literal(options))

    def open_page(self, route: str, page_id: int, query: dict[str, Any]) -> None:
        self._invoke("openPage", json.dumps(route), str(int(page_id)), _literal(query))

    def painted(self, page_id: int) -> None:
        self._invoke("painted", str(int(page_id)))

    def dispatch_event(self, page_id: int, handler: str, event: dict[str, Any], component: str = "") -> None:
        args = (str(int(page_id)), json.dumps(handler), _literal(event), json.dumps(component))
        self._invoke("event", *args)

    def nav_result(self, payload: dict[str, Any]) -> None:
        self._invoke("navResult", _literal(payload))

    def api_result(self, call_id: int, ok: bool, result: Any = None, error: Any = None) -> None:
        args = (str(int(call_id)), "true" if ok else "false", _literal(result), _literal(error))
        self._invoke("result", *args)

    def api_event(self, call_id: int, data: Any, end: bool) -> None:
        self._invoke("streamEvent", str(int(call_id)), _literal(data), "true" if end else "false")

    def visibility(self, visible: bool) -> None:
        self._invoke("visibility", "true" if visible else "false")

    def fire_timer(self, timer_id: int) -> None:
        self._invoke("fire", str(int(timer_id)))

    def after_flush(self) -> None:
        self._invoke("afterFlush")

    def run_idle(self) -> None:
        """Run the callbacks of requestIdleCallback that are waiting (a bounded batch)."""
        self._invoke("idle")

    def api_names(self) -> list[str]:
        raw = self._guarded(lambda: self._ctx.eval("__vh.names()"))
        return [str(n) for n in json.loads(raw)]

    def eval_for_test(self, code: str) -> Any:
        """Evaluate ``code`` as if it were app code (tests and diagnostics only)."""
        return self._guarded(lambda: self._ctx.eval(code))

    def drain(self) -> list[dict[str, Any]]:
        """Messages the JS emitted since the last drain (log, error, render, setData, timer, call...)."""
        raw = self._guarded(lambda: self._ctx.eval("__vh.drain()"))
        out = json.loads(raw) if isinstance(raw, str) else []
        return [m for m in out if isinstance(m, dict)]

    def run_jobs(self) -> None:
        """Run pending Promise jobs (callbacks, then-chains), within the call time limit."""
        deadline = time.monotonic() + self.time_limit_s
        jobs = 0
        while self._guarded(self._ctx.execute_pending_job):
            jobs += 1
            if jobs > MAX_JOBS_PER_TURN or time.monotonic() > deadline:
                error = ScriptError(
                    f"Promise jobs kept re-queuing themselves ({jobs} jobs); the chain was stopped"
                )
                self._notify(error)
                raise error

    def healthy(self) -> bool:
        """Can the realm still run code? (after an out-of-memory or stack error it may not)."""
        try:
            return bool(self._ctx.eval("__vh.pageCount() >= 0"))
        except Exception:  # any failure at all means the realm is unusable
            return False

    def _invoke(self, name: str, *args: str) -> None:
        # the realm's clock (performance entries, route timings) follows the worker's clock
        code = f"__vh.at({self._clock() * 1000.0!r}); __vh.{name}({', '.join(args)})"
        try:
            self._guarded(lambda: self._ctx.eval(code))
        except ScriptError as exc:
            self._notify(exc)
            raise

    def _notify(self, exc: ScriptError) -> None:
        """Tell App.onError / fc.onError about an error the realm could not catch itself."""
        text = json.dumps(f"{exc.message}\n{exc.stack}")
        try:
            self._ctx.eval(f"__vh.appError({text})")
        except Exception:  # the realm may be unusable; the error is reported to the host anyway
            return

    def _guarded(self, thunk: Callable[[], Any]) -> Any:
        try:
            return thunk()
        except quickjs.JSException as exc:
            raise self.script_error(str(exc)) from None
        except quickjs.StackOverflow:
            raise ScriptError("stack overflow: the script recursed too deeply") from None

    def script_error(self, text: str) -> ScriptError:
        message, _, stack = text.partition("\n")
        if "interrupted" in message:
            message = f"script ran longer than {self.time_limit_s * 1000:g} ms and was stopped"
        elif "out of memory" in message:
            message = "script ran out of memory (the app's memory limit was reached)"
        for match in _FRAME.finditer(stack):
            located = self.locate(int(match.group(1)))
            if located is not None and located[0] != PRELUDE_NAME:
                return ScriptError(
                    message, file=located[0], line=located[1], column=int(match.group(2)), stack=stack
                )
        return ScriptError(message, stack=stack)

    def locate(self, global_line: int) -> tuple[str, int] | None:
        """Map a line of QuickJS's ``<input>`` back to (bundle file, line in that file)."""
        for source in reversed(self._sources):
            if global_line >= source.first_line:
                return source.name, global_line - source.first_line + 1
        return None
