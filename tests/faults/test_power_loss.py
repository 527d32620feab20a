"""Power loss (SIGKILL at a random moment) during install+activate cycles and during outbox writes.

A child process loops over real work and prints a line each time an operation is acknowledged; the
test kills it with SIGKILL after a seeded random delay, then checks the state on disk with fresh
objects, as a restarted unit would:

- bundle cache: the active version is the last acknowledged one or the one being activated, every
  object is whole, nothing half-made is left, the history agrees with the links, and installing,
  activating and rolling back work again. (``tests/integration/test_cache_power_loss.py`` kills one
  install at every write step; this kills repeated install / activate / gc cycles at random.)
- parts outbox: every acknowledged order is still in the outbox and, after a restart with the dealer
  online, reaches the dealer exactly once: the dealer on 127.0.0.1 records the ``Idempotency-Key``
  of every POST, each key yields one dealer order, and no order appears under two keys.

The seed is in every failure message; ``VH_FAULT_SEED`` replays it and ``VH_FAULT_ROUNDS`` runs more
rounds (e.g. ``VH_FAULT_ROUNDS=200`` for a soak).
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faults.io_helpers import (
    KeyLog,
    fault_rounds,
    fault_seed,
    free_port,
    recording_dealer,
    replay_hint,
    stop_dealer,
)
from tests.integration.test_cache_power_loss import APP, tree, version_source
from vehicle_host.bundle_cache import BundleCache
from vehicle_host.bundles import archive, catalog
from vehicle_host.plugins.contract import PluginContext
from vehicle_host.plugins.parts_ordering.outbox import FINAL, PartsDB
from vehicle_host.plugins.parts_ordering.plugin import PartsOrderingPlugin

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0

INSTALLER = """
import sys
from pathlib import Path
from vehicle_host.bundle_cache import BundleCache

root, bundles = Path(sys.argv[1]), [Path(b) for b in sys.argv[2:]]
cache = BundleCache(root)
print("READY", flush=True)
n = 0
while True:
    installed = cache.install(bundles[n % len(bundles)])
    print("WILL", installed.version, flush=True)
    cache.activate(installed.app_id, installed.digest)
    print("ACTIVE", installed.version, flush=True)
    cache.gc(keep=1)  # deletes the others, so the next install extracts again
    n += 1
"""

ORDERER = """
import asyncio, sys
from vehicle_host.plugins.contract import CallContext, PluginContext
from vehicle_host.plugins.parts_ordering.plugin import PartsOrderingPlugin

state, url, tag, app = sys.argv[1:5]

async def publish(key, value):
    return None

async def main():
    config = {"service_url": url, "retry_base_s": 0.02, "retry_max_s": 0.1, "timeout_s": 2.0}
    plugin = PartsOrderingPlugin(PluginContext(config=config, publish_state=publish, state_dir=state))
    await plugin.start()
    decls = {m.name: m for m in plugin.declarations()}

    async def call(name, args):
        return await plugin.call(decls[name], args, CallContext(app, 1, name))

    print("READY", flush=True)
    n = 0
    while True:
        n += 1
        await call("parts.cartAdd", {"partNumber": "SP-1001", "quantity": 1})
        placed = await call("parts.order", {"note": f"{tag}-{n}"})
        print("ACK", placed["orderId"], f"{tag}-{n}", placed["status"], flush=True)

asyncio.run(main())
"""


def kill_after(command: list[str], delay_s: float) -> list[list[str]]:
    """Run ``command`` until it prints READY, SIGKILL it ``delay_s`` later; the lines it printed."""
    child = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        ready = child.stdout.readline()
        assert ready.strip() == "READY", f"child did not start: {ready!r} {child.stderr.read()[-2000:]}"
        time.sleep(delay_s)
        if child.poll() is not None:
            raise AssertionError(f"child ended early ({child.returncode}): {child.stderr.read()[-2000:]}")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=READY_TIMEOUT_S)
        # read through the same buffered file as readline: lines it already buffered count too
        # (communicate() reads the raw pipe and would drop them)
        out = child.stdout.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
    assert child.returncode == -signal.SIGKILL
    # a line the kill cut short (no newline yet) was never acknowledged
    return [line.split() for line in out.split("\n")[:-1] if line.strip()]


def with_seed(seed: int, round_no: int, check: Callable[[], None]) -> None:
    try:
        check()
    except AssertionError as exc:
        raise AssertionError(f"{replay_hint(seed)}, round {round_no}: {exc}") from exc


# -- install + activate cycles -----------------------------------------------------------------------


def test_kill_during_install_activate_cycles_leaves_a_whole_active_version(tmp_path: Path) -> None:
    seed, rounds = fault_seed(), fault_rounds(4)
    versions = {"1.0.0": 0, "2.0.0": 3, "3.0.0": 6}
    sources = {v: version_source(tmp_path, v, extra) for v, extra in versions.items()}
    expected = {v: tree(src) for v, src in sources.items()}
    bundles = []
    for v, src in sources.items():
        bundles.append(tmp_path / f"{v}.vhb")
        archive.pack(src, bundles[-1])
    root = tmp_path / "cache"
    with BundleCache(root) as cache:
        first = cache.install(bundles[0])
        cache.activate(APP, first.digest)
    script = tmp_path / "installer.py"
    script.write_text(INSTALLER)
    last_active = "1.0.0"

    for round_no in range(rounds):
        rng = random.Random(seed * 1000 + round_no)
        order = rng.sample(bundles, len(bundles))
        lines = kill_after([sys.executable, str(script), str(root), *map(str, order)], rng.uniform(0.05, 0.6))

        def check(lines: list[list[str]] = lines) -> None:
            nonlocal last_active
            acked = [words[1] for words in lines if words[0] == "ACTIVE"]
            intents = [words[1] for words in lines if words[0] == "WILL"]
            allowed = {acked[-1] if acked else last_active}
            if intents and (not acked or len(intents) > len(acked)):
                allowed.add(intents[-1])
            with BundleCache(root) as cache:
                apps, broken = catalog.scan(cache.apps_dir)
                assert broken == [], broken
                [app] = apps
                version = app.manifest.version
                assert version in allowed, f"active {version}, expected one of {sorted(allowed)}"
                assert tree(app.path) == expected[version], f"the files of {version} are not whole"
                active = cache.active(APP)
                assert active is not None and active.version == version
                assert cache.history.activations(APP)[0] == active.digest
                leftovers = [p.name for d in (root / "objects", root / "apps") for p in d.iterdir()]
                assert not [n for n in leftovers if n.startswith(".")], leftovers
                for installed in cache.versions(APP):
                    assert tree(installed.path) == expected[installed.version], installed
                last_active = version

        with_seed(seed, round_no, check)

    with BundleCache(root) as cache:  # and it still works
        for bundle in bundles:
            installed = cache.install(bundle)
            cache.activate(APP, installed.digest)
        assert cache.active(APP).version == "3.0.0"  # type: ignore[union-attr]
        assert cache.rollback(APP).version == "2.0.0"


# -- outbox ------------------------------------------------------------------------------------------


async def _no_publish(key: str, value: Any) -> None:
    return None


def app_of(round_no: int) -> str:
    return f"com.demo.r{round_no}"


def deliver_everything(state: Path, url: str, apps: list[str]) -> list[dict[str, Any]]:
    """Restart the plugin on ``state`` and wait until every outbox entry is final; the entries."""

    async def main() -> list[dict[str, Any]]:
        config = {"service_url": url, "retry_base_s": 0.02, "retry_max_s": 0.1, "timeout_s": 2.0}
        plugin = PartsOrderingPlugin(
            PluginContext(config=config, publish_state=_no_publish, state_dir=str(state))
        )
        await plugin.start()
        try:
            async with asyncio.timeout(30):
                while await asyncio.to_thread(plugin.db.next_due) is not None:
                    await asyncio.sleep(0.05)
                entries = [e for app in apps for e in await asyncio.to_thread(plugin.db.entries, app, 10_000)]
                assert all(e["status"] in FINAL for e in entries)
                return entries
        finally:
            await plugin.stop()

    return asyncio.run(main())


def test_kill_during_order_writes_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    seed, rounds = fault_seed(), fault_rounds(4)
    server, keys = recording_dealer(tmp_path / "dealer.sqlite3")
    offline = f"http://127.0.0.1:{free_port()}"  # nothing listens: orders stay queued
    state = tmp_path / "parts"
    script = tmp_path / "orderer.py"
    script.write_text(ORDERER)
    acked: dict[str, str] = {}  # order id -> note
    try:
        for round_no in range(rounds):
            rng = random.Random(seed * 1000 + round_no)
            url = server.url if rng.random() < 0.6 else offline
            lines = kill_after(
                [sys.executable, str(script), str(state), url, f"r{round_no}", app_of(round_no)],
                rng.uniform(0.1, 0.8),
            )
            acked.update({words[1]: words[2] for words in lines if words[0] == "ACK"})

            apps_so_far = tuple(app_of(r) for r in range(round_no + 1))

            def check_queued(apps: tuple[str, ...] = apps_so_far) -> None:
                db = PartsDB(state / "parts_ordering.sqlite3")
                try:
                    stored = {e["id"]: e for app in apps for e in db.entries(app, 10_000)}
                finally:
                    db.close()
                missing = sorted(set(acked) - set(stored))
                assert not missing, f"acknowledged orders lost: {missing}"
                assert all(stored[i]["payload"]["note"] == note for i, note in acked.items())

            with_seed(seed, round_no, check_queued)
        entries = deliver_everything(state, server.url, [app_of(r) for r in range(rounds)])

        def check_delivered() -> None:
            check_exactly_once(entries, keys, server.store.order_count(), acked)
            notes = [server.store.order(e["remote"]["orderId"])["note"] for e in entries]
            assert len(notes) == len(set(notes)), "one order reached the dealer twice"

        with_seed(seed, rounds, check_delivered)
        assert acked, f"{replay_hint(seed)}: no order was acknowledged in {rounds} rounds"
    finally:
        stop_dealer(server)


def check_exactly_once(
    entries: list[dict[str, Any]], keys: KeyLog, dealer_orders: int, acked: dict[str, str]
) -> None:
    by_key = keys.by_key()
    assert set(acked) <= {e["id"] for e in entries}, "an acknowledged order is missing"
    assert all(e["status"] in ("confirmed", "backordered") for e in entries), [e["status"] for e in entries]
    assert {k for k, ids in by_key.items() if len(ids) > 1} == set(), "one key made two dealer orders"
    assert set(by_key) == {e["key"] for e in entries}, "the dealer saw keys the outbox does not hold"
    for entry in entries:
        assert by_key[entry["key"]] == {entry["remote"]["orderId"]}, entry
    assert dealer_orders == len(entries), f"the dealer holds {dealer_orders} orders for {len(entries)}"
    assert all(e["key"].startswith("vh-") for e in entries)
