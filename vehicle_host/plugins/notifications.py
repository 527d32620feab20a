"""The ``notifications`` plugin: banners and reminders from mini-apps (``fc.notifications.*``).

``notifications.show({title, body, level})`` (permission ``notifications.post``) publishes the state
``"notifications.latest"`` ``{id, app_id, title, body, level, at}`` (``at``: Unix ms); the shell
draws it as a banner naming the app. Titles hold at most 80 characters, bodies 500; ``level`` is
``info`` (default), ``success``, ``warning`` or ``error``. An app may show at most
``show_per_minute`` (config, default 6) notifications in any 60 s; more are refused with
``busy`` saying when to retry.

``notifications.schedule({title, body, at, level?})`` keeps a reminder in SQLite
(``notifications.sqlite3``, mode 0600) until ``at`` (Unix ms, at most a year ahead); a background
task publishes it as ``"notifications.latest"`` when it is due, also when the head unit was off at
that moment: reminders that fell due while the plugin was not running are shown, oldest first,
as soon as it starts. Delivery is at least once (a reminder is removed after it was published).
An app keeps at most 50 pending reminders; ``notifications.cancel({id})`` and
``notifications.list()`` see only the calling app's reminders.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
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
    config_integer,
    method,
    object_schema,
    stop_task,
)
from vehicle_host.plugins.contract import now_ms as _now_ms  # tests set the clock here

FILENAME = "notifications.sqlite3"
STATE_KEY = "notifications.latest"
MAX_TITLE_CHARS = 80
MAX_BODY_CHARS = 500
MAX_PENDING_PER_APP = 50
MAX_AHEAD_MS = 366 * 24 * 3600 * 1000
#: A reminder a little in the past (the caller's clock, the trip over the wire) is shown at once.
PAST_GRACE_MS = 60_000
DEFAULT_SHOW_PER_MINUTE = 6
WINDOW_S = 60.0
MAX_RATE_APPS = 1024
#: How often the reminder task looks again even when nothing changed (the wall clock may jump).
MAX_SLEEP_S = 30.0
LEVELS = ("info", "success", "warning", "error")

_TITLE = {"type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS}
_BODY = {"type": "string", "maxLength": MAX_BODY_CHARS}
_LEVEL = {"enum": list(LEVELS)}
_ID = {"type": "string", "pattern": "^[0-9a-f]{16}$"}
_AT = {"type": "integer", "minimum": 0}
_REMINDER: dict[str, Any] = object_schema(
    {"id": _ID, "title": _TITLE, "body": _BODY, "level": _LEVEL, "at": _AT},
    ("id", "title", "body", "level", "at"),
)


class RateLimited(PluginError):
    code = "busy"


class TooManyReminders(PluginError):
    code = "failed"


def check_text(args: dict[str, Any]) -> tuple[str, str, str]:
    """``(title, body, level)`` from call arguments; InvalidArguments says what is wrong."""
    title, body, level = args.get("title"), args.get("body", ""), args.get("level", "info")
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE_CHARS:
        raise InvalidArguments(f"title must be text of 1 to {MAX_TITLE_CHARS} characters")
    if not isinstance(body, str) or len(body) > MAX_BODY_CHARS:
        raise InvalidArguments(f"body must be text of at most {MAX_BODY_CHARS} characters; shorten it")
    if level not in LEVELS:
        raise InvalidArguments(f"level must be one of {', '.join(LEVELS)}")
    for text in (title, body):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArguments("title and body must be valid Unicode text") from None
    return title, body, level


class ReminderDB(StateDB):
    """Pending reminders, synchronous and thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            "CREATE TABLE IF NOT EXISTS reminders (id TEXT PRIMARY KEY, app_id TEXT NOT NULL,"
            " title TEXT NOT NULL, body TEXT NOT NULL, level TEXT NOT NULL, at_ms INTEGER NOT NULL)",
        )

    def add(self, app_id: str, reminder: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (count,) = self._db.execute(
                    "SELECT COUNT(*) FROM reminders WHERE app_id = ?", (app_id,)
                ).fetchone()
                if count >= MAX_PENDING_PER_APP:
                    raise TooManyReminders(
                        f"this app already has {MAX_PENDING_PER_APP} pending reminders; cancel some "
                        "(notifications.cancel) before scheduling more"
                    )
                self._db.execute(
                    "INSERT INTO reminders (id, app_id, title, body, level, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        reminder["id"],
                        app_id,
                        reminder["title"],
                        reminder["body"],
                        reminder["level"],
                        reminder["at"],
                    ),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def cancel(self, app_id: str, reminder_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM reminders WHERE app_id = ? AND id = ?", (app_id, reminder_id)
            )
            return cursor.rowcount > 0

    def pending(self, app_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, title, body, level, at_ms FROM reminders WHERE app_id = ? ORDER BY at_ms, id",
                (app_id,),
            ).fetchall()
        return [{"id": r[0], "title": r[1], "body": r[2], "level": r[3], "at": r[4]} for r in rows]

    def due(self, now_ms: int, limit: int = 64) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, app_id, title, body, level, at_ms FROM reminders WHERE at_ms <= ?"
                " ORDER BY at_ms, id LIMIT ?",
                (now_ms, limit),
            ).fetchall()
        return [
            {"id": r[0], "app_id": r[1], "title": r[2], "body": r[3], "level": r[4], "at": r[5]} for r in rows
        ]

    def next_at(self) -> int | None:
        with self._lock:
            (value,) = self._db.execute("SELECT MIN(at_ms) FROM reminders").fetchone()
        return int(value) if value is not None else None

    def delivered(self, reminder_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM reminders WHERE id = ?", (reminder_id,))


class NotificationsPlugin(StatePlugin[ReminderDB]):
    name = "notifications"
    version = "1.0.0"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.show_per_minute = config_integer(
            context.config, "show_per_minute", DEFAULT_SHOW_PER_MINUTE, 1, 600
        )
        self._shown: dict[str, deque[float]] = {}  # app id -> monotonic times of recent shows
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        await self.open_db(ReminderDB, FILENAME)
        self._task = asyncio.create_task(self._deliver_forever())

    async def stop(self) -> None:
        # asyncio.wait_for (3.11) can swallow a cancel that meets a wake-up: the flag ends the loop too
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        await stop_task(task)
        await self.close_db()

    # -- reminders coming due ---------------------------------------------------------------------
    async def _deliver_forever(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                await self.deliver_due()
                failures = 0
                next_at = await asyncio.to_thread(self.db.next_at)
                delay = MAX_SLEEP_S if next_at is None else (next_at - _now_ms()) / 1000
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                self.context.log.exception("reminders could not be delivered; retrying")
                delay = min(60.0, 2.0**failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(delay, MAX_SLEEP_S)))

    async def deliver_due(self) -> int:
        """Publish every reminder that is due (oldest first); returns how many were delivered."""
        delivered = 0
        while batch := await asyncio.to_thread(self.db.due, _now_ms()):
            for reminder in batch:
                await self.context.publish_state(STATE_KEY, reminder)
                await asyncio.to_thread(self.db.delivered, reminder["id"])
                delivered += 1
        return delivered

    # -- methods ----------------------------------------------------------------------------------
    def _take_slot(self, app_id: str) -> None:
        now = time.monotonic()
        recent = self._shown.get(app_id)
        if recent is None:
            if len(self._shown) >= MAX_RATE_APPS:  # forget apps that have been quiet longest
                for quiet in [
                    a for a, times in self._shown.items() if not times or times[-1] < now - WINDOW_S
                ]:
                    del self._shown[quiet]
                if len(self._shown) >= MAX_RATE_APPS:
                    self._shown.pop(next(iter(self._shown)))
            recent = self._shown[app_id] = deque()
        while recent and recent[0] <= now - WINDOW_S:
            recent.popleft()
        if len(recent) >= self.show_per_minute:
            wait_s = max(1, int(recent[0] + WINDOW_S - now + 0.999))
            raise RateLimited(
                f"this app showed {self.show_per_minute} notifications in the last minute, the most "
                f"allowed; try again in {wait_s} s"
            )
        recent.append(now)

    @method(
        "notifications.show",
        permission="notifications.post",
        args={
            "type": "object",
            "properties": {"title": _TITLE, "body": _BODY, "level": _LEVEL},
            "required": ["title"],
        },
        result=object_schema({"id": _ID}, ("id",)),
    )
    async def show(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Show a banner to the driver now."""
        title, body, level = check_text(args)
        self._take_slot(call.app_id)
        notice = {
            "id": secrets.token_hex(8),
            "app_id": call.app_id,
            "title": title,
            "body": body,
            "level": level,
            "at": _now_ms(),
        }
        await self.context.publish_state(STATE_KEY, notice)
        return {"id": notice["id"]}

    @method(
        "notifications.schedule",
        permission="notifications.post",
        args={
            "type": "object",
            "properties": {"title": _TITLE, "body": _BODY, "level": _LEVEL, "at": _AT},
            "required": ["title", "at"],
        },
        result=_REMINDER,
    )
    async def schedule(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Show a banner at a later time (Unix ms), also after the head unit was off."""
        title, body, level = check_text(args)
        at, now = args.get("at"), _now_ms()
        if not isinstance(at, int) or isinstance(at, bool):
            raise InvalidArguments("at must be a time in Unix milliseconds (an integer)")
        if at < now - PAST_GRACE_MS:
            raise InvalidArguments("at is in the past; give a future time in Unix milliseconds")
        if at > now + MAX_AHEAD_MS:
            raise InvalidArguments("at is more than a year ahead; reminders may be at most a year ahead")
        reminder = {"id": secrets.token_hex(8), "title": title, "body": body, "level": level, "at": at}
        await asyncio.to_thread(self.db.add, call.app_id, reminder)
        self._wake.set()
        return reminder

    @method(
        "notifications.cancel",
        permission="notifications.post",
        args={"type": "object", "properties": {"id": _ID}, "required": ["id"]},
        result=object_schema({"cancelled": {"type": "boolean"}}, ("cancelled",)),
    )
    async def cancel(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Cancel one of this app's pending reminders (``cancelled`` false: there was none)."""
        reminder_id = args.get("id")
        if not isinstance(reminder_id, str) or len(reminder_id) > 64:
            raise InvalidArguments("id must be the id notifications.schedule answered")
        cancelled = await asyncio.to_thread(self.db.cancel, call.app_id, reminder_id)
        self._wake.set()
        return {"cancelled": cancelled}

    @method(
        "notifications.list",
        permission="notifications.post",
        args=NO_ARGS,
        result={
            "type": "object",
            "properties": {
                "reminders": {"type": "array", "items": _REMINDER, "maxItems": MAX_PENDING_PER_APP}
            },
            "required": ["reminders"],
            "additionalProperties": False,
        },
    )
    async def list_reminders(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """This app's pending reminders, soonest first."""
        return {"reminders": await asyncio.to_thread(self.db.pending, call.app_id)}
