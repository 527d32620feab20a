"""The ``analytics`` plugin: usage events that stay in the car unless the driver says otherwise.

``analytics.track({event, props})`` (permission ``analytics.track``) stores one event in SQLite
(``analytics.sqlite3`` in the plugin's state directory, mode 0600), namespaced by the calling app.
Limits: an event name is 1 to 64 characters (``^[A-Za-z][A-Za-z0-9_.:-]*$``); ``props`` holds at
most 32 keys of at most 64 characters, each value a string of at most 256 characters, a finite
number, a boolean or null, and at most 4,096 bytes as JSON. An app may track at most
``track_per_minute`` events (config, default 600) in any 60 s. **Each app keeps its newest 10,000
events; beyond that the oldest are dropped** (``analytics.summary`` counts them as ``dropped``).

Nothing leaves the car unless all three hold:

1. the app's manifest declares ``vehicle.analytics.upload: true``. The plugin cannot read
   manifests: it takes the flag from the call context when the host passes one (an
   ``analytics_upload`` attribute of :class:`CallContext`), else from the plugin config's
   ``apps_upload`` map (``{"com.example.app": true}``), which the host fills from the manifests;
2. the driver allowed it: ``analytics.setUpload({allowed: true})`` needs the permission
   ``analytics.upload`` with consent, so the gateway asks the driver first; ``allowed: false`` stops
   uploading at once (events stay in the car);
3. the plugin config names an ``upload_url`` (``https://``, or ``http://`` to a loopback address).

The uploader (a background task, every ``upload_interval_s``, default 300 s) posts each such
app's unsent events as JSON ``{app_id, events: [{event, props, at}]}`` in batches of at most
``upload_batch`` (default 500) and marks a batch sent once the server answered 2xx. Redirects and
proxies from the environment are not followed. A failing server is retried later, backing off up
to an hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

from vehicle_host.plugins.contract import (
    NO_ARGS,
    CallContext,
    InvalidArguments,
    PluginContext,
    PluginError,
    StateDB,
    StatePlugin,
    config_number,
    method,
    object_schema,
    stop_task,
)
from vehicle_host.plugins.network import is_loopback

FILENAME = "analytics.sqlite3"
MAX_EVENTS_PER_APP = 10_000
MAX_EVENT_CHARS = 64
MAX_PROPS = 32
MAX_PROP_KEY_CHARS = 64
MAX_PROP_STRING_CHARS = 256
MAX_PROPS_BYTES = 4096
DEFAULT_TRACK_PER_MINUTE = 600
DEFAULT_UPLOAD_INTERVAL_S = 300.0
DEFAULT_BATCH = 500
MAX_BATCH = 1000
MAX_BACKOFF_S = 3600.0
UPLOAD_TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
SUMMARY_TOP = 50
WINDOW_S = 60.0
MAX_RATE_APPS = 1024

EVENT = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
_SCALAR: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_PROP_STRING_CHARS},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
    ]
}


class RateLimited(PluginError):
    code = "busy"


class UploadRefused(PluginError):
    code = "denied"


def check_event(event: Any, props: Any) -> str:
    """``props`` as compact JSON; InvalidArguments says what is wrong with the event."""
    if not isinstance(event, str) or not EVENT.match(event):
        raise InvalidArguments(
            f"event must be a name of 1 to {MAX_EVENT_CHARS} letters, digits, '_', '.', ':' or '-' "
            "starting with a letter"
        )
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise InvalidArguments("props must be an object of names to plain values")
    if len(props) > MAX_PROPS:
        raise InvalidArguments(f"props holds {len(props)} keys; at most {MAX_PROPS} are allowed")
    for key, value in props.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_PROP_KEY_CHARS:
            raise InvalidArguments(f"props keys must be 1 to {MAX_PROP_KEY_CHARS} characters")
        if isinstance(value, str):
            if len(value) > MAX_PROP_STRING_CHARS:
                raise InvalidArguments(
                    f"props[{key[:40]!r}] is longer than {MAX_PROP_STRING_CHARS} characters; shorten it"
                )
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidArguments(f"props[{key[:40]!r}] must be a finite number")
        elif value is not None and not isinstance(value, bool | int | float):
            raise InvalidArguments(f"props[{key[:40]!r}] must be text, a number, true/false or null")
    try:
        text = json.dumps(props, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        size = len(text.encode("utf-8"))
    except (ValueError, UnicodeEncodeError):
        raise InvalidArguments("props must hold valid Unicode text and finite numbers") from None
    if size > MAX_PROPS_BYTES:
        raise InvalidArguments(f"props is {size:,} bytes as JSON; at most {MAX_PROPS_BYTES:,} are allowed")
    return text


def check_upload_url(value: Any) -> str | None:
    """The configured upload URL, or None when unset; a URL that may not be used raises PluginError."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise PluginError(
            "the analytics plugin's upload_url must be an https:// URL of at most 2048 characters"
        )
    url = urllib.parse.urlsplit(value)
    host = url.hostname or ""
    if url.scheme == "https" and host:
        return value
    if url.scheme == "http" and is_loopback(host):
        return value
    raise PluginError(
        "the analytics plugin's upload_url must be https:// (plain http:// only to a loopback address)"
    )


class AnalyticsDB(StateDB):
    """Events and per-app upload settings; synchronous and thread-safe (one connection, one lock)."""

    def __init__(self, path: Path, *, max_events: int = MAX_EVENTS_PER_APP) -> None:
        super().__init__(
            path,
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, app_id TEXT NOT NULL,"
            " event TEXT NOT NULL, props TEXT NOT NULL, at_ms INTEGER NOT NULL, sent INTEGER NOT NULL)",
        )
        self.max_events = max_events
        with self._lock:
            self._db.execute("CREATE INDEX IF NOT EXISTS events_app ON events (app_id, sent, seq)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS apps (app_id TEXT PRIMARY KEY, allowed INTEGER NOT NULL,"
                " declared INTEGER, dropped INTEGER NOT NULL)"
            )

    def _app_row(self, app_id: str) -> None:
        self._db.execute(
            "INSERT INTO apps (app_id, allowed, declared, dropped) VALUES (?, 0, NULL, 0)"
            " ON CONFLICT (app_id) DO NOTHING",
            (app_id,),
        )

    def track(self, app_id: str, event: str, props: str, at_ms: int) -> int:
        """Store one event; returns how many old events were dropped to make room."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._app_row(app_id)
                self._db.execute(
                    "INSERT INTO events (app_id, event, props, at_ms, sent) VALUES (?, ?, ?, ?, 0)",
                    (app_id, event, props, at_ms),
                )
                (count,) = self._db.execute(
                    "SELECT COUNT(*) FROM events WHERE app_id = ?", (app_id,)
                ).fetchone()
                extra = count - self.max_events
                if extra > 0:
                    self._db.execute(
                        "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE app_id = ?"
                        " ORDER BY seq LIMIT ?)",
                        (app_id, extra),
                    )
                    self._db.execute(
                        "UPDATE apps SET dropped = dropped + ? WHERE app_id = ?", (extra, app_id)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return max(0, int(extra))

    def set_declared(self, app_id: str, declared: bool) -> None:
        with self._lock:
            self._app_row(app_id)
            self._db.execute("UPDATE apps SET declared = ? WHERE app_id = ?", (int(declared), app_id))

    def set_allowed(self, app_id: str, allowed: bool) -> None:
        with self._lock:
            self._app_row(app_id)
            self._db.execute("UPDATE apps SET allowed = ? WHERE app_id = ?", (int(allowed), app_id))

    def app(self, app_id: str) -> tuple[bool, bool | None, int]:
        """``(allowed, declared as the host last said or None, dropped)``."""
        with self._lock:
            row = self._db.execute(
                "SELECT allowed, declared, dropped FROM apps WHERE app_id = ?", (app_id,)
            ).fetchone()
        if row is None:
            return False, None, 0
        return bool(row[0]), None if row[1] is None else bool(row[1]), int(row[2])

    def allowed_apps(self) -> list[tuple[str, bool | None]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT app_id, declared FROM apps WHERE allowed = 1 ORDER BY app_id"
            ).fetchall()
        return [(r[0], None if r[1] is None else bool(r[1])) for r in rows]

    def summary(self, app_id: str) -> dict[str, Any]:
        with self._lock:
            total, pending = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(sent = 0), 0) FROM events WHERE app_id = ?", (app_id,)
            ).fetchone()
            counts = self._db.execute(
                "SELECT event, COUNT(*) AS n FROM events WHERE app_id = ? GROUP BY event"
                " ORDER BY n DESC, event LIMIT ?",
                (app_id, SUMMARY_TOP),
            ).fetchall()
            first, last = self._db.execute(
                "SELECT MIN(at_ms), MAX(at_ms) FROM events WHERE app_id = ?", (app_id,)
            ).fetchone()
        return {
            "total": int(total),
            "pending": int(pending),
            "sent": int(total) - int(pending),
            "counts": {event: int(n) for event, n in counts},
            "first": first,
            "last": last,
        }

    def unsent(self, app_id: str, limit: int) -> list[tuple[int, str, str, int]]:
        with self._lock:
            return [
                (int(r[0]), str(r[1]), str(r[2]), int(r[3]))
                for r in self._db.execute(
                    "SELECT seq, event, props, at_ms FROM events WHERE app_id = ? AND sent = 0"
                    " ORDER BY seq LIMIT ?",
                    (app_id, limit),
                )
            ]

    def mark_sent(self, app_id: str, seqs: list[int]) -> None:
        with self._lock:
            self._db.executemany(
                "UPDATE events SET sent = 1 WHERE app_id = ? AND seq = ?", [(app_id, s) for s in seqs]
            )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx answer is a failure: events go only where the config says


def post_json(url: str, body: bytes, timeout: float = UPLOAD_TIMEOUT_S) -> int:
    """POST ``body`` as JSON; the HTTP status (a refused redirect or HTTP error raises OSError)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    request = urllib.request.Request(  # noqa: S310 (the scheme was checked by check_upload_url)
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with opener.open(request, timeout=timeout) as response:
        response.read(MAX_RESPONSE_BYTES)
        return int(response.status)


class AnalyticsPlugin(StatePlugin[AnalyticsDB]):
    name = "analytics"
    version = "1.0.0"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        config = context.config
        self.track_per_minute = int(
            config_number(config, "track_per_minute", DEFAULT_TRACK_PER_MINUTE, 1, 60_000)
        )
        self.interval_s = config_number(config, "upload_interval_s", DEFAULT_UPLOAD_INTERVAL_S, 0.05, 86_400)
        self.batch = int(config_number(config, "upload_batch", DEFAULT_BATCH, 1, MAX_BATCH))
        apps_upload = config.get("apps_upload")
        self.apps_upload: dict[str, bool] = (
            {k: v for k, v in apps_upload.items() if isinstance(k, str) and isinstance(v, bool)}
            if isinstance(apps_upload, dict)
            else {}
        )
        self.upload_url: str | None = None
        self._url_error = ""
        try:
            self.upload_url = check_upload_url(config.get("upload_url"))
        except PluginError as exc:
            self._url_error = str(exc)
        self._recent: dict[str, deque[float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        self._uploading = asyncio.Lock()  # one upload pass at a time: a batch is never sent twice

    async def start(self) -> None:
        await self.open_db(AnalyticsDB, FILENAME)
        if self._url_error:
            self.context.log.error("analytics upload is off: %s", self._url_error)
        if self.upload_url is not None:
            self._task = asyncio.create_task(self._upload_forever())

    async def stop(self) -> None:
        # asyncio.wait_for (3.11) can swallow a cancel that meets a wake-up: the flag ends the loop too
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        await stop_task(task)
        await self.close_db()

    # -- who may upload ---------------------------------------------------------------------------
    async def _note_declared(self, call: CallContext) -> None:
        flag = getattr(call, "analytics_upload", None)
        if isinstance(flag, bool):
            await asyncio.to_thread(self.db.set_declared, call.app_id, flag)

    def declared(self, app_id: str, from_host: bool | None) -> bool:
        """Does the app's manifest declare ``vehicle.analytics.upload: true``?"""
        return from_host if from_host is not None else self.apps_upload.get(app_id) is True

    # -- the uploader -----------------------------------------------------------------------------
    async def _upload_forever(self) -> None:
        delay = self.interval_s
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            if self._stopping:
                break
            try:
                await self.upload_once()
                delay = self.interval_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = min(MAX_BACKOFF_S, max(delay * 2, self.interval_s))
                self.context.log.warning("analytics upload failed; retrying in %.0f s: %s", delay, exc)

    async def upload_once(self) -> dict[str, int]:
        """Upload every permitted app's unsent events; the number sent per app. Raises on failure."""
        async with self._uploading:
            return await self._upload_pass()

    async def _upload_pass(self) -> dict[str, int]:
        sent: dict[str, int] = {}
        if self.upload_url is None:
            return sent
        for app_id, from_host in await asyncio.to_thread(self.db.allowed_apps):
            if not self.declared(app_id, from_host):
                continue
            while rows := await asyncio.to_thread(self.db.unsent, app_id, self.batch):
                events = [{"event": e, "props": json.loads(p), "at": at} for _, e, p, at in rows]
                body = json.dumps({"app_id": app_id, "events": events}, ensure_ascii=False).encode("utf-8")
                try:
                    status = await asyncio.to_thread(post_json, self.upload_url, body)
                except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
                    raise PluginError(f"the analytics server did not take the events: {exc}") from None
                if not 200 <= status < 300:
                    raise PluginError(f"the analytics server answered HTTP {status}")
                await asyncio.to_thread(self.db.mark_sent, app_id, [seq for seq, *_ in rows])
                sent[app_id] = sent.get(app_id, 0) + len(rows)
                if len(rows) < self.batch:
                    break
        return sent

    # -- methods ----------------------------------------------------------------------------------
    def _take_slot(self, app_id: str) -> None:
        now = time.monotonic()
        recent = self._recent.get(app_id)
        if recent is None:
            if len(self._recent) >= MAX_RATE_APPS:
                self._recent.pop(next(iter(self._recent)))
            recent = self._recent[app_id] = deque()
        while recent and recent[0] <= now - WINDOW_S:
            recent.popleft()
        if len(recent) >= self.track_per_minute:
            raise RateLimited(
                f"this app tracked {self.track_per_minute} events in the last minute, the most allowed; "
                "track fewer events (combine them with props)"
            )
        recent.append(now)

    @method(
        "analytics.track",
        permission="analytics.track",
        args={
            "type": "object",
            "properties": {
                "event": {"type": "string", "minLength": 1, "maxLength": MAX_EVENT_CHARS},
                "props": {
                    "type": "object",
                    "maxProperties": MAX_PROPS,
                    "propertyNames": {"maxLength": MAX_PROP_KEY_CHARS},
                    "additionalProperties": _SCALAR,
                },
            },
            "required": ["event"],
        },
        result={"type": "object", "maxProperties": 0},
    )
    async def track(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Record one usage event (kept in the car; the newest 10,000 per app)."""
        props = check_event(args.get("event"), args.get("props"))
        self._take_slot(call.app_id)
        await self._note_declared(call)
        dropped = await asyncio.to_thread(
            self.db.track, call.app_id, args["event"], props, int(time.time() * 1000)
        )
        if dropped:
            self.context.log.debug(
                "dropped old analytics events", extra={"app_id": call.app_id, "n": dropped}
            )
        return {}

    @method(
        "analytics.summary",
        permission="analytics.track",
        args=NO_ARGS,
        result={
            "type": "object",
            "properties": {
                "total": {"type": "integer"},
                "pending": {"type": "integer"},
                "sent": {"type": "integer"},
                "dropped": {"type": "integer"},
                "limit": {"type": "integer"},
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "first": {"type": ["integer", "null"]},
                "last": {"type": ["integer", "null"]},
                "upload": {
                    "type": "object",
                    "properties": {
                        "declared": {"type": "boolean"},
                        "allowed": {"type": "boolean"},
                        "configured": {"type": "boolean"},
                    },
                    "required": ["declared", "allowed", "configured"],
                },
            },
            "required": ["total", "pending", "sent", "dropped", "limit", "counts", "upload"],
        },
    )
    async def summary(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """This app's event counts and whether its events are uploaded."""
        await self._note_declared(call)
        summary = await asyncio.to_thread(self.db.summary, call.app_id)
        allowed, from_host, dropped = await asyncio.to_thread(self.db.app, call.app_id)
        upload = {
            "declared": self.declared(call.app_id, from_host),
            "allowed": allowed,
            "configured": self.upload_url is not None,
        }
        return {**summary, "dropped": dropped, "limit": self.db.max_events, "upload": upload}

    @method(
        "analytics.setUpload",
        permission="analytics.upload",
        consent=True,
        args={
            "type": "object",
            "properties": {"allowed": {"type": "boolean"}},
            "required": ["allowed"],
        },
        result=object_schema({"allowed": {"type": "boolean"}}, ("allowed",)),
    )
    async def set_upload(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Let this app's events be uploaded (the driver is asked first), or stop it."""
        allowed = args.get("allowed")
        if not isinstance(allowed, bool):
            raise InvalidArguments("allowed must be true or false")
        await self._note_declared(call)
        if allowed:
            _, from_host, _ = await asyncio.to_thread(self.db.app, call.app_id)
            if not self.declared(call.app_id, from_host):
                raise UploadRefused(
                    "this app's manifest does not declare vehicle.analytics.upload: true, so its events "
                    "stay in the car; the publisher must declare it in app.json"
                )
        await asyncio.to_thread(self.db.set_allowed, call.app_id, allowed)
        self.context.log.info("analytics upload set", extra={"app_id": call.app_id, "allowed": allowed})
        if allowed:
            self._wake.set()
        return {"allowed": allowed}
