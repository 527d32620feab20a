"""The JS realm of one mini-app: loads its modules, calls into App/Page, drains what the JS emitted.

Pure of I/O except reading the bundle's files. Every JS source is evaluated with enough leading
newlines that its lines get a range of their own in QuickJS's single ``<input>`` file, so a stack
trace line maps back to the bundle file and line that threw.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import quickjs

from vehicle_host.errors import BundleError, VehicleHostError

#: Limits of one realm.
MEMORY_LIMIT_BYTES = 64 * 1024 * 1024
CALL_TIME_LIMIT_S = 2.0
MAX_JOBS_PER_TURN = 100_000
MAX_SOURCE_BYTES = 2 * 1024 * 1024
MAX_TOTAL_LINES = 2_000_000

_FRAME = re.compile(r"<input>:(\d+):(\d+)")


class ScriptError(VehicleHostError):
    """Mini-app JS threw; ``file``/``line``/``column`` locate it in the bundle."""

    def __init__(self, message: str, *, file: str, line: int, column: int, stack: str) -> None:
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


class JsRealm:
    """One QuickJS context with the prelude loaded; the only door in and out is ``__vh``."""

    def __init__(self) -> None:
        self._ctx = quickjs.Context()
        self._ctx.set_memory_limit(MEMORY_LIMIT_BYTES)
        self._ctx.set_time_limit(CALL_TIME_LIMIT_S)
        self._sources: list[_Source] = []
        self._next_line = 1
        prelude = resources.files("vehicle_host.logic_worker").joinpath("js/prelude.js").read_text()
        self._eval_source("<prelude>", prelude)

    # -- loading -------------------------------------------------------------------------------
    def load_module(self, bundle_dir: Path, relative: str, *, route: str | None = None) -> None:
        """Evaluate one bundle file; a page module is wrapped so its ``Page()`` registers ``route``."""
        path = (bundle_dir / relative).resolve()
        if not path.is_relative_to(bundle_dir.resolve()) or not path.is_file():
            raise BundleError(f"{relative}: no such file in the bundle")
        if path.stat().st_size > MAX_SOURCE_BYTES:
            raise BundleError(f"{relative}: larger than {MAX_SOURCE_BYTES} bytes")
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BundleError(f"{relative}: not UTF-8 text") from None
        if route is None:
            self._eval_source(relative, f"(function () {{\n{source}\n}})();")
        else:
            self._eval_source(relative, f"__vh.define({json.dumps(route)}, function () {{\n{source}\n}});")

    def _eval_source(self, name: str, code: str) -> None:
        # the wrapper's first line holds no user code, so user line N sits at global first_line + N
        wrapped_first = self._next_line
        line_count = code.count("\n") + 1
        if wrapped_first + line_count > MAX_TOTAL_LINES:
            raise BundleError("the mini-app's scripts are too large")
        padding = "\n" * (wrapped_first - 1)
        first_user_line = wrapped_first + (0 if name == "<prelude>" else 1)
        self._sources.append(_Source(name, first_user_line, line_count))
        self._next_line = wrapped_first + line_count
        self._call(lambda: self._ctx.eval(padding + code))

    # -- calls into the app --------------------------------------------------------------------
    def launch_app(self, options: dict[str, Any]) -> None:
        self._invoke("launch", json.dumps(options))

    def open_page(self, route: str, page_id: int, query: dict[str, Any]) -> None:
        self._invoke("openPage", route, page_id, json.dumps(query))

    def dispatch_event(self, page_id: int, handler: str, event: dict[str, Any]) -> None:
        self._invoke("event", page_id, handler, json.dumps(event))

    def drain(self) -> list[dict[str, Any]]:
        """Messages the JS emitted since the last drain (setData, render, log)."""
        raw = self._call(lambda: self._ctx.eval("__vh.drain()"))
        out = json.loads(raw) if isinstance(raw, str) else []
        return [m for m in out if isinstance(m, dict)]

    def run_jobs(self) -> None:
        """Run pending Promise jobs (setData callbacks, then-chains), within the call time limit."""
        deadline = time.monotonic() + CALL_TIME_LIMIT_S
        jobs = 0
        while self._call(self._ctx.execute_pending_job):
            jobs += 1
            if jobs > MAX_JOBS_PER_TURN or time.monotonic() > deadline:
                raise ScriptError(
                    f"Promise jobs kept re-queuing themselves ({jobs} jobs); the chain was stopped",
                    file="",
                    line=0,
                    column=0,
                    stack="",
                )

    def _invoke(self, name: str, *args: Any) -> None:
        arguments = ", ".join(json.dumps(a) for a in args)
        self._call(lambda: self._ctx.eval(f"__vh.{name}({arguments})"))

    def _call(self, thunk: Any) -> Any:
        try:
            return thunk()
        except quickjs.JSException as exc:
            raise self.script_error(str(exc)) from None
        except quickjs.StackOverflow:
            raise ScriptError("stack overflow", file="", line=0, column=0, stack="") from None

    def script_error(self, text: str) -> ScriptError:
        message, _, stack = text.partition("\n")
        if "interrupted" in message:
            message = f"script ran longer than {CALL_TIME_LIMIT_S:g} s and was stopped"
        for match in _FRAME.finditer(stack):
            located = self.locate(int(match.group(1)))
            if located is not None and located[0] != "<prelude>":
                return ScriptError(
                    message, file=located[0], line=located[1], column=int(match.group(2)), stack=stack
                )
        return ScriptError(message, file="", line=0, column=0, stack=stack)

    def locate(self, global_line: int) -> tuple[str, int] | None:
        """Map a line of QuickJS's ``<input>`` back to (bundle file, line in that file)."""
        for source in reversed(self._sources):
            if global_line >= source.first_line:
                return source.name, global_line - source.first_line + 1
        return None
