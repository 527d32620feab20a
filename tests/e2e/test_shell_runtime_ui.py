"""The shell's runtime UI in the real window, against a small fake hub on the shell's socket.

The fake hub is a ZeroMQ ROUTER bound on ``hub.sock`` in the shell's runtime directory: it answers
``hello`` and ``app.list``, pushes page.open / page.close / page.render / ui.request / state.changed,
and records what the shell sends. Taps are real X clicks (xdotool) on the pywebview GTK window.
"""

from __future__ import annotations

import json
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.conftest import REPO
from tests.e2e.window import shell_process
from vehicle_host.bundles.wxml import compile_wxml
from vehicle_host.errors import HostTimeoutError
from vehicle_host.shell.driver import ShellDriver, is_uniform
from vehicle_host.shell.hub_link import FROM_PAGE, HubLink
from vehicle_host.shell.xvfb import VirtualDisplay
from vehicle_host.wire import API_LEVEL, Envelope, decode, encode

pytestmark = pytest.mark.e2e
ARTIFACTS = REPO / "artifacts" / "e2e"
TABS = "org.test.tabs"
OTHER = "org.test.other"
APPS = [
    {"id": TABS, "name": "Tab Demo", "version": "1.0.0", "group": "driver", "publisher": "tests",
     "drivingSafe": True, "compatible": True, "icon": ""},
    {"id": OTHER, "name": "Other App", "version": "1.0.0", "group": "driver", "publisher": "tests",
     "drivingSafe": True, "compatible": True, "icon": ""},
]  # fmt: skip
TAB_BAR = {
    "color": "#8aa0b6",
    "selectedColor": "#ffd37a",
    "backgroundColor": "#10161d",
    "list": [
        {"pagePath": "pages/home/home", "text": "Home"},
        {"pagePath": "pages/settings/settings", "text": "Settings"},
    ],
}


Answer = Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]


class FakeHub:
    """A ROUTER on the shell's hub endpoint, run by one thread (ZeroMQ sockets are not thread-safe).

    ``apps`` is what app.list lists; ``answers`` maps a request type to a function of its payload
    giving the reply's type and payload (such requests are recorded as well).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        apps: list[dict[str, Any]] | None = None,
        answers: dict[str, Answer] | None = None,
    ) -> None:
        self.apps = APPS if apps is None else apps
        self._answers = answers or {}
        self._sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(endpoint)
        self._out: queue.Queue[Envelope] = queue.Queue()
        self._received: list[Envelope] = []
        self._cond = threading.Condition()
        self._shell: bytes | None = None
        self._ids = iter(range(1_000_000, 2_000_000))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-hub", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._sock.poll(20):
                peer, data = self._sock.recv_multipart()
                message = decode(data)
                if message.type == "hello":
                    self._shell = peer
                    reply = message.reply("hello.ok", {"api_level": API_LEVEL, "hub_version": "fake"})
                    self._sock.send_multipart([peer, encode(reply)])
                elif message.type == "app.list":
                    listing = message.reply("app.list.result", {"apps": self.apps})
                    self._sock.send_multipart([peer, encode(listing)])
                elif message.type == "hub.stats":
                    stats = message.reply("hub.stats.result", {"stats": {"workers": {}}})
                    self._sock.send_multipart([peer, encode(stats)])
                else:
                    if message.type in self._answers:
                        type_, payload = self._answers[message.type](dict(message.payload))
                        self._sock.send_multipart([peer, encode(message.reply(type_, payload))])
                    with self._cond:
                        self._received.append(message)
                        self._cond.notify_all()
            while self._shell is not None and not self._out.empty():
                self._sock.send_multipart([self._shell, encode(self._out.get())])
        self._sock.close(0)

    def push(self, type_: str, payload: dict[str, Any], *, source: str = "hub") -> None:
        self._out.put(Envelope(type_, next(self._ids), source, "shell", payload))

    def expect(self, type_: str, *, timeout: float = 10.0, **fields: Any) -> Envelope:
        """The first not yet consumed message of ``type_`` whose payload has ``fields``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self._received:
                    if message.type == type_ and all(message.payload.get(k) == v for k, v in fields.items()):
                        self._received.remove(message)
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HostTimeoutError(f"the shell sent no {type_} {fields}; got {self._received}")
                self._cond.wait(left)

    def clear(self) -> None:
        with self._cond:
            self._received.clear()

    def sent(self, type_: str) -> list[Envelope]:
        with self._cond:
            return [m for m in self._received if m.type == type_]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def page(body: str) -> dict[str, Any]:
    return compile_wxml(body, filename="page.wxml")


class Shell:
    def __init__(self, hub: FakeHub, driver: ShellDriver) -> None:
        self.hub = hub
        self.driver = driver
        self._page_ids = iter(range(1, 1000))
        self._requests = iter(range(1, 1000))

    def open_page(
        self, app_id: str, route: str, title: str, text: str, *, mode: str = "reset", **extra: Any
    ) -> int:
        """Push page.open + page.render and wait for the shell's page.painted."""
        page_id = next(self._page_ids)
        tree = page(
            f'<view id="label" class="big" bindtap="onLabel">{text} {{{{n}}}}</view>'
            '<navigator id="more" class="big" url="/pages/detail/detail?id=3">More</navigator>'
        )
        self.hub.push(
            "page.open",
            {"app_id": app_id, "page_id": page_id, "route": route, "title": title, "tree": tree,
             "css": ".big{font-size:40px;padding:24px}", "mode": mode, **extra},
        )  # fmt: skip
        self.hub.push("page.render", {"page_id": page_id, "data": {"n": page_id}}, source=f"app:{app_id}")
        painted = self.hub.expect("page.painted", page_id=page_id)
        assert painted.target == f"app:{app_id}"
        return page_id

    def ui(self, app_id: str, kind: str, params: dict[str, Any]) -> int:
        request_id = next(self._requests)
        payload = {"request_id": request_id, "app_id": app_id, "kind": kind, "params": params}
        self.hub.push("ui.request", payload)
        return request_id

    def answer(self, request_id: int) -> dict[str, Any]:
        response = self.hub.expect("ui.response", request_id=request_id)
        assert response.target == "hub"
        return dict(response.payload["result"])

    def launch_tabs_app(self) -> int:
        """From the launcher: tap the tile, answer app.launch with a tab page."""
        self.driver.wait_for(lambda s: s["view"] == "launcher" and s["apps"] == 2, what="the launcher")
        self.driver.tap_selector(f'[data-app-id="{TABS}"]')
        self.hub.expect("app.launch", app_id=TABS)
        window = {"navigationBarTitleText": "Home", "navigationBarBackgroundColor": "#1d4ed8",
                  "navigationBarTextStyle": "white"}  # fmt: skip
        return self.open_page(TABS, "pages/home/home", "Home", "Home page", window=window, tab_bar=TAB_BAR)


@pytest.fixture(scope="module", params=[(800, 480), (1280, 720)], ids=["800x480", "1280x720"])
def shell(request: pytest.FixtureRequest) -> Iterator[Shell]:
    width, height = request.param
    root = Path(tempfile.mkdtemp(prefix="vh-ui-"))
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    hub = FakeHub(f"ipc://{runtime / 'hub.sock'}")
    try:
        with (
            VirtualDisplay(width, height) as display,
            shell_process(root, runtime, display.display, size=(width, height)) as driver,
        ):
            driver.wait_for(lambda s: s["online"] and s["apps"] == 2, what="the shell to list the apps")
            yield Shell(hub, driver)
    finally:
        hub.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tabs_app(shell: Shell) -> Iterator[int]:
    """The tab demo app on screen with its home page; closed again afterwards."""
    shell.hub.clear()
    page_id = shell.launch_tabs_app()
    yield page_id
    running = shell.driver.snapshot()["running"]
    shell.driver.eval("vh.closeAll(); vh.home()")
    if TABS in running:
        shell.hub.expect("app.close", app_id=TABS)
    shell.driver.wait_for(lambda s: s["view"] == "launcher" and not s["running"], what="the launcher")


def test_page_stack_push_back_and_tab_switch(shell: Shell, tabs_app: int) -> None:
    driver, hub = shell.driver, shell.hub
    snap = driver.snapshot()
    assert snap["pages"] == [{"page_id": tabs_app, "route": "pages/home/home", "title": "Home"}]
    nav_bar = {"title": "Home", "backgroundColor": "#1d4ed8", "frontColor": "#ffffff", "loading": False}
    assert snap["navBar"] == nav_bar
    assert snap["tabBar"]["shown"] and snap["tabBar"]["selected"] == 0
    driver.tap_page_node("label")  # a real tap inside the page's sandboxed frame
    tapped = hub.expect("page.event", handler="onLabel")
    assert tapped.target == f"app:{TABS}" and tapped.payload["page_id"] == tabs_app
    # navigateTo: a new frame on top, the home page kept with its DOM
    detail = shell.open_page(TABS, "pages/detail/detail", "Detail", "Detail page", mode="push",
                             window={"navigationBarTitleText": "Detail"})  # fmt: skip
    snap = driver.wait_for(lambda s: s["pageId"] == detail and s["painted"] > 0, what="the detail page")
    assert [p["page_id"] for p in snap["pages"]] == [tabs_app, detail]
    assert snap["navBar"]["title"] == "Detail" and not snap["tabBar"]["shown"]  # not a tab page
    assert "Detail page" in driver.inspect()["text"]
    assert driver.eval("document.querySelectorAll('#frame-host iframe').length") == 2
    # the real back button asks the hub; the hub answers with page.close
    driver.tap_back()
    hub.expect("app.back", app_id=TABS)
    hub.push("page.close", {"app_id": TABS, "page_ids": [detail], "shown": tabs_app})
    snap = driver.wait_for(lambda s: s["pageId"] == tabs_app, what="the home page again")
    assert [p["page_id"] for p in snap["pages"]] == [tabs_app] and snap["tabBar"]["shown"]
    assert f"Home page {tabs_app}" in driver.inspect()["text"]  # the kept frame, not a re-render
    assert driver.eval("document.querySelectorAll('#frame-host iframe').length") == 1
    # tabBar badges and dots from ui.request
    assert shell.answer(shell.ui(TABS, "tabBar", {"op": "setBadge", "index": 1, "text": "3"})) == {}
    assert shell.answer(shell.ui(TABS, "tabBar", {"op": "showRedDot", "index": 0})) == {}
    wrong = shell.answer(shell.ui(TABS, "tabBar", {"op": "setBadge", "index": 7, "text": "1"}))
    assert "out of range" in wrong["error"]
    items = driver.snapshot()["tabBar"]["items"]
    assert (items[0]["dot"], items[1]["badge"]) == (True, "3")
    assert not is_uniform(driver.screenshot(ARTIFACTS / "shell-tab-bar.png"))
    # a real tap on a tab asks the worker to switchTab; the hub resets the stack to that tab
    driver.tap_tab("Settings")
    event = hub.expect("page.event", handler="$switchTab")
    assert event.target == f"app:{TABS}"
    switch = {"page_id": tabs_app, "handler": "$switchTab", "event": {"url": "/pages/settings/settings"}}
    assert event.payload == switch
    settings = shell.open_page(TABS, "pages/settings/settings", "Settings", "Settings page", mode="reset")
    snap = driver.wait_for(lambda s: s["pageId"] == settings and s["painted"] > 0, what="the settings tab")
    assert len(snap["pages"]) == 1 and snap["tabBar"]["selected"] == 1
    assert snap["tabBar"]["items"][1]["badge"] == "3"  # badges live with the app, not the page
    # redirectTo: the top page is replaced, the stack keeps its depth
    about = shell.open_page(TABS, "pages/about/about", "About", "About page", mode="replace")
    snap = driver.wait_for(lambda s: s["pageId"] == about, what="the replacing page")
    assert [p["page_id"] for p in snap["pages"]] == [about] and not snap["tabBar"]["shown"]
    settings = shell.open_page(TABS, "pages/settings/settings", "Settings", "Settings page", mode="replace")
    # navigationBar requests change the chrome of the top page
    assert shell.answer(shell.ui(TABS, "navigationBar", {"op": "setTitle", "title": "Preferences"})) == {}
    assert shell.answer(shell.ui(TABS, "navigationBar", {"op": "setColor", "frontColor": "#000000",
                                                         "backgroundColor": "#fafafa"})) == {}  # fmt: skip
    assert driver.snapshot()["navBar"]["title"] == "Preferences"
    assert driver.eval("document.getElementById('title').textContent") == "Preferences"


def test_home_keeps_the_app_running_and_reopening_shows_its_pages(shell: Shell, tabs_app: int) -> None:
    driver, hub = shell.driver, shell.hub
    driver.tap_back()  # one page deep: the back button goes home
    hub.expect("app.visibility", app_id=TABS, visible=False)
    snap = driver.wait_for(lambda s: s["view"] == "launcher", what="the launcher")
    assert snap["running"] == [TABS]
    assert not is_uniform(driver.screenshot(ARTIFACTS / "shell-launcher-running.png"))
    driver.tap_selector(f'[data-app-id="{TABS}"]')
    assert hub.expect("app.visibility", app_id=TABS, visible=True).target == "hub"
    snap = driver.wait_for(lambda s: s["view"] == "app", what="the app again")
    assert snap["pageId"] == tabs_app and snap["painted"] > 0
    assert hub.sent("app.launch") == []  # the worker still runs: no second launch
    assert f"Home page {tabs_app}" in driver.inspect()["text"]
    # a page of an app in the background renders in its hidden frame (and reports its paint)
    other = shell.open_page(OTHER, "pages/index/index", "Other", "Other page")
    snap = driver.snapshot()
    assert sorted(snap["running"]) == sorted([TABS, OTHER]) and snap["pageId"] == tabs_app
    driver.eval("vh.home()")
    driver.tap_selector(f'[data-app-id="{OTHER}"]')
    hub.expect("app.visibility", app_id=OTHER, visible=True)
    assert driver.wait_for(lambda s: s["appId"] == OTHER)["pageId"] == other
    assert f"Other page {other}" in driver.inspect()["text"]
    driver.eval("vh.close()")
    hub.expect("app.close", app_id=OTHER)


def test_updates_restart_an_urgent_app_and_wait_for_the_next_start_otherwise(
    shell: Shell, tabs_app: int
) -> None:
    driver, hub = shell.driver, shell.hub
    hub.clear()
    applied = {"apps": [{"app_id": TABS, "version": "1.1.0", "urgent": False}]}
    hub.push("state.changed", {"key": "updates.applied", "value": applied})
    hub.expect("app.info", app_id=TABS)  # a fresh listing (answered by the fake hub) asks again
    snap = driver.wait_for(lambda s: s["banner"] is not None, what="the update banner")
    assert "1.1.0 is ready" in snap["banner"] and snap["pageId"] == tabs_app
    assert hub.sent("app.launch") == [] and hub.sent("app.close") == []  # never swapped under the user
    driver.eval("vh.home()")
    urgent = {"apps": [{"app_id": TABS, "version": "1.1.1", "urgent": True}, {"app_id": "org.not.running"}]}
    hub.push("state.changed", {"key": "updates.applied", "value": urgent})
    hub.expect("app.close", app_id=TABS)  # restarted: closed now, launched again once it has closed
    snap = driver.wait_for(lambda s: bool(s["notices"]["notifications"]), what="the urgent notice")
    (notice,) = snap["notices"]["notifications"]
    assert notice["title"] == "Tab Demo was updated to 1.1.1" and notice["level"] == "warning"
    assert snap["view"] == "launcher"  # seen on the launcher, where the app banner is hidden
    hub.push("app.closed", {"app_id": TABS, "reason": "closed"})
    hub.expect("app.launch", app_id=TABS)


def test_modal_confirm_with_a_real_tap(shell: Shell, tabs_app: int) -> None:
    request = shell.ui(TABS, "modal", {"title": "Clear fault codes?", "content": "Stored codes are erased.",
                                       "confirmText": "Clear", "cancelText": "Keep"})  # fmt: skip
    dialog = shell.driver.wait_for_dialog("modal")
    assert dialog["title"] == "Clear fault codes?" and dialog["buttons"] == ["Keep", "Clear"]
    assert not is_uniform(shell.driver.screenshot(ARTIFACTS / "shell-modal.png"))
    shell.driver.tap_dialog_button("Clear")
    assert shell.answer(request) == {"confirm": True, "cancel": False}
    assert shell.driver.snapshot()["dialog"] is None


def test_action_sheet_pick_with_a_real_tap(shell: Shell, tabs_app: int) -> None:
    request = shell.ui(TABS, "actionSheet", {"itemList": ["Oil", "Brakes", "Tyres"]})
    shell.driver.tap_dialog_button("Tyres")
    assert shell.answer(request) == {"tapIndex": 2}
    six = ["Oil change", "Brake pads", "Tyres", "Wipers", "Battery", "Air filter"]
    request = shell.ui(TABS, "actionSheet", {"itemList": six, "alertText": "Book a service"})
    assert shell.driver.wait_for_dialog("actionSheet")["buttons"] == [*six, "Cancel"]
    assert not is_uniform(shell.driver.screenshot(ARTIFACTS / "shell-action-sheet.png"))
    shell.driver.tap_dialog_button("Air filter")  # the last of six still fits the 480 px screen
    assert shell.answer(request) == {"tapIndex": 5}
    request = shell.ui(TABS, "actionSheet", {"itemList": six})
    shell.driver.tap_dialog_button("Cancel")
    assert shell.answer(request) == {"cancel": True}
    too_many = shell.ui(TABS, "actionSheet", {"itemList": [str(i) for i in range(7)]})
    assert shell.answer(too_many)["cancel"] is True


def test_consent_allow_once_always_and_deny_with_real_taps(shell: Shell, tabs_app: int) -> None:
    params = {"app_name": "Tab Demo", "permission": "vehicle.diagnostics.read", "text": "read codes"}
    request = shell.ui(TABS, "consent", params)
    dialog = shell.driver.wait_for_dialog("consent")
    assert dialog["title"] == "Allow Tab Demo to read fault codes and vehicle data?"  # plain words
    assert dialog["buttons"] == ["Don\u2019t allow", "Allow once", "Always allow"]
    assert not is_uniform(shell.driver.screenshot(ARTIFACTS / "shell-consent.png"))
    shell.driver.tap_dialog_button("Don\u2019t allow")
    assert shell.answer(request) == {"granted": False, "remember": True}
    request = shell.ui(TABS, "consent", {**params, "permission": "display.brightness"})
    assert (
        shell.driver.wait_for_dialog("consent")["title"] == "Allow Tab Demo to change the screen brightness?"
    )
    shell.driver.tap_dialog_button("Allow once")
    assert shell.answer(request) == {"granted": True, "remember": False}
    request = shell.ui(TABS, "consent", {"app_name": "Tab Demo", "permission": "org.test.unknown"})
    assert shell.driver.wait_for_dialog("consent")["title"] == "Allow Tab Demo to use org.test.unknown?"
    shell.driver.tap_dialog_button("Always allow")
    assert shell.answer(request) == {"granted": True, "remember": True}


def test_dialog_of_an_app_in_the_background_waits_for_it(shell: Shell, tabs_app: int) -> None:
    driver = shell.driver
    request = shell.ui(TABS, "modal", {"title": "Service due", "showCancel": False})
    driver.wait_for_dialog("modal")
    driver.tap_back()  # the chrome stays usable under a dialog: the driver can always leave
    shell.hub.expect("app.visibility", app_id=TABS, visible=False)
    driver.wait_for(lambda s: s["queuedDialogs"] == 1, what="the modal to wait")
    assert driver.snapshot()["dialog"] is None  # not drawn over the launcher
    driver.tap_selector(f'[data-app-id="{TABS}"]')
    assert driver.wait_for_dialog("modal")["buttons"] == ["OK"]
    driver.tap_dialog_button("OK")
    assert shell.answer(request) == {"confirm": True, "cancel": False}
    # a dialog still waiting when the app closes is answered as cancelled
    driver.eval("vh.home()")
    consent = shell.ui(TABS, "consent", {"app_name": "Tab Demo", "permission": "p", "text": "do x"})
    driver.wait_for(lambda s: s["queuedDialogs"] == 1, what="the consent to wait")
    shell.hub.push("app.closed", {"app_id": TABS, "reason": "closed"})
    assert shell.answer(consent) == {"granted": False, "remember": False, "error": "the app was closed"}
    driver.wait_for(lambda s: s["running"] == [], what="the app to be forgotten")


def test_toast_loading_vehicle_state_and_frame_messages(shell: Shell, tabs_app: int) -> None:
    driver = shell.driver
    toast = {"title": "Saved", "icon": "success", "duration": 60000}
    assert shell.answer(shell.ui(TABS, "toast", toast)) == {}
    shown = {"title": "Saved", "icon": "success", "loading": False, "mask": False}
    assert driver.snapshot()["toast"] == shown
    assert shell.answer(shell.ui(TABS, "hideToast", {})) == {}
    assert shell.answer(shell.ui(TABS, "loading", {"title": "Reading ECU", "mask": True})) == {}
    loading = {"title": "Reading ECU", "icon": "loading", "loading": True, "mask": True}
    assert driver.snapshot()["toast"] == loading
    assert shell.answer(shell.ui(TABS, "hideLoading", {})) == {}
    assert driver.snapshot()["toast"] is None
    vehicle = {"speed_kmh": 42.4, "gear": "d", "ignition": True, "parked": False}
    shell.hub.push("state.changed", {"key": "vehicle", "value": vehicle})
    shell.hub.push("state.changed", {"key": "can.adapter", "value": {"present": True, "name": "can0"}})
    snap = driver.wait_for(lambda s: s["adapter"] is not None, what="the adapter state")
    assert snap["vehicle"] == {
        "speed_kmh": 42,
        "gear": "D",
        "ignition": True,
        "parked": False,
        "stale": False,
    }
    assert driver.eval("document.getElementById('vehicle').textContent") == "42 km/h \u00b7 D"
    assert not is_uniform(driver.screenshot(ARTIFACTS / "shell-vehicle-state.png"))
    # a real tap on a <navigator>: the shell forwards it to the worker as $navigate
    driver.tap_page_node("more")
    nav = shell.hub.expect("page.event", handler="$navigate")
    assert nav.payload == {"page_id": tabs_app, "handler": "$navigate",
                           "event": {"url": "/pages/detail/detail?id=3", "openType": "navigate"}}  # fmt: skip
    # what the renderer posts for a custom component's event; and a message from outside any frame
    driver.eval(
        "(function(){var f=document.querySelector('#frame-host iframe.top').contentWindow;"
        "window.dispatchEvent(new MessageEvent('message',{source:f,data:{type:'event',handler:'onPick',"
        "component:'c2',event:{type:'tap',detail:{}}}}));"
        "window.dispatchEvent(new MessageEvent('message',{source:window,"
        "data:{type:'navigate',url:'/x'}}));})()"
    )
    picked = shell.hub.expect("page.event", handler="onPick")
    assert picked.payload["component"] == "c2" and picked.target == f"app:{TABS}"
    with pytest.raises(HostTimeoutError):  # the message from outside any page frame was ignored
        shell.hub.expect("page.event", timeout=0.5)


def test_the_link_sends_only_the_shells_message_types_to_their_addresses() -> None:
    link = HubLink("ipc:///nonexistent", run_js=lambda script: None)  # not started: nothing is sent
    allowed = [
        ("app.back", "hub", {"app_id": TABS}),
        ("app.visibility", "hub", {"app_id": TABS, "visible": False}),
        ("ui.response", "hub", {"request_id": 1, "result": {}}),
        ("page.painted", f"app:{TABS}", {"page_id": 1}),
        ("page.event", f"app:{TABS}", {"page_id": 1, "handler": "$switchTab", "event": {"url": "/a"}}),
    ]
    refused = [
        ("page.painted", "hub", {"page_id": 1}),  # an app's page event goes to the app
        ("ui.response", f"app:{TABS}", {"request_id": 1, "result": {}}),
        ("page.event", "app:", {"page_id": 1, "handler": "x", "event": {}}),
        ("page.setData", f"app:{TABS}", {"page_id": 1, "diff": {}}),  # only workers send that
        ("hello", "hub", {"role": "shell", "api_level": 1}),
        ("app.back", "hub", ["not", "a", "map"]),
    ]

    def send(type_: str, target: str, payload: Any) -> bool:
        return link.send_from_page(json.dumps({"type": type_, "target": target, "payload": payload}))

    assert [send(*m) for m in allowed] == [True] * len(allowed)
    assert [send(*m) for m in refused] == [False] * len(refused)
    assert not link.send_from_page("not json") and not link.send_from_page("[" * 100_000)
    assert {t for t, _, _ in allowed} <= set(FROM_PAGE)
