"""The profile plugin on a real SQLite file and through a real plugin host process: the driver's
profile, dealer unlock by PIN and by HMAC challenge, lockout after wrong PINs, session expiry."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.hub.gateway import AppPolicy, decide, rules_from_declare
from vehicle_host.plugins import profile
from vehicle_host.plugins.contract import CallContext, InvalidArguments, PluginError
from vehicle_host.plugins.profile import DealerLocked, ProfilePlugin, WrongPin, make_pin_hash, verify_pin

from .plugin_process import FakeHub, Published, run_plugin

pytestmark = pytest.mark.integration

PIN = "482916"
PIN_HASH = make_pin_hash(PIN)
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def with_plugin(
    state_dir: Path, body: Callable[[ProfilePlugin, Published], Awaitable[None]], **config: Any
) -> Published:
    return run_plugin(ProfilePlugin, state_dir, body, **config)


async def call(
    plugin: ProfilePlugin, method: str, args: dict[str, Any], app_id: str = "com.dealer.tool"
) -> Any:
    decl = {m.name: m for m in plugin.declarations()}[method]
    return await plugin.call(decl, args, CallContext(app_id=app_id, call_id=1, method=method))


# -- PIN hashes -------------------------------------------------------------------------------------
def test_pin_hashes_are_salted_and_verify_only_the_right_pin() -> None:
    assert PIN not in PIN_HASH and PIN_HASH.startswith("scrypt$")
    assert make_pin_hash(PIN) != PIN_HASH  # a fresh salt each time
    assert verify_pin(PIN, PIN_HASH) and not verify_pin("482917", PIN_HASH)
    pbkdf2 = make_pin_hash(PIN, scheme="pbkdf2_sha256")
    assert verify_pin(PIN, pbkdf2) and not verify_pin("0000", pbkdf2)
    for broken in ("", "scrypt$1$2", "md5$x$y", "scrypt$1048576$8$1$AAAAAAAAAAAAAAAA$" + "A" * 43, "x" * 600):
        with pytest.raises(PluginError, match="hash-pin"):
            verify_pin(PIN, broken)
    with pytest.raises(InvalidArguments, match="4 to 64"):
        make_pin_hash("12")


def test_the_hash_pin_helper_prints_a_usable_hash() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vehicle_host.plugins.profile", "hash-pin", "--stdin"],
        input=f"{PIN}\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert verify_pin(PIN, out) and not verify_pin("111111", out)


# -- driver profile -------------------------------------------------------------------------------
def test_the_profile_has_defaults_changes_partially_and_survives_a_reopen(tmp_path: Path) -> None:
    async def first(p: ProfilePlugin, published: Published) -> None:
        assert await call(p, "profile.get", {}) == profile.DEFAULT_PROFILE
        answer = await call(
            p, "profile.set", {"displayName": "Ana Müller", "units": "imperial", "_allow": []}
        )
        assert answer == {**profile.DEFAULT_PROFILE, "displayName": "Ana Müller", "units": "imperial"}
        await call(p, "profile.set", {"language": "de-AT", "preferredDealer": "Autohaus Nord, Linz"})

    async def second(p: ProfilePlugin, published: Published) -> None:
        assert await call(p, "profile.get", {}) == {
            "displayName": "Ana Müller",
            "language": "de-AT",
            "units": "imperial",
            "preferredDealer": "Autohaus Nord, Linz",
        }
        await call(p, "profile.set", {"preferredDealer": None})
        assert (await call(p, "profile.get", {}))["preferredDealer"] is None

    with_plugin(tmp_path, first)
    with_plugin(tmp_path, second)
    assert (tmp_path / profile.FILENAME).stat().st_mode & 0o077 == 0


def test_profile_limits_give_clear_errors(tmp_path: Path) -> None:
    async def body(p: ProfilePlugin, published: Published) -> None:
        for args, match in (
            ({"displayName": "x" * 65}, "at most 64"),
            ({"language": "english please"}, "language tag"),
            ({"units": "furlongs"}, "metric"),
            ({"preferredDealer": "d" * 129}, "at most 128"),
            ({"preferredDealer": 7}, "at most 128"),
            ({}, "at least one"),
        ):
            with pytest.raises(InvalidArguments, match=match):
                await call(p, "profile.set", args)
        assert await call(p, "profile.get", {}) == profile.DEFAULT_PROFILE

    with_plugin(tmp_path, body)


def test_the_gateway_reads_the_declarations() -> None:
    rules = rules_from_declare("profile", [m.to_wire() for m in ProfilePlugin.declarations()])
    assert rules["profile.get"].consent and rules["profile.get"].permission == "profile.read"
    assert rules["profile.set"].driving == "parked_only"
    assert rules["profile.unlockDealer"].driving == "parked_only"
    app = AppPolicy("com.test.p", "P", permissions=frozenset({"profile.write", "profile.dealer"}))
    parked, moving = {"parked": True}, {"parked": False, "speed_kmh": 40}

    def judge(method: str, args: dict[str, Any], vehicle: Any = None) -> str:
        d = decide(app, method, args, plugin_rules=rules, grants={}, vehicle=vehicle)
        return "allow" if d.allowed else d.code or d.verdict

    assert judge("profile.set", {"units": "metric"}, parked) == "allow"
    assert judge("profile.set", {"units": "metric"}, moving) == "denied"
    assert judge("profile.set", {"units": "kelvin"}, parked) == "invalid_args"
    assert judge("profile.get", {}) == "denied"  # the manifest lacks profile.read
    assert judge("profile.unlockDealer", {"pin": PIN}, moving) == "denied"
    assert judge("profile.unlockDealer", {"pin": "1"}, parked) == "invalid_args"
    assert judge("profile.unlockDealer", {"pin": PIN}, parked) == "allow"


# -- dealer role ------------------------------------------------------------------------------------
def test_a_right_pin_unlocks_and_lock_ends_the_session(tmp_path: Path) -> None:
    async def body(p: ProfilePlugin, published: Published) -> None:
        assert published == [("profile.dealer", {"active": False, "until": 0})]
        status = await call(p, "profile.dealerStatus", {})
        assert status == {"active": False, "until": 0, "lockedFor": 0, "triesLeft": 5}
        state = await call(p, "profile.unlockDealer", {"pin": PIN})
        assert state["active"] is True and state["until"] > profile._now_ms() + 29 * 60_000
        assert published[-1] == ("profile.dealer", state)
        assert (await call(p, "profile.dealerStatus", {}))["active"] is True
        assert await call(p, "profile.lockDealer", {}) == {"active": False, "until": 0}
        assert published[-1] == ("profile.dealer", {"active": False, "until": 0})
        assert len(published) == 3

    with_plugin(tmp_path, body, dealer_pin_hash=PIN_HASH)


def test_wrong_pins_lock_unlocking_and_the_lock_survives_a_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1_800_000_000_000]
    monkeypatch.setattr(profile, "_now_ms", lambda: clock[0])

    async def wrong(p: ProfilePlugin, published: Published) -> None:
        for left in (4, 3, 2, 1):
            with pytest.raises(WrongPin, match=f"{left} tr(y|ies) left") as info:
                await call(p, "profile.unlockDealer", {"pin": "000000"})
            assert info.value.code == "denied"
        with pytest.raises(DealerLocked, match="locked for 60 seconds"):
            await call(p, "profile.unlockDealer", {"pin": "000000"})
        with pytest.raises(DealerLocked, match="locked for 60 more seconds"):
            await call(p, "profile.unlockDealer", {"pin": PIN})  # not even the right PIN now

    async def still_locked(p: ProfilePlugin, published: Published) -> None:
        clock[0] += 30_000
        status = await call(p, "profile.dealerStatus", {})
        assert status["lockedFor"] == 30 and status["triesLeft"] == 0
        with pytest.raises(DealerLocked, match="30 more seconds"):
            await call(p, "profile.unlockDealer", {"pin": PIN})
        clock[0] += 30_001
        assert (await call(p, "profile.dealerStatus", {}))["triesLeft"] == 5
        assert (await call(p, "profile.unlockDealer", {"pin": PIN}))["active"] is True
        assert [v["active"] for k, v in published] == [False, True]

    with_plugin(tmp_path, wrong, dealer_pin_hash=PIN_HASH)
    with_plugin(tmp_path, still_locked, dealer_pin_hash=PIN_HASH)


def test_a_lock_from_a_clock_set_back_is_cut_to_the_configured_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1_800_000_000_000]
    monkeypatch.setattr(profile, "_now_ms", lambda: clock[0])

    async def lock(p: ProfilePlugin, published: Published) -> None:
        for _ in range(5):
            with pytest.raises(PluginError):
                await call(p, "profile.unlockDealer", {"pin": "999999"})

    async def after(p: ProfilePlugin, published: Published) -> None:
        clock[0] -= 86_400_000  # the clock went back a day
        assert (await call(p, "profile.dealerStatus", {}))["lockedFor"] == 60

    with_plugin(tmp_path, lock, dealer_pin_hash=PIN_HASH)
    with_plugin(tmp_path, after, dealer_pin_hash=PIN_HASH)


def test_an_hmac_challenge_unlocks_once(tmp_path: Path) -> None:
    key = bytes.fromhex(KEY)

    async def body(p: ProfilePlugin, published: Published) -> None:
        with pytest.raises(PluginError, match="no challenge is open"):
            await call(p, "profile.unlockDealer", {"response": "0" * 64})
        first = (await call(p, "profile.dealerChallenge", {}))["challenge"]
        with pytest.raises(WrongPin, match="wrong answer; 4 tries left"):
            await call(p, "profile.unlockDealer", {"response": profile.hmac_response(b"x" * 32, first)})
        with pytest.raises(PluginError, match="no challenge is open"):  # one answer per challenge
            await call(p, "profile.unlockDealer", {"response": profile.hmac_response(key, first)})
        second = (await call(p, "profile.dealerChallenge", {}))["challenge"]
        assert second != first
        state = await call(p, "profile.unlockDealer", {"response": profile.hmac_response(key, second)})
        assert state["active"] is True
        with pytest.raises(PluginError, match="no dealer_pin_hash"):
            await call(p, "profile.unlockDealer", {"pin": PIN})
        with pytest.raises(InvalidArguments, match="either"):
            await call(p, "profile.unlockDealer", {"pin": PIN, "response": "0" * 64})

    with_plugin(tmp_path, body, dealer_hmac_key=KEY)


def test_a_session_ends_by_itself_and_the_end_is_published(tmp_path: Path) -> None:
    async def body(p: ProfilePlugin, published: Published) -> None:
        await call(p, "profile.unlockDealer", {"pin": PIN})
        assert published[-1][1]["active"] is True
        for _ in range(100):
            if not published[-1][1]["active"]:
                break
            await asyncio.sleep(0.1)
        assert published[-1] == ("profile.dealer", {"active": False, "until": 0})
        assert (await call(p, "profile.dealerStatus", {}))["active"] is False

    with_plugin(tmp_path, body, dealer_pin_hash=PIN_HASH, dealer_session_s=1)


# -- through a real plugin host process ----------------------------------------------------------------
def test_the_lockout_survives_a_plugin_process_restart(short_dir: Path) -> None:
    endpoint = f"ipc://{short_dir / 'hub.sock'}"
    state_dir = short_dir / "state" / "profile"
    config = {"dealer_pin_hash": PIN_HASH, "dealer_max_failures": 3}

    async def main() -> None:
        with FakeHub(endpoint, "profile", app_id="com.dealer.tool") as hub:
            async with hub.host(state_dir, config):
                methods = await hub.accept()
                assert {"profile.get", "profile.set", "profile.unlockDealer", "profile.lockDealer"} <= set(
                    methods
                )
                answer = await hub.call(1, "profile.unlockDealer", {"pin": PIN, "_allow": []})
                assert answer["ok"] is True and answer["result"]["active"] is True
                assert hub.states[-1] == {"key": "profile.dealer", "value": answer["result"]}
                await hub.call(2, "profile.lockDealer", {})
                assert hub.states[-1]["value"] == {"active": False, "until": 0}
                for call_id in (3, 4, 5):
                    answer = await hub.call(call_id, "profile.unlockDealer", {"pin": "135790"})
                    assert answer["ok"] is False and answer["error"]["code"] == "denied"
                assert "locked for 60 seconds" in answer["error"]["message"]
            async with hub.host(state_dir, config):
                await hub.accept()
                answer = await hub.call(6, "profile.unlockDealer", {"pin": PIN})
                assert answer["ok"] is False and answer["error"]["code"] == "denied"
                assert "more seconds" in answer["error"]["message"]
                status = (await hub.call(7, "profile.dealerStatus", {}))["result"]
                assert status["active"] is False and 0 < status["lockedFor"] <= 60
                answer = await hub.call(8, "profile.set", {"displayName": "x" * 100})
                assert answer["ok"] is False and answer["error"]["code"] == "invalid_args"

    asyncio.run(main())
