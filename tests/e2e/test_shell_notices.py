"""The shell's notices part (``ui/shell-notices.js``) in the real WebKit window: notification and
progress banners from state keys, drawn as text, bounded, and every other key passed on."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest

from tests.e2e.renderer_harness import shell_window
from vehicle_host.shell import app
from vehicle_host.shell.driver import ShellDriver

pytestmark = pytest.mark.e2e

SOURCE = resources.files("vehicle_host.shell").joinpath("ui/shell-notices.js").read_text(encoding="utf-8")

#: The helpers the part uses from the shell's core (shell.js), as small stand-ins, and a recording
#: status-bar handler standing for shell-status.js's S.onState.
STUB = """(function () {
  var passed = [];
  window.__passed = passed;
  window.__vhShell = {
    state: {},
    el: function (tag, cls, text) {
      var n = document.createElement(tag); if (cls) n.className = cls;
      if (text !== undefined && text !== null) n.textContent = String(text); return n;
    },
    button: function (text, cls, label, onTap) {
      var b = window.__vhShell.el('button', cls, text); if (label) b.setAttribute('aria-label', label);
      b.addEventListener('click', onTap); return b;
    },
    text: function (v, n, f) {
      if (typeof v === 'number' && isFinite(v)) v = String(v);
      if (typeof v !== 'string') return f === undefined ? '' : f;
      return v.length > n ? v.slice(0, n - 1) + '\\u2026' : v;
    },
    appName: function (id) { return id === 'com.test.nav' ? 'Navigator' : id; },
    onState: function (key, value) { passed.push(key); },
  };
  var old = document.getElementById('notices'); if (old) old.remove();
  return true;
})()"""


@pytest.fixture(scope="module")
def window() -> Iterator[ShellDriver]:
    with shell_window() as driver:
        yield driver


@pytest.fixture
def notices(window: ShellDriver) -> ShellDriver:
    assert window.eval(STUB) is True
    window.eval(SOURCE + "\ntrue")
    return window


def state(driver: ShellDriver, key: str, value: Any) -> None:
    driver.eval(f"window.__vhShell.onState({json.dumps(key)}, {json.dumps(value)}); true")


def snapshot(driver: ShellDriver) -> dict[str, Any]:
    return dict(driver.eval("window.__vhShell.noticesSnapshot()"))


def now_ms(driver: ShellDriver) -> int:
    return int(driver.eval("Date.now()"))


def notice(driver: ShellDriver, n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"{n:016x}", "app_id": "com.test.nav", "title": f"Title {n}", "body": "", "level": "info",
            "at": now_ms(driver), **extra}  # fmt: skip


def test_the_part_is_loadable_by_the_shell() -> None:
    match = re.search(r"/\*SHELL_PART:(shell-[a-z]+\.js)\*/", "/*SHELL_PART:shell-notices.js*/")
    assert match is not None and app._PART.pattern == r"/\*SHELL_PART:(shell-[a-z]+\.js)\*/"
    assert app._part(match) == SOURCE  # the shell can embed it (no '</script')


def test_a_notification_is_shown_as_text_with_the_app_name(notices: ShellDriver) -> None:
    hostile = "<img src=x onerror=\"document.title='owned'\">"
    state(
        notices, "notifications.latest", notice(notices, 1, title=hostile, body="Turn left", level="warning")
    )
    shown = snapshot(notices)["notifications"]
    assert shown == [{"id": f"{1:016x}", "app_id": "com.test.nav", "title": hostile, "body": "Turn left",
                      "level": "warning"}]  # fmt: skip
    text = notices.eval("document.getElementById('notices').innerText")
    assert "Navigator" in text and hostile in text and "Turn left" in text
    assert notices.eval("document.querySelectorAll('#notices img').length") == 0
    assert notices.eval("document.querySelector('#notices .notice-card').getAttribute('role')") == "alert"
    box = notices.eval(
        "(function(){var r=document.querySelector('#notices .notice-card').getBoundingClientRect();"
        "return {w:r.width,h:r.height,top:r.top};})()"
    )
    assert box["w"] > 200 and box["h"] >= 48 and box["top"] >= 48  # below the status bar


def test_notifications_are_deduplicated_bounded_stale_replays_ignored_and_dismissable(
    notices: ShellDriver,
) -> None:
    state(notices, "notifications.latest", notice(notices, 1))
    state(notices, "notifications.latest", notice(notices, 1))  # the same id again (republished)
    state(notices, "notifications.latest", notice(notices, 2, at=now_ms(notices) - 600_000))  # a replay
    assert [n["id"] for n in snapshot(notices)["notifications"]] == [f"{1:016x}"]
    for n in range(3, 7):
        state(notices, "notifications.latest", notice(notices, n))
    assert [n["title"] for n in snapshot(notices)["notifications"]] == ["Title 6", "Title 5", "Title 4"]
    notices.eval("document.querySelector('#notices .notice-close').click(); true")
    assert [n["title"] for n in snapshot(notices)["notifications"]] == ["Title 5", "Title 4"]
    state(notices, "notifications.latest", {"id": 7, "title": "no id"})  # malformed: ignored
    state(notices, "notifications.latest", notice(notices, 8, level="<b>", title="x" * 500))
    latest = snapshot(notices)["notifications"][0]
    assert latest["level"] == "info" and len(latest["title"]) == 80


def test_progress_banners_follow_their_state_key(notices: ShellDriver) -> None:
    state(
        notices, "updates.progress", {"title": "Downloading map", "done": 2, "total": 5, "status": "running"}
    )
    state(notices, "backup.progress", {"title": "Backup", "status": "running"})  # no counts: indeterminate
    progress = snapshot(notices)["progress"]
    assert progress[0] == {"key": "updates.progress", "title": "Downloading map", "done": 2, "total": 5,
                           "status": "running", "percent": 40}  # fmt: skip
    assert progress[1]["percent"] is None
    bar = "document.querySelector('[data-key=\"updates.progress\"] .progress-bar')"
    assert notices.eval(f"{bar}.style.width") == "40%"
    assert notices.eval(f"{bar}.getAttribute('aria-valuenow')") == "40"
    state(notices, "updates.progress", {"title": "Downloading map", "done": 5, "total": 5, "status": "done"})
    state(notices, "backup.progress", {"title": "Backup", "done": 1, "total": 3, "status": "failed"})
    progress = snapshot(notices)["progress"]
    assert [(p["status"], p["percent"]) for p in progress] == [("done", 100), ("failed", 33)]
    text = notices.eval("document.getElementById('notices').innerText")
    assert "Done \u00b7 5 of 5" in text and "Failed \u00b7 1 of 3" in text
    state(notices, "ghost.progress", {"title": "Old", "status": "done"})  # an end without a start
    assert [p["key"] for p in snapshot(notices)["progress"]] == ["updates.progress", "backup.progress"]


def test_progress_banners_are_bounded_and_other_keys_pass_through(notices: ShellDriver) -> None:
    for n in range(6):
        state(notices, f"job{n}.progress", {"title": f"Job {n}", "done": n, "total": 10, "status": "running"})
    assert [p["key"] for p in snapshot(notices)["progress"]] == [f"job{n}.progress" for n in range(4)]
    state(notices, "job0.progress", {"title": "Job 0", "done": 10, "total": 10, "status": "done"})
    state(notices, "job9.progress", {"title": "Job 9", "done": 0, "total": 10, "status": "running"})
    assert [p["key"] for p in snapshot(notices)["progress"]][
        -1
    ] == "job9.progress"  # a finished one made room
    assert "job0.progress" not in [p["key"] for p in snapshot(notices)["progress"]]
    state(notices, "vehicle", {"parked": True})
    state(notices, "clipboard.read", {"app_id": "com.x", "at": 1})
    state(notices, "progress", {"title": "not a progress key"})
    assert notices.eval("window.__passed") == ["vehicle", "clipboard.read", "progress"]
