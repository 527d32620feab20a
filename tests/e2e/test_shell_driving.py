"""Driving lockout, launcher availability, the app-info page, themes and layout, in the real window
against a fake hub (see test_shell_runtime_ui.py); taps are real X clicks (xdotool)."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.e2e.test_shell_runtime_ui import Answer, FakeHub, Shell
from tests.e2e.window import shell_process
from vehicle_host.errors import HostTimeoutError
from vehicle_host.shell.app import LOCKOUT_ENV
from vehicle_host.shell.driver import is_uniform
from vehicle_host.shell.xvfb import VirtualDisplay

pytestmark = pytest.mark.e2e
ARTIFACTS = REPO / "artifacts" / "e2e"
SAFE = "org.test.safe"
DIAG = "org.test.diag"
OLD = "org.test.old"
APPS: list[dict[str, Any]] = [
    {"id": SAFE, "name": "Media", "version": "1.0.0", "group": "driver", "publisher": "tests",
     "drivingSafe": True, "compatible": True, "icon": ""},
    {"id": DIAG, "name": "Diagnostics", "version": "2.1.0", "group": "dealer", "publisher": "Sample Motors",
     "drivingSafe": False, "compatible": True, "icon": ""},
    {"id": OLD, "name": "Old App", "version": "0.1.0", "group": "partner", "publisher": "tests",
     "drivingSafe": True, "compatible": False, "icon": ""},
]  # fmt: skip
PERMISSIONS = {DIAG: ["vehicle.diagnostics.read", "vehicle.diagnostics.clear", "vehicle.signals"]}
GRANTS: dict[str, dict[str, bool | None]] = {DIAG: {"vehicle.diagnostics.read": True}}


def app_info(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    app = next((a for a in APPS if a["id"] == payload["app_id"]), None)
    if app is None:
        return "app.info.result", {"info": {"app_id": payload["app_id"], "error": "not installed"}}
    grants = GRANTS.get(app["id"], {})
    info = {
        "app_id": app["id"], "name": app["name"], "version": app["version"], "publisher": app["publisher"],
        "group": app["group"], "drivingSafe": app["drivingSafe"], "network": [],
        "permissions": [{"name": p, "granted": grants.get(p)} for p in PERMISSIONS.get(app["id"], [])],
        "storage": {"keys": ["a", "b"], "currentSize": 2048, "limitSize": 10 * 1024 * 1024},
    }  # fmt: skip
    return "app.info.result", {"info": info}


def grant_set(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    GRANTS.setdefault(payload["app_id"], {})[payload["permission"]] = payload["granted"]
    return "grant.set.result", {"ok": True}


@contextlib.contextmanager
def shell_window(
    size: tuple[int, int], *, apps: list[dict[str, Any]], env: dict[str, str] | None = None
) -> Iterator[Shell]:
    """A real shell window of ``size`` on its own virtual display, against a fake hub."""
    root = Path(tempfile.mkdtemp(prefix="vh-drv-"))
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    answers: dict[str, Answer] = {"app.info": app_info, "grant.set": grant_set}
    hub = FakeHub(f"ipc://{runtime / 'hub.sock'}", apps=apps, answers=answers)
    try:
        with (
            VirtualDisplay(*size) as display,
            shell_process(root, runtime, display.display, size=size, env=env) as driver,
        ):
            driver.wait_for(
                lambda s: s["online"] and s["apps"] == len(apps), what="the shell to list the apps"
            )
            yield Shell(hub, driver)
    finally:
        hub.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def shell() -> Iterator[Shell]:
    with shell_window((800, 480), apps=APPS, env={LOCKOUT_ENV: "10"}) as window:
        yield window


def vehicle(shell: Shell, speed: float, **extra: Any) -> None:
    value = {"speed_kmh": speed, "gear": "D" if speed else "P", "ignition": True, "parked": False, **extra}
    shell.hub.push("state.changed", {"key": "vehicle", "value": value})
    shell.driver.wait_for(
        lambda s: s["vehicle"] is not None and s["vehicle"]["speed_kmh"] == round(speed), what="the speed"
    )


@pytest.fixture
def parked(shell: Shell) -> Iterator[Shell]:
    vehicle(shell, 0, parked=True)
    shell.hub.push("state.changed", {"key": "can.adapter", "value": {"present": True, "channel": "can0"}})
    shell.driver.eval("vh.closeAll(); vh.home()")
    shell.driver.wait_for(
        lambda s: s["view"] == "launcher" and not s["running"] and bool((s["adapter"] or {}).get("present")),
        what="the launcher",
    )
    shell.hub.clear()
    yield shell
    vehicle(shell, 0, parked=True)
    shell.driver.eval("vh.closeAll(); vh.home(); vh.setTheme('day')")


def tap(shell: Shell, selector: str) -> None:
    """A real tap on an element of the shell page, scrolled into view first (the info page scrolls)."""
    shell.driver.eval(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}})")
    shell.driver.tap_selector(selector)


def open_diag(shell: Shell) -> int:
    shell.driver.tap_selector(f'[data-app-id="{DIAG}"]')
    shell.hub.expect("app.launch", app_id=DIAG)
    return shell.open_page(DIAG, "pages/index/index", "Diagnostics", "Fault codes")


def test_lockout_covers_an_unsafe_app_and_lifts_with_hysteresis(parked: Shell) -> None:
    shell, driver = parked, parked.driver
    page_id = open_diag(shell)
    vehicle(shell, 50)
    snap = driver.wait_for(lambda s: s["covered"], what="the lockout cover")
    assert snap["lockout"] == {"active": True, "reason": "Driving at 50 km/h"}
    assert snap["appId"] == DIAG and snap["pageId"] == page_id  # the page stays underneath
    text = driver.eval("document.getElementById('lockout').textContent")
    assert "Paused while driving" in text and "Diagnostics continues when you stop" in text
    assert not is_uniform(driver.screenshot(ARTIFACTS / "shell-lockout.png"))
    # the page's frame is alive under the cover: its data still reaches the renderer
    shell.hub.push("page.setData", {"page_id": page_id, "diff": {"n": 77}}, source=f"app:{DIAG}")
    driver.wait_for(lambda s: "Fault codes 77" in driver.inspect()["text"], what="the hidden page to update")
    vehicle(shell, 8)  # below 10 km/h but not below 10 - 3: still paused
    assert driver.snapshot()["covered"]
    vehicle(shell, 6)
    assert driver.wait_for(lambda s: not s["covered"])["lockout"] == {"active": False, "reason": None}
    vehicle(shell, 11)
    driver.wait_for(lambda s: s["covered"], what="the cover again")
    vehicle(shell, 30, parked=True)  # parked lifts it whatever the speed signal says
    assert not driver.wait_for(lambda s: not s["covered"])["lockout"]["active"]
    vehicle(shell, 50, stale=True)  # stale data counts as not moving
    assert not driver.snapshot()["lockout"]["active"]
    vehicle(shell, 50)
    driver.wait_for(lambda s: s["covered"], what="the cover")
    vehicle(shell, 0)
    driver.wait_for(lambda s: not s["covered"], what="the cover to lift at 0 km/h")


def test_driving_disables_unsafe_tiles_with_a_reason_and_home_still_works(parked: Shell) -> None:
    shell, driver = parked, parked.driver
    open_diag(shell)
    vehicle(shell, 50)
    driver.wait_for(lambda s: s["covered"], what="the lockout cover")
    driver.tap_selector("#lockout-home")  # the driver can always go home
    snap = driver.wait_for(lambda s: s["view"] == "launcher", what="the launcher")
    assert snap["unavailable"][DIAG].startswith("Paused while driving")
    assert snap["unavailable"][OLD].startswith("Not compatible")
    assert SAFE not in snap["unavailable"] and snap["recent"] == [DIAG]
    assert driver.eval(f"document.getElementById('tile-{DIAG}').getAttribute('aria-disabled')") == "true"
    driver.tap_selector(f'[data-app-id="{DIAG}"]')
    notice = driver.wait_for(lambda s: s["notice"] is not None, what="the reason")["notice"]
    assert notice == "Paused while driving \u2014 Diagnostics opens when you stop"
    assert driver.snapshot()["view"] == "launcher"
    driver.tap_selector(f'[data-app-id="{SAFE}"]')  # a driving-safe app opens while driving
    shell.hub.expect("app.launch", app_id=SAFE)
    shell.open_page(SAFE, "pages/index/index", "Media", "Now playing")
    assert not driver.snapshot()["covered"]
    driver.eval("vh.home()")
    # the recent strip: most recent first, and its close button closes the app
    assert driver.wait_for(lambda s: s["view"] == "launcher")["recent"] == [SAFE, DIAG]
    driver.tap_selector(f'[data-close-id="{DIAG}"]')
    shell.hub.expect("app.close", app_id=DIAG)
    assert driver.wait_for(lambda s: s["recent"] == [SAFE], what="the strip to drop the closed app")
    vehicle(shell, 0, parked=True)
    shell.hub.push("state.changed", {"key": "can.adapter", "value": {"present": False, "channel": "can0"}})
    snap = driver.wait_for(
        lambda s: s["adapter"] is not None and not s["adapter"]["present"], what="no adapter"
    )
    assert snap["unavailable"][DIAG] == "CAN adapter not connected"  # from app.info's permissions
    assert not snap["lockout"]["active"]
    assert not is_uniform(driver.screenshot(ARTIFACTS / "shell-launcher-unavailable.png"))


def test_app_info_page_revokes_denies_and_allows(parked: Shell) -> None:
    shell, driver = parked, parked.driver
    driver.tap_selector(f'[data-info-id="{DIAG}"]')
    snap = driver.wait_for(lambda s: s["info"] is not None and s["info"]["status"] == "ok", what="app info")
    assert snap["view"] == "info" and snap["info"]["name"] == "Diagnostics"
    body = driver.eval("document.getElementById('info-body').textContent")
    assert "2.1.0" in body and "Sample Motors" in body and "2.0 KB of 10.0 MB (2 keys)" in body
    assert "Read fault codes and vehicle data" in body and "Allowed" in body
    assert not is_uniform(driver.screenshot(ARTIFACTS / "shell-app-info.png"))
    read = '[data-permission="vehicle.diagnostics.read"]'
    tap(shell, f'{read} [data-grant="null"]')  # "Ask again": forget the answer
    request = shell.hub.expect("grant.set", app_id=DIAG, permission="vehicle.diagnostics.read")
    assert request.payload["granted"] is None
    driver.wait_for(
        lambda s: s["info"]["permissions"][0] == {"name": "vehicle.diagnostics.read", "granted": None},
        what="the page to show the forgotten answer",
    )
    tap(shell, '[data-permission="vehicle.diagnostics.clear"] [data-grant="false"]')
    assert shell.hub.expect("grant.set", permission="vehicle.diagnostics.clear").payload["granted"] is False
    driver.wait_for(lambda s: s["info"]["permissions"][1]["granted"] is False, what="the denial shown")
    tap(shell, '[data-permission="vehicle.signals"] [data-grant="true"]')
    assert shell.hub.expect("grant.set", permission="vehicle.signals").payload["granted"] is True
    driver.tap_selector("#info-back")
    assert driver.wait_for(lambda s: s["view"] == "launcher")["info"] is None
    # from the running app's chrome, and back to the app
    open_diag(shell)
    driver.tap_selector("#app-info")
    driver.wait_for(lambda s: s["view"] == "info" and s["info"]["status"] == "ok", what="info from the app")
    driver.tap_selector("#info-back")
    assert driver.wait_for(lambda s: s["view"] == "app")["appId"] == DIAG


def test_night_theme_switch_and_headlights(parked: Shell) -> None:
    shell, driver = parked, parked.driver
    assert driver.snapshot()["theme"] == "day"
    driver.tap_selector("#theme")
    assert driver.wait_for(lambda s: s["theme"] == "night")["theme"] == "night"
    assert driver.eval("document.body.className") == "night"
    assert driver.eval("document.getElementById('theme').getAttribute('aria-label')") == "Switch to day theme"
    assert not is_uniform(driver.screenshot(ARTIFACTS / "shell-night.png"))
    background = driver.eval("getComputedStyle(document.body).backgroundColor")
    driver.tap_selector("#theme")
    driver.wait_for(lambda s: s["theme"] == "day")
    assert driver.eval("getComputedStyle(document.body).backgroundColor") != background
    vehicle(shell, 0, parked=True, headlights=True)
    driver.wait_for(lambda s: s["theme"] == "night", what="headlights to choose night")
    vehicle(shell, 0, parked=True, headlights=False)
    driver.wait_for(lambda s: s["theme"] == "day", what="day again")


def test_every_control_is_labelled_and_at_least_48_px_at_800x480(parked: Shell) -> None:
    check_controls(parked)


def check_controls(shell: Shell) -> None:
    """Launcher, app chrome with a consent dialog, and the info page: no control under 48 px, none
    without a label."""
    driver = shell.driver
    seen: list[dict[str, Any]] = []
    open_diag(shell)
    driver.eval("vh.home()")
    driver.wait_for(lambda s: s["view"] == "launcher" and s["recent"], what="the launcher with recents")
    seen += driver.eval("vh.controls()")
    driver.tap_selector(f'[data-app-id="{DIAG}"]')
    driver.wait_for(lambda s: s["view"] == "app")
    request = shell.ui(DIAG, "consent", {"app_name": "Diagnostics", "permission": "vehicle.signals"})
    driver.wait_for_dialog("consent")
    seen += driver.eval("vh.controls()")
    driver.tap_dialog_button("Allow once")
    assert shell.answer(request) == {"granted": True, "remember": False}
    driver.tap_selector("#app-info")
    driver.wait_for(lambda s: s["view"] == "info" and s["info"]["status"] == "ok", what="info")
    seen += driver.eval("vh.controls()")
    driver.tap_selector("#info-back")
    assert len(seen) > 15
    small = [c for c in seen if c["w"] < 48 or c["h"] < 48]
    unlabelled = [c for c in seen if not c["label"]]
    assert small == [] and unlabelled == []
    with pytest.raises(HostTimeoutError):  # nothing else was sent for the layout walk
        shell.hub.expect("app.launch", app_id=SAFE, timeout=0.2)


def test_every_control_is_labelled_and_at_least_48_px_at_1280x720() -> None:
    with shell_window((1280, 720), apps=APPS) as wide:
        wide.hub.push("state.changed", {"key": "can.adapter", "value": {"present": True, "channel": "can0"}})
        wide.driver.wait_for(lambda s: s["adapter"] is not None, what="the adapter state")
        shot = wide.driver.screenshot(ARTIFACTS / "shell-launcher-1280x720.png")
        assert not is_uniform(shot)
        assert wide.driver.eval("[window.innerWidth, window.innerHeight]") == [1280, 720]
        check_controls(wide)
