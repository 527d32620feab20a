"""kill -9 of every process kind at a random moment under write load, then restart and check.

Headless (``test_kills_under_write_load_lose_no_acknowledged_write``): a real hub serving a bundle
cache, with the storage, parts_ordering and profile plugins; a mini-app storing values and placing
parts orders in a loop (every write the host acknowledged reaches the test through ``page.setData``);
the test, as the shell, answering permission grants in a loop; an installer process installing new
bundle versions in a loop. Each round SIGKILLs one of: the hub, a plugin, the app's logic worker or
the installer. The supervisor restarts plugins and the app is launched again; the hub is started
again as systemd would. At the end, with the hub killed once more, every acknowledged write must be on
disk with its exact value and every database must pass ``PRAGMA integrity_check``.

Window (``test_shell_hub_and_worker_kills_leave_a_working_window``): the real pywebview window
under Xvfb; the shell, the hub or the open app's worker is SIGKILLed while the driver taps; the
shell must come back to the launcher (or the app) and an app must open and answer a tap again.

``VH_FAULT_ROUNDS`` (default 6 and 3) makes the runs longer; ``VH_FAULT_SEED`` replays one.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, HubProcess, start_hub
from tests.e2e.window import shell_process
from tests.faults import kill_helpers as kh
from tests.faults.io_helpers import ROUNDS_ENV, SEED_ENV, fault_rounds, free_port
from tests.integration.test_cache_power_loss import tree
from vehicle_host.errors import HostTimeoutError
from vehicle_host.hub.client import HubClient
from vehicle_host.plugins.host import PARENT_POLL_S, STOP_TIMEOUT_S
from vehicle_host.shell.driver import ShellDriver, is_uniform
from vehicle_host.shell.xvfb import VirtualDisplay

PLUGINS = ("storage", "parts_ordering", "profile")
LOAD_VICTIMS = ("hub", *PLUGINS, "worker", "installer")
ROUNDS_PER_LOAD_APP = 8  # keeps each app well under the outbox's 500 orders and storage's 2048 keys
CHURN_APP = "org.vehiclehost.samples.vehicleinfo"
CHURN_VERSIONS = ("2.0.1", "2.0.2", "2.0.3")
HUB_ENV = {"VEHICLE_HOST_CRASH_LIMIT": "1000", "VEHICLE_HOST_LOG_LEVEL": "INFO"}
#: workers go with the hub at once (PDEATHSIG); a plugin notices within PARENT_POLL_S, then gives its
#: calls and its stop STOP_TIMEOUT_S each (and its socket a second) before it exits
CHILDREN_GONE_S = PARENT_POLL_S + 2 * STOP_TIMEOUT_S + 5.0
RECOVER_S = 45.0


# -- headless: writes under load --------------------------------------------------------------


@dataclass
class GrantLog:
    """The answers sent for one permission, in order: (value, acknowledged)."""

    sent: list[tuple[bool | None, bool]] = field(default_factory=list)

    def allowed(self) -> set[bool | None]:
        """What the store may hold: the last acknowledged answer, or any sent after it."""
        last = max((i for i, (_, ok) in enumerate(self.sent) if ok), default=-1)
        base: set[bool | None] = {self.sent[last][0]} if last >= 0 else {None}
        return base | {value for value, _ in self.sent[last + 1 :]}


@dataclass
class Installs:
    """The installer loop's record: acknowledged versions and the attempts after the last one."""

    last_acked: str | None = None
    since: list[str] = field(default_factory=list)
    acked: int = 0
    pid: int | None = None

    def allowed(self) -> set[str]:
        return ({self.last_acked} if self.last_acked else set()) | set(self.since)


class LoadRig:
    def __init__(self, root: Path, chaos: kh.Chaos, rounds: int) -> None:
        self.root = root
        self.chaos = chaos
        self.rounds = rounds
        self.cache = root / "cache"
        self.apps = [f"org.test.faultload{n}" for n in range(rounds // ROUNDS_PER_LOAD_APP + 1)]
        self.config = root / "host.toml"
        self.hub: HubProcess | None = None
        self.hub_pids: list[int] = []  # every hub started, for the clean-up of what a killed one left
        self.client: HubClient | None = None
        self.reader: asyncio.Task[None] | None = None
        self.keys: dict[str, set[str]] = {app: set() for app in self.apps}
        self.orders: dict[str, str] = {}  # order id -> note
        self.grants: dict[str, GrantLog] = {p: GrantLog() for p in kh.GRANT_PERMISSIONS}
        self.installs = Installs()
        self.bundles: dict[str, Path] = {}
        self.reference: dict[str, dict[str, str]] = {}
        self.crashed: set[str] = set()
        self.stopping = False
        self.hub_restarts = 0

    def why(self, problem: str) -> str:
        log = self.hub.log()[-3000:] if self.hub is not None else ""
        return self.chaos.why(f"{problem}\nhub log tail:\n{log}")

    # -- setup ------------------------------------------------------------------------------------
    def prepare(self) -> None:
        for app_id in self.apps:
            source = kh.write_load_app(self.root / "src" / app_id, app_id)
            kh.install(self.cache, kh.pack(source, self.root / f"{app_id}.vhb"))
        churn = REPO / "examples" / "vehicle-info"
        for version in CHURN_VERSIONS:
            source = kh.versioned_copy(churn, self.root / "src" / f"churn-{version}", version)
            self.bundles[version] = kh.pack(source, self.root / f"churn-{version}.vhb")
            reference = self.root / "reference" / version
            kh.install(reference, self.bundles[version])
            found = kh.active_version(reference, CHURN_APP)
            assert found is not None
            self.reference[version] = tree(found[1])
        self.installs.last_acked = kh.install(self.cache, self.bundles[CHURN_VERSIONS[0]])
        url = f"http://127.0.0.1:{free_port()}/"  # the dealer stays offline: orders stay queued
        self.config.write_text(f'[plugins.parts_ordering]\nservice_url = "{url}"\nretry_base_s = 30\n')

    async def start_hub(self) -> None:
        log = self.root / "hub.log"
        if log.exists():  # keep the log of the hub that was killed
            log.rename(self.root / f"hub-{self.hub_restarts}.log")
        self.hub_restarts += 1
        (self.root / "run" / "hub.sock").unlink(missing_ok=True)  # a killed hub leaves it behind
        self.hub = await asyncio.to_thread(
            start_hub,
            self.root,
            self.cache / "apps",
            plugins=",".join(PLUGINS),
            config=self.config,
            env=HUB_ENV,
        )
        self.hub_pids.append(self.hub.process.pid)
        self.client = HubClient(self.hub.endpoint, role="shell")
        await self.client.connect(timeout=20)
        self.reader = asyncio.create_task(self._read(self.client))
        for app_id in self.apps:  # parts.order asks for consent: the driver said "always" once
            await self.grant(app_id, "parts.order", True)

    async def stats(self) -> dict[str, Any]:
        assert self.client is not None
        reply = await self.client.request("hub.stats", "hub", {}, timeout=10)
        return dict(reply.payload["stats"])

    async def grant(self, app_id: str, permission: str, granted: bool | None) -> bool:
        assert self.client is not None
        payload = {"app_id": app_id, "permission": permission, "granted": granted}
        reply = await self.client.request("grant.set", "hub", payload, timeout=5)
        assert reply.payload.get("ok") is True, self.why(f"grant.set refused: {reply.payload}")
        return True

    async def _read(self, client: HubClient) -> None:
        """Record every acknowledged write the app reports; answer a consent question with yes."""
        while True:
            message = await client.inbox.get()
            app_id = message.source.removeprefix("app:")
            if message.type == "page.setData":
                diff = message.payload.get("diff", {})
                if isinstance(diff.get("s"), str) and app_id in self.keys:
                    self.keys[app_id].add(diff["s"])
                if isinstance(diff.get("o"), str):
                    order_id, note = diff["o"].split(" ", 1)
                    self.orders[order_id] = note
            elif message.type == "app.error":
                self.crashed.add(str(message.payload.get("app_id")))
            elif message.type == "ui.request" and message.payload.get("kind") == "consent":
                reply = {"request_id": message.payload["request_id"], "result": {"granted": True}}
                client.send("ui.response", "hub", reply)

    # -- load -------------------------------------------------------------------------------------
    async def launch(self, app_id: str) -> None:
        assert self.client is not None
        self.crashed.discard(app_id)
        before = len(self.keys[app_id])
        self.client.send("app.launch", "hub", {"app_id": app_id})
        await self.wait(lambda: len(self.keys[app_id]) > before, f"{app_id} to store again")

    async def wait(self, check: Any, what: str, timeout: float = RECOVER_S) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(self.why(f"timed out waiting for {what}"))
            await asyncio.sleep(0.05)

    async def grant_loop(self, seed: int) -> None:
        """Answers for the driver, one after another, as fast as the hub acknowledges them."""
        rng = random.Random(seed)
        while not self.stopping:
            client = self.client
            if client is None:
                await asyncio.sleep(0.05)
                continue
            permission = rng.choice(kh.GRANT_PERMISSIONS)
            value = rng.choice((True, False, None))
            log = self.grants[permission]
            log.sent.append((value, False))
            payload = {"app_id": self.apps[0], "permission": permission, "granted": value}
            try:
                reply = await client.request("grant.set", "hub", payload, timeout=2)
            except HostTimeoutError:
                await asyncio.sleep(0.1)  # the hub is down: it may or may not have stored it
                continue
            if reply.payload.get("ok") is True:
                log.sent[-1] = (value, True)
            await asyncio.sleep(0.01)

    async def install_loop(self) -> None:
        """``vehicle-host bundle install`` again and again, each version after the other."""
        n = 0
        while not self.stopping:
            n += 1
            version = CHURN_VERSIONS[n % len(CHURN_VERSIONS)]
            self.installs.since.append(version)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "vehicle_host",
                "bundle",
                "install",
                str(self.bundles[version]),
                "--cache",
                str(self.cache),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            self.installs.pid = process.pid
            out, _ = await process.communicate()
            self.installs.pid = None
            if process.returncode == 0:
                assert f"installed {CHURN_APP} {version}" in out.decode(), out.decode()
                self.installs.last_acked, self.installs.since = version, []
                self.installs.acked += 1
            elif process.returncode != -signal.SIGKILL:
                raise AssertionError(self.why(f"install of {version} failed: {out.decode()}"))

    # -- kills ------------------------------------------------------------------------------------
    async def kill(self, victim: str, app_id: str) -> None:
        stats = await self.stats()
        keys, orders = len(self.keys[app_id]), len(self.orders)
        if victim == "hub":
            assert self.hub is not None and self.client is not None and self.reader is not None
            children = list(stats["workers"].values())
            children += [p["pid"] for p in stats["plugins"]["plugins"].values() if p["pid"]]
            kh.kill9(self.hub.process.pid)
            await asyncio.to_thread(self.hub.process.wait, 10)
            self.reader.cancel()
            await self.client.close()
            self.client = None
            left = await asyncio.to_thread(kh.wait_gone, children, CHILDREN_GONE_S)
            assert not left, self.why(f"processes of the killed hub still run: {kh.describe(left)}")
            await self.start_hub()
            await self.launch(app_id)
        elif victim in PLUGINS:
            old = stats["plugins"]["plugins"][victim]["pid"]
            assert kh.kill9(old), self.why(f"plugin {victim} ({old}) was not running")

            async def restarted() -> bool:
                entry = (await self.stats())["plugins"]["plugins"][victim]
                return bool(entry["pid"] != old and entry["connected"] and entry["methods"] > 0)

            deadline = asyncio.get_running_loop().time() + RECOVER_S
            while not await restarted():
                assert asyncio.get_running_loop().time() < deadline, self.why(f"{victim} was not restarted")
                await asyncio.sleep(0.1)
        elif victim == "worker":
            pid = stats["workers"][app_id]
            assert kh.kill9(pid), self.why(f"worker {pid} of {app_id} was not running")
            await self.wait(lambda: app_id in self.crashed, f"the crash of {app_id} to be reported")
            await self.launch(app_id)
        elif victim == "installer":
            pid = self.installs.pid
            acked = self.installs.acked
            if pid is not None:
                kh.kill9(pid)
            await self.wait(lambda: self.installs.acked > acked, "an install after the kill")
        # the host serves again: new writes of both kinds are acknowledged after the kill
        await self.wait(lambda: len(self.keys[app_id]) > keys, f"a storage write after killing {victim}")
        await self.wait(lambda: len(self.orders) > orders, f"an order after killing {victim}")

    # -- checks -----------------------------------------------------------------------------------
    def check_disk(self) -> None:
        state = self.root / "state"
        databases = [*state.rglob("*.sqlite3"), *state.rglob("*.db"), self.cache / "cache.db"]
        assert len(databases) >= 5, self.why(f"databases missing: {databases}")
        for db in databases:
            result = kh.integrity(db)
            assert result == "ok", self.why(f"{db} fails integrity_check: {result}")
        storage = state / "plugins" / "storage" / "storage.sqlite3"
        for app_id, keys in self.keys.items():
            items = kh.stored_items(storage, app_id)
            lost = sorted(k for k in keys if k not in items)
            assert not lost, self.why(f"{len(lost)} acknowledged storage writes of {app_id} lost: {lost[:5]}")
            bad = sorted(k for k in keys if items[k] != kh.store_value(k))
            assert not bad, self.why(f"acknowledged storage values corrupted: {bad[:5]}")
        outbox = kh.outbox_notes(state / "plugins" / "parts_ordering" / "parts_ordering.sqlite3")
        lost = sorted(o for o in self.orders if o not in outbox)
        assert not lost, self.why(f"{len(lost)} acknowledged orders lost: {lost[:5]}")
        for order_id, note in self.orders.items():
            payload = outbox[order_id]
            assert payload.get("note") == note and payload.get("items"), self.why(
                f"order {order_id}: {payload}"
            )
        grants_db = state / "grants.sqlite3"
        stored = kh.stored_grants(grants_db, self.apps[0])
        for permission, log in self.grants.items():
            value = stored.get(permission)
            assert value in log.allowed(), self.why(
                f"grant {permission} is {value}, expected one of {log.allowed()} (sent {log.sent[-5:]})"
            )
        for app_id in self.apps:
            assert kh.stored_grants(grants_db, app_id).get("parts.order") is True, self.why("grant lost")
        active = kh.active_version(self.cache, CHURN_APP)
        assert active is not None, self.why("the installed app vanished from the bundle cache")
        version, path = active
        assert version in self.installs.allowed(), self.why(
            f"active version {version}; the last acknowledged install was {self.installs.last_acked}"
        )
        assert tree(path) == self.reference[version], self.why(f"the files of {version} differ")


async def load_run(rig: LoadRig, victims: list[str]) -> None:
    await rig.start_hub()
    grants = asyncio.create_task(rig.grant_loop(rig.chaos.seed + 1))
    installs = asyncio.create_task(rig.install_loop())
    try:
        current = ""
        for number, victim in enumerate(victims):
            app_id = rig.apps[number // ROUNDS_PER_LOAD_APP]
            if app_id != current:
                await rig.launch(app_id)
                current = app_id
            delay = rig.chaos.delay(0.2, 1.5)
            rig.chaos.note(f"round {number}: {app_id} writes for {delay} s, then kill -9 {victim}")
            await asyncio.sleep(delay)
            await rig.kill(victim, app_id)
            for task in (grants, installs):
                if task.done():
                    task.result()  # raises what went wrong in the loop
        # the last crash: the hub dies under load, and nothing stops cleanly before the checks
        assert rig.hub is not None
        stats = await rig.stats()
        children = [*stats["workers"].values()]
        children += [p["pid"] for p in stats["plugins"]["plugins"].values() if p["pid"]]
        rig.chaos.note("final: kill -9 the hub")
        kh.kill9(rig.hub.process.pid)
        await asyncio.to_thread(rig.hub.process.wait, 10)
        left = await asyncio.to_thread(kh.wait_gone, children, CHILDREN_GONE_S)
        assert not left, rig.why(f"processes of the killed hub still run: {kh.describe(left)}")
    finally:
        rig.stopping = True
        if rig.installs.pid is not None:
            kh.kill9(rig.installs.pid)
        await asyncio.wait([grants, installs], timeout=30)
        if rig.reader is not None:
            rig.reader.cancel()
        if rig.client is not None:
            await rig.client.close()
    rig.check_disk()
    # and the host starts again from what is on disk: the active bundle is listed, apps work
    rig.stopping = False
    await rig.start_hub()
    try:
        assert rig.client is not None
        listing = await rig.client.request("app.list", "hub", {})
        versions = {a["id"]: a["version"] for a in listing.payload["apps"]}
        active = kh.active_version(rig.cache, CHURN_APP)
        assert active is not None and versions.get(CHURN_APP) == active[0], rig.why(f"listed {versions}")
        await rig.launch(rig.apps[-1])
    finally:
        assert rig.reader is not None and rig.client is not None
        rig.reader.cancel()
        await rig.client.close()


@pytest.mark.integration
def test_kills_under_write_load_lose_no_acknowledged_write(short_dir: Path) -> None:
    chaos = kh.Chaos.from_env()
    rounds = fault_rounds(len(LOAD_VICTIMS))
    rig = LoadRig(short_dir, chaos, rounds)
    rig.prepare()
    victims = chaos.victims(LOAD_VICTIMS, rounds)
    print(f"{SEED_ENV}={chaos.seed} {ROUNDS_ENV}={rounds}")  # shown with a failure
    try:
        asyncio.run(load_run(rig, victims))
    except (HostTimeoutError, TimeoutError) as exc:
        raise AssertionError(rig.why(str(exc))) from None
    finally:
        if rig.hub is not None:
            rig.hub.stop()
        kh.kill_groups(rig.hub_pids)
    print("\n".join(chaos.log))
    grants = sum(ok for log in rig.grants.values() for _, ok in log.sent)
    print(
        f"acknowledged: {sum(map(len, rig.keys.values()))} storage writes, {len(rig.orders)} orders, "
        f"{grants} grants, {rig.installs.acked} installs"
    )
    assert sum(map(len, rig.keys.values())) > rounds and len(rig.orders) > rounds, chaos.why("too few writes")


# -- the window ---------------------------------------------------------------------------------

WINDOW_VICTIMS = ("shell", "hub", "worker")
APP = "org.vehiclehost.samples.vehicleinfo"
TAPPED = re.compile(r"Tapped (\d+) times")


class WindowRig:
    def __init__(self, root: Path, display: str, chaos: kh.Chaos) -> None:
        self.root = root
        self.display = display
        self.chaos = chaos
        self.hub = start_hub(root, root / "apps")
        self.hub_pids = [self.hub.process.pid]  # every hub started, for the clean-up
        self.shell = ExitStack()
        self.driver: ShellDriver | None = None

    def why(self, problem: str) -> str:
        shell_log = (self.root / "shell.log").read_text(errors="replace")[-2000:]
        return self.chaos.why(
            f"{problem}\nshell log tail:\n{shell_log}\nhub log tail:\n{self.hub.log()[-2000:]}"
        )

    def start_shell(self) -> ShellDriver:
        self.driver = self.shell.enter_context(shell_process(self.root, self.hub.runtime_dir, self.display))
        return self.driver

    def hub_stats(self) -> dict[str, Any]:
        async def ask() -> dict[str, Any]:
            client = HubClient(self.hub.endpoint, role="client")
            try:
                await client.connect()
                return dict((await client.request("hub.stats", "hub", {})).payload["stats"])
            finally:
                await client.close()

        return asyncio.run(ask())

    def taps(self) -> int:
        assert self.driver is not None
        found = TAPPED.search(self.driver.inspect()["text"])
        assert found is not None, self.why("the app does not show its tap count")
        return int(found.group(1))

    def open_app(self) -> ShellDriver:
        driver = self.driver
        assert driver is not None
        snap = driver.wait_for(lambda s: s["online"] and s["apps"] >= 3, timeout=30, what="the launcher")
        if snap["appId"] != APP or snap["error"]:
            if snap["view"] != "launcher":
                driver.eval("vh.home()")
            driver.wait_for(lambda s: s["view"] == "launcher", what="the launcher")
            driver.tap_selector(f'[data-app-id="{APP}"]')
        driver.wait_for(
            lambda s: s["appId"] == APP and s["painted"] > 0 and not s["error"], timeout=30, what="the app"
        )
        return driver

    def tap_works(self) -> None:
        """A real tap reaches the app's logic and the new count is painted."""
        driver = self.open_app()
        before = self.taps()
        driver.tap_page_node("count")
        kh.wait_until(lambda: True if self.taps() == before + 1 else None, 15, "the tap to be counted")

    def kill(self, victim: str) -> None:
        driver = self.driver
        assert driver is not None
        if victim == "shell":
            pid = self._shell_pid()
            os.killpg(os.getpgid(pid), signal.SIGKILL)  # systemd ends the whole unit (cage, WebKit)
            self.shell.close()
            self.driver = None
            driver = self.start_shell()
            snap = driver.wait_for(
                lambda s: s["online"] and s["apps"] >= 3, timeout=30, what="the launcher of the new shell"
            )
            assert snap["view"] == "launcher" and snap["linkBanner"] is None, self.why(
                f"after restart: {snap}"
            )
        elif victim == "hub":
            stats = self.hub_stats()
            children = list(stats["workers"].values())
            children += [p["pid"] for p in stats["plugins"]["plugins"].values() if p["pid"]]
            kh.kill9(self.hub.process.pid)
            self.hub.process.wait(10)
            driver.wait_for(lambda s: not s["online"], timeout=10, what="the shell to notice")
            left = kh.wait_gone(children, CHILDREN_GONE_S)
            assert not left, self.why(f"the dead hub's children still run: {kh.describe(left)}")
            self.hub.log_path.rename(self.root / "hub-killed.log")
            (self.hub.runtime_dir / "hub.sock").unlink(missing_ok=True)
            self.hub = start_hub(self.root, self.root / "apps")
            self.hub_pids.append(self.hub.process.pid)
            driver.wait_for(
                lambda s: s["online"] and s["linkBanner"] is None, timeout=40, what="the shell to reconnect"
            )
        elif victim == "worker":
            pid = self.hub_stats()["workers"].get(APP)
            if pid is not None:
                kh.kill9(pid)
                snap = driver.wait_for(lambda s: bool(s["error"]), timeout=20, what="the crash page")
                assert snap["appId"] == APP, self.why(f"the crash page is for {snap['appId']}")
                driver.tap_selector("#error-restart")
                driver.wait_for(
                    lambda s: s["appId"] == APP and s["painted"] > 0 and not s["error"],
                    timeout=30,
                    what="the app to restart",
                )

    def _shell_pid(self) -> int:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmd = (entry / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"shell" in cmd and str(self.hub.runtime_dir).encode() in cmd:
                    return int(entry.name)
        raise AssertionError(self.why("no shell process found"))


@pytest.mark.e2e
def test_shell_hub_and_worker_kills_leave_a_working_window(short_dir: Path) -> None:
    chaos = kh.Chaos.from_env()
    rounds = fault_rounds(len(WINDOW_VICTIMS))
    shutil.copytree(REPO / "examples", short_dir / "apps")
    with VirtualDisplay(800, 480) as display:
        rig = WindowRig(short_dir, display.display, chaos)
        try:
            rig.start_shell()
            for number, victim in enumerate(chaos.victims(WINDOW_VICTIMS, rounds)):
                driver = rig.open_app()
                taps = chaos.random.randint(0, 3)
                delay = chaos.delay(0.0, 0.8)
                chaos.note(f"round {number}: {taps} taps, {delay} s, then kill -9 {victim}")
                try:
                    for _ in range(taps):
                        driver.tap_page_node("count")
                    time.sleep(delay)
                    rig.kill(victim)
                    rig.tap_works()
                except (HostTimeoutError, TimeoutError) as exc:
                    raise AssertionError(rig.why(str(exc))) from None
            driver = rig.open_app()
            driver.eval("vh.home()")
            driver.wait_for(lambda s: s["view"] == "launcher", what="the launcher")
            shot = driver.screenshot(REPO / "artifacts" / "e2e" / "faults-kill9-launcher.png")
            assert not is_uniform(shot), chaos.why("the launcher is not painted")
        finally:
            print("\n".join(chaos.log))
            rig.shell.close()
            rig.hub.stop()
            kh.kill_groups(rig.hub_pids)
