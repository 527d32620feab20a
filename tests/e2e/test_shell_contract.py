"""One scenario, two shells: the headless FakeShell and the real window, each against a real hub.

Launch an app, receive its page (page.open + page.render, answered with page.painted), answer the
modal the page opens on load, and see the answer reach the page. If FakeShell and the window drift
apart in what they say to the hub, one of the two runs fails.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from tests.conftest import HubProcess, start_hub
from tests.e2e.window import shell_process
from vehicle_host.shell.driver import ShellDriver
from vehicle_host.shell.fake import FakeShell
from vehicle_host.shell.xvfb import VirtualDisplay

pytestmark = pytest.mark.e2e
APP = "org.test.contract"
PAGE_JS = """Page({
  data: { answer: 'waiting' },
  onLoad() {
    const page = this;
    fc.showModal({ title: 'Contract check', content: 'Go on?' }).then(function (r) {
      page.setData({ answer: r.confirm ? 'confirmed' : 'cancelled' });
    });
  },
});
"""


class Scenario(Protocol):
    def launch(self) -> None: ...
    def wait_page(self) -> None: ...
    def confirm_modal(self, title: str) -> None: ...
    def wait_text(self, text: str) -> None: ...


def run_scenario(shell: Scenario) -> None:
    shell.launch()
    shell.wait_page()
    shell.confirm_modal("Contract check")
    shell.wait_text("Answer: confirmed")


@pytest.fixture
def hub() -> Iterator[HubProcess]:
    root = Path(tempfile.mkdtemp(prefix="vh-ct-"))
    app = root / "apps" / "contract"
    (app / "pages" / "index").mkdir(parents=True)
    manifest = {
        "pages": ["pages/index/index"],
        "vehicle": {"id": APP, "name": "Contract", "version": "1.0.0", "runtime": {"min": 1, "max": 1},
                    "permissions": [], "drivingSafe": True, "group": "driver", "publisher": "tests"},
    }  # fmt: skip
    (app / "app.json").write_text(json.dumps(manifest))
    (app / "app.js").write_text("App({});\n")
    (app / "pages" / "index" / "index.js").write_text(PAGE_JS)
    (app / "pages" / "index" / "index.wxml").write_text('<view id="answer">Answer: {{answer}}</view>\n')
    process = start_hub(root, root / "apps")
    try:
        yield process
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)


class Headless:
    """The scenario through FakeShell (its script confirms the modal)."""

    def __init__(self, endpoint: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.shell = FakeShell(endpoint, answers={"modal": [{"confirm": True, "cancel": False}]})
        apps = self.loop.run_until_complete(self.shell.start())
        assert APP in [a["id"] for a in apps]
        self.page_id = 0

    def launch(self) -> None:
        self.loop.run_until_complete(self.shell.launch(APP))

    def wait_page(self) -> None:
        opened = self.loop.run_until_complete(self.shell.expect("page.open", app_id=APP, mode="reset"))
        self.page_id = opened.payload["page_id"]
        render = self.loop.run_until_complete(self.shell.expect("page.render", page_id=self.page_id))
        assert render.source == f"app:{APP}" and render.payload["data"]["answer"] == "waiting"

    def confirm_modal(self, title: str) -> None:
        request = self.loop.run_until_complete(self.shell.expect("ui.request", kind="modal"))
        assert request.payload["params"]["title"] == title
        assert self.shell.answered[-1][1] == {"confirm": True, "cancel": False}

    def wait_text(self, text: str) -> None:
        update = self.loop.run_until_complete(self.shell.expect("page.setData", page_id=self.page_id))
        assert "Answer: " + update.payload["diff"]["answer"] == text

    def close(self) -> None:
        self.loop.run_until_complete(self.shell.close())
        self.loop.close()


class Window:
    """The scenario through the real window, with real taps."""

    def __init__(self, driver: ShellDriver) -> None:
        self.driver = driver

    def launch(self) -> None:
        self.driver.wait_for(lambda s: s["online"] and APP in s["appIds"], what="the launcher")
        self.driver.tap_selector(f'[data-app-id="{APP}"]')

    def wait_page(self) -> None:
        self.driver.wait_for(lambda s: s["appId"] == APP and s["painted"] > 0, what="the page")

    def confirm_modal(self, title: str) -> None:
        assert self.driver.wait_for_dialog("modal")["title"] == title
        self.driver.tap_dialog_button("OK")

    def wait_text(self, text: str) -> None:
        self.driver.wait_for(lambda s: text in self.driver.inspect()["text"], what=repr(text))


def test_the_scenario_with_the_headless_fake_shell(hub: HubProcess) -> None:
    shell = Headless(hub.endpoint)
    try:
        run_scenario(shell)
    finally:
        shell.close()


def test_the_scenario_with_the_real_window(hub: HubProcess) -> None:
    root = hub.runtime_dir.parent
    with VirtualDisplay(800, 480) as display, shell_process(root, hub.runtime_dir, display.display) as driver:
        run_scenario(Window(driver))
