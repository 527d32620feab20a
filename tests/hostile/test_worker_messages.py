"""Hostile worker messages against a real hub: a worker whose JS engine was taken over speaks raw bytes
on its own socket (see runtime_helpers). Each case asserts a clear refusal in the hub's log, that the
hub keeps serving (the well-behaved victim app answers a tap) and that the victim's state is untouched.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
import zmq
import zmq.asyncio

from tests.conftest import REPO, HubProcess
from tests.hostile.runtime_helpers import ROGUE, VICTIM, Controller, eventually, rss_kb, start_rogue_hub
from vehicle_host.errors import HostTimeoutError
from vehicle_host.hub.client import HubClient
from vehicle_host.wire import API_LEVEL, MAX_MESSAGE_BYTES, Envelope, encode

pytestmark = pytest.mark.integration
FIXTURES = REPO / "tests" / "fixtures" / "hostile"


@pytest.fixture(scope="module")
def rogue_hub() -> Iterator[HubProcess]:
    root = Path(tempfile.mkdtemp(prefix="vh-"))
    try:
        for name in ("rogue", "victim"):
            shutil.copytree(FIXTURES / name, root / "apps" / name)
        hub = start_rogue_hub(root, root / "apps")
        yield hub
        code, log = hub.stop(), hub.log()
        assert code == 0, log[-3000:]
        assert "error while handling" not in log and "Traceback" not in log, log[-3000:]  # never crashed
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Scene:
    """The shell (a HubClient), the controller of the workers, and the two apps on screen."""

    def __init__(self, hub: HubProcess, shell: HubClient, ctl: Controller) -> None:
        self.hub = hub
        self.shell = shell
        self.ctl = ctl
        self.pages: dict[str, int] = {}
        self.log_mark = len(hub.log())

    async def launch(self, app: str) -> int:
        self.shell.send("app.launch", "hub", {"app_id": app})
        opened = await self.shell.expect("page.open", timeout=20, app_id=app)
        page = int(opened.payload["page_id"])
        await self.shell.expect("page.render", timeout=20, page_id=page)
        self.pages[app] = page
        return page

    def tap(self, app: str, handler: str) -> None:
        self.shell.send(
            "page.event", f"app:{app}", {"page_id": self.pages[app], "handler": handler, "event": {}}
        )

    async def data(self, app: str, key: str, timeout: float = 10) -> Any:
        while True:
            message = await self.shell.expect("page.setData", timeout=timeout, page_id=self.pages[app])
            if key in message.payload["diff"]:
                return message.payload["diff"][key]

    async def stats(self) -> dict[str, Any]:
        return dict((await self.shell.request("hub.stats", "hub", {})).payload["stats"])

    def new_log(self) -> list[dict[str, Any]]:
        lines = self.hub.log()[self.log_mark :].splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    async def logged(self, fragment: str, **fields: Any) -> dict[str, Any]:
        """The first new log entry whose message contains ``fragment`` and has ``fields``."""
        found: list[dict[str, Any]] = []

        async def check() -> bool:
            found[:] = [
                e
                for e in self.new_log()
                if fragment in e["msg"] and all(e.get(k) == v for k, v in fields.items())
            ]
            return bool(found)

        await eventually(check, f"a log entry {fragment!r} {fields or ''}")
        return found[0]

    async def victim_still_works(self) -> None:
        """The other app answers a tap, and only with what its own code computed."""
        before = self.shell.inbox.qsize()
        self.tap(VICTIM, "onCount")
        n = await self.data(VICTIM, "n")
        assert isinstance(n, int) and n >= 1
        assert self.shell.inbox.qsize() <= before + 100  # nothing forged piled up for the shell

    def drained_diffs(self) -> list[dict[str, Any]]:
        out = []
        while not self.shell.inbox.empty():
            message = self.shell.inbox.get_nowait()
            if message.type in ("page.setData", "page.render"):
                out.append({"page_id": message.payload["page_id"], **dict(message.payload.get("diff") or {})})
        return out


def run(hub: HubProcess, body: Callable[[Scene], Awaitable[None]], *, launch: bool = True) -> None:
    async def main() -> None:
        shell = HubClient(hub.endpoint, role="shell")
        await shell.connect()
        ctl = Controller(hub.runtime_dir.parent)
        scene = Scene(hub, shell, ctl)
        try:
            if launch:
                await scene.launch(VICTIM)
                await scene.launch(ROGUE)
            await body(scene)
        finally:
            await ctl.close()
            await shell.close()

    asyncio.run(main())


def call_id_is(call_id: int) -> Callable[[dict[str, Any]], bool]:
    return lambda payload: bool(payload["call_id"] == call_id)


def counter(stats: dict[str, Any], name: str) -> int:
    return int(stats.get(name, 0))


# ------------------------------------------------------------------------------------------ identity
def test_a_forged_source_and_another_apps_page_id_cannot_draw_on_its_page(rogue_hub: HubProcess) -> None:
    async def body(s: Scene) -> None:
        victim_page = s.pages[VICTIM]
        for type_, field in (("page.setData", "diff"), ("page.render", "data")):
            await s.ctl.forge(
                ROGUE, type_, {"page_id": victim_page, field: {"n": "FORGED"}}, source=f"app:{VICTIM}"
            )
        entry = await s.logged("refused page.setData: the page is not one of the app's pages", app_id=ROGUE)
        assert entry["page_id"] == victim_page and entry["claimed_source"] == f"app:{VICTIM}"
        await s.logged("refused page.render: the page is not one of the app's pages", app_id=ROGUE)
        await s.victim_still_works()
        assert all(d.get("n") != "FORGED" for d in s.drained_diffs())
        # the rogue's own page still takes its own updates: nothing but the forgery was refused
        await s.ctl.forge(ROGUE, "page.setData", {"page_id": s.pages[ROGUE], "diff": {"n": 5}})
        assert await s.data(ROGUE, "n") == 5

    run(rogue_hub, body)


def test_a_second_hello_cannot_make_a_worker_a_plugin_the_shell_or_another_app(rogue_hub: HubProcess) -> None:
    async def body(s: Scene) -> None:
        for role, extra in (
            ("plugin", {"plugin": "storage", "token": "guess"}),
            ("shell", {}),
            ("worker", {}),
        ):
            hello = {"role": role, "api_level": API_LEVEL, "app_id": VICTIM, **extra}
            await s.ctl.forge(ROGUE, "hello", hello, source="hub")
        await s.logged("refused a second hello from a worker", app_id=ROGUE)
        # still only a worker: plugin and shell messages are refused, not obeyed
        await s.ctl.forge(ROGUE, "state.publish", {"key": "vehicle", "value": {"parked": True}})
        await s.ctl.forge(ROGUE, "plugin.result", {"call_id": 1, "ok": True, "result": {}})
        await s.logged("refused state.publish: workers may not send it", app_id=ROGUE)
        await s.logged("refused plugin.result: workers may not send it", app_id=ROGUE)
        await s.victim_still_works()
        while not s.shell.inbox.empty():
            message = s.shell.inbox.get_nowait()
            assert message.type != "state.changed" or message.payload["key"] != "vehicle"

    run(rogue_hub, body)


@pytest.mark.parametrize(
    ("type_", "payload"),
    [
        ("app.launch", {"app_id": VICTIM}),
        ("app.close", {"app_id": VICTIM}),
        ("grant.set", {"app_id": VICTIM, "permission": "vehicle.diagnostics.read", "granted": True}),
        ("worker.start", {"app_id": VICTIM, "sources": {}, "config": {}, "route": "x", "page_id": 1,
                          "query": {}, "system": {}, "apis": [], "storage": {}, "limits": {}}),
        ("page.event", {"page_id": 1, "handler": "onCount", "event": {}}),
    ],
    ids=["app.launch", "app.close", "grant.set", "worker.start", "page.event"],
)  # fmt: skip
def test_messages_only_the_shell_or_hub_may_send_are_refused_from_a_worker(
    rogue_hub: HubProcess, type_: str, payload: dict[str, Any]
) -> None:
    async def body(s: Scene) -> None:
        victim_pid = (await s.stats())["workers"][VICTIM]
        if type_ == "page.event":
            payload["page_id"] = s.pages[VICTIM]
        await s.ctl.forge(ROGUE, type_, payload)
        await s.logged(f"refused {type_}: workers may not send it", app_id=ROGUE)
        await s.victim_still_works()
        stats = await s.stats()
        assert stats["workers"][VICTIM] == victim_pid  # not closed, not relaunched
        # the shell's one tap was the first and only one counted: a forged one would have come first
        assert not [d for d in s.drained_diffs() if d["page_id"] == s.pages[VICTIM] and "n" in d]

    run(rogue_hub, body)


# ------------------------------------------------------------------------------ answers and call ids
def test_a_worker_cannot_answer_or_cancel_a_call_it_was_never_given(rogue_hub: HubProcess) -> None:
    async def body(s: Scene) -> None:
        s.tap(VICTIM, "onAsk")
        asked = await s.shell.expect("ui.request", timeout=10, app_id=VICTIM, kind="modal")
        request_id = asked.payload["request_id"]
        # the rogue answers the victim's modal, replies to and cancels call ids it never made
        for call_id in range(-2, 8):
            await s.ctl.forge(ROGUE, "api.cancel", {"call_id": call_id})
            await s.ctl.forge(
                ROGUE, "api.result", {"call_id": call_id, "ok": True, "result": {"confirm": True}}
            )
        await s.ctl.forge(ROGUE, "ui.response", {"request_id": request_id, "result": {"confirm": True}})
        await s.logged("refused ui.response: workers may not send it", app_id=ROGUE)
        await s.logged("refused api.result: workers may not send it", app_id=ROGUE)
        # the victim's question is still open, and the driver's answer is the one that counts
        with pytest.raises(HostTimeoutError):
            await s.data(VICTIM, "answer", timeout=0.5)
        s.shell.send(
            "ui.response", "hub", {"request_id": request_id, "result": {"confirm": False, "cancel": True}}
        )
        assert await s.data(VICTIM, "answer") == "cancel"
        # a call id the rogue was never given gets nothing back; its own call is answered
        await s.ctl.forge(ROGUE, "api.call", {"call_id": 0, "method": "storage.info", "args": {}})
        await s.ctl.forge(ROGUE, "api.call", {"call_id": 41, "method": "storage.info", "args": {}})
        own = await s.ctl.expect(ROGUE, "api.result", lambda p: p["call_id"] == 41)
        assert own.payload["ok"] is True
        assert not [
            m for m in s.ctl.received.get(ROGUE, []) if m.type == "api.result" and m.payload["call_id"] == 0
        ]

    run(rogue_hub, body)


def test_storage_calls_cannot_name_another_app(rogue_hub: HubProcess) -> None:
    async def body(s: Scene) -> None:
        s.tap(VICTIM, "onStore")
        assert await s.data(VICTIM, "stored") == "victim-secret"
        forged = [
            {"key": "token", "value": '"forged"', "app_id": VICTIM},
            {"key": "token", "value": '"forged"', "_app_id": VICTIM},
        ]
        for call_id, args in enumerate(forged, start=100):
            await s.ctl.forge(ROGUE, "api.call", {"call_id": call_id, "method": "storage.set", "args": args})
        for call_id in (100, 101):
            answer = await s.ctl.expect(ROGUE, "api.result", call_id_is(call_id))
            assert answer.payload["ok"] is False
            assert answer.payload["error"]["code"] in ("invalid_args", "denied")
        # claiming to be the victim in the envelope changes nothing: the write lands in the rogue's store
        call = {"call_id": 102, "method": "storage.set", "args": {"key": "token", "value": '"rogue"'}}
        await s.ctl.forge(ROGUE, "api.call", call, source=f"app:{VICTIM}")
        assert (await s.ctl.expect(ROGUE, "api.result", lambda p: p["call_id"] == 102)).payload["ok"] is True
        victim = (await s.shell.request("app.info", "hub", {"app_id": VICTIM})).payload["info"]["storage"]
        rogue = (await s.shell.request("app.info", "hub", {"app_id": ROGUE})).payload["info"]["storage"]
        assert victim["keys"] == ["token"] and rogue["keys"] == ["token"]
        await s.launch(VICTIM)  # a fresh worker reads the victim's store from disk
        s.tap(VICTIM, "onRead")
        assert await s.data(VICTIM, "read") == "victim-secret"

    run(rogue_hub, body)


# --------------------------------------------------------------------------------------- malformed
def _envelope(payload: bytes, type_: str = "page.setData") -> bytes:
    """An envelope around a hand-made CBOR payload."""
    return b"\x86" + cbor2.dumps([API_LEVEL, type_, 9, "app:x", "hub"])[1:] + payload


def _map(key: str, value: bytes) -> bytes:
    return b"\xa1" + cbor2.dumps(key) + value


MALFORMED = {
    "truncated": (encode(Envelope("log", 3, "app:x", "hub", {"level": "info", "message": "x" * 50}))[:-7],
                  "premature end of stream"),
    "wrong-types": (cbor2.dumps([API_LEVEL, "page.setData", 1, "app:x", "hub", {"page_id": "1", "diff": []}]),
                    "field 'page_id' must be int"),
    "huge-nesting": (b"\x81" * 200_000 + b"\x00", "nesting depth"),
    "deep-payload": (_envelope(b"\xa2" + cbor2.dumps("level") + cbor2.dumps("info") + cbor2.dumps("message")
                               + b"\x81" * 40 + b"\x00", "log"), "nests deeper than 32"),
    "tag-datetime": (_envelope(b"\xa2" + cbor2.dumps("page_id") + b"\xc1\x01" + cbor2.dumps("diff")
                               + b"\xa0"),
                     "CBOR tags are not allowed"),
    "tag-shared-cycle": (_envelope(b"\xa2" + cbor2.dumps("page_id") + b"\x01" + cbor2.dumps("diff")
                                   + _map("a", bytes.fromhex("d81c81d81d00"))),
                         "nests deeper than 32"),  # a list that holds itself: bounded like any nesting
    "tag-unknown": (_envelope(b"\xd9\x99\x99" + b"\xa0"), "CBOR tags are not allowed"),
    "indefinite-unterminated": (b"\x9f\x01" + cbor2.dumps("log") + b"\x01\x61x\x63hub\xbf" + b"\x61a" * 5,
                                "premature end of stream"),
    "indefinite-bytes-wrong-chunk": (b"\x5f\x41a\x61b\xff", "malformed CBOR"),
    "invalid-utf8": (cbor2.dumps([API_LEVEL, "log", 1, "app:x", "hub", {}])[:-10] + b"\x63\xff\xfe\xfd"
                     + b"\xa0", "malformed CBOR"),
    "unknown-kind": (cbor2.dumps([API_LEVEL, "evil.escape", 1, "app:x", "hub", {}]),
                     "unknown message type 'evil.escape'"),
    "future-api-level": (cbor2.dumps([99, "heartbeat", 1, "app:x", "hub", {}]), "unsupported API level 99"),
    "trailing-bytes": (encode(Envelope("heartbeat", 1, "app:x", "hub", {})) + b"\x00", "trailing bytes"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_cbor_is_dropped_with_a_reason_and_the_worker_and_hub_go_on(
    rogue_hub: HubProcess, case: str
) -> None:
    data, reason = MALFORMED[case]

    async def body(s: Scene) -> None:
        before = await s.stats()
        await s.ctl.send(ROGUE, data)
        entry = await s.logged("dropped a malformed message", app_id=ROGUE)
        assert reason in entry["error"], entry
        after = await s.stats()
        assert counter(after, "dropped_malformed") == counter(before, "dropped_malformed") + 1
        assert ROGUE in after["workers"]  # garbage costs the message, not the worker
        await s.victim_still_works()

    run(rogue_hub, body)


# -------------------------------------------------------------------------------- size and framing
def test_oversized_frames_are_dropped_and_a_huge_one_costs_only_its_connection(rogue_hub: HubProcess) -> None:
    async def body(s: Scene) -> None:
        before = await s.stats()
        await s.ctl.send(ROGUE, b"\x00" * (MAX_MESSAGE_BYTES + 1))
        entry = await s.logged("dropped an oversized message", app_id=ROGUE)
        assert entry["bytes"] == MAX_MESSAGE_BYTES + 1 and entry["limit"] == MAX_MESSAGE_BYTES
        # a local client sending 3 MiB is cut off by libzmq before the hub buffers it; others are served
        intruder = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        intruder.setsockopt(zmq.LINGER, 0)
        intruder.connect(s.hub.endpoint)
        await intruder.send(b"\xa0" * (3 * 1024 * 1024))
        await s.victim_still_works()
        listing = await s.shell.request("app.list", "hub", {})
        assert {a["id"] for a in listing.payload["apps"]} >= {ROGUE, VICTIM}
        after = await s.stats()
        assert counter(after, "dropped_oversized") == counter(before, "dropped_oversized") + 1
        intruder.close(0)

    run(rogue_hub, body)


def test_multipart_messages_are_refused_whole(rogue_hub: HubProcess) -> None:
    async def body(s: Scene) -> None:
        forged = encode(
            Envelope("page.setData", 1, "app:x", "hub", {"page_id": s.pages[ROGUE], "diff": {"n": 9}})
        )
        before = await s.stats()
        for frames in ([forged, forged], [b"", forged], [forged, b""], [b"", b"", b""]):
            await s.ctl.send(ROGUE, *frames)
        entry = await s.logged("refused a multipart message: one message is one frame", app_id=ROGUE)
        assert entry["frames"] >= 2
        await s.victim_still_works()
        after = await s.stats()
        assert counter(after, "dropped_malformed") - counter(before, "dropped_malformed") == 4
        assert all(d.get("n") != 9 for d in s.drained_diffs())  # no frame of them was taken

    run(rogue_hub, body)


# ----------------------------------------------------------------------------------------- floods
def test_a_flooding_worker_is_rate_limited_then_killed_and_the_hub_stays_small(rogue_hub: HubProcess) -> None:
    async def body(s: Scene) -> None:
        rss_before = rss_kb(s.hub.process.pid)
        junk = encode(Envelope("log", 1, "app:x", "hub", {"level": "debug", "message": "z" * 2000}))
        await s.ctl.flood(ROGUE, 40_000, junk)
        error = await s.shell.expect("app.error", timeout=20, app_id=ROGUE)
        assert error.payload["kind"] == "killed"
        assert "sent too many messages" in error.payload["message"]
        entry = await s.logged("worker floods the hub", app_id=ROGUE)
        assert entry["dropped"] > 0
        stats = await s.stats()
        assert ROGUE not in stats["workers"] and VICTIM in stats["workers"]
        assert counter(stats, "dropped_rate") > 20_000
        await s.victim_still_works()
        assert rss_kb(s.hub.process.pid) - rss_before < 64 * 1024  # nothing of the flood was kept

    run(rogue_hub, body)


def test_a_local_client_flooding_garbage_gets_a_bounded_log_and_the_shell_is_served(
    rogue_hub: HubProcess,
) -> None:
    async def body(s: Scene) -> None:
        rss_before = rss_kb(s.hub.process.pid)
        intruder = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        intruder.setsockopt(zmq.LINGER, 0)
        intruder.setsockopt(zmq.SNDHWM, 0)
        intruder.connect(s.hub.endpoint)
        garbage = [b"\xff" * 64, cbor2.dumps([API_LEVEL, "nope", 1, "x", "hub", {}]), b"\x9f" * 500]
        for i in range(20_000):
            await intruder.send(garbage[i % 3])
        await s.victim_still_works()
        await eventually(
            lambda: _stat_at_least(s, "dropped_malformed", 20_000), "the hub to read the whole flood", 30
        )
        refusals = [e for e in s.new_log() if e["msg"] == "dropped a malformed message"]
        assert 1 <= len(refusals) <= 200  # each refusal counted, but the log is rate limited
        assert rss_kb(s.hub.process.pid) - rss_before < 64 * 1024
        intruder.close(0)

    run(rogue_hub, body)


async def _stat_at_least(s: Scene, name: str, value: int) -> bool:
    return counter(await s.stats(), name) >= value
