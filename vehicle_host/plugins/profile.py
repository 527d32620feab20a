"""The ``profile`` plugin: the driver's profile and the dealer role (``fc.profile.*``).

Driver profile
    One profile for the head unit: ``displayName`` (at most 64 characters), ``language`` (a BCP 47
    tag such as ``en`` or ``de-AT``), ``units`` (``metric`` or ``imperial``) and ``preferredDealer``
    (at most 128 characters, or null). Reading it needs the permission ``profile.read`` and the
    driver's consent; changing it needs ``profile.write`` and a parked vehicle. It is kept in
    ``profile.sqlite3`` in the plugin's state directory (mode 0600).

Dealer role
    A workshop unlocks the dealer role with ``profile.unlockDealer`` (permission ``profile.dealer``,
    parked only), either with a PIN or with an HMAC challenge:

    - PIN: the plugin config's ``dealer_pin_hash`` is a salted hash made by :func:`make_pin_hash`
      (``python -m vehicle_host.plugins.profile hash-pin``): ``scrypt$n$r$p$salt$hash`` or
      ``pbkdf2_sha256$iterations$salt$hash`` (salt and hash in URL-safe base64). The PIN itself is
      never stored.
    - Challenge: ``profile.dealerChallenge`` gives a one-time random challenge (valid 120 s); the
      dealer's tool answers with the hex HMAC-SHA256 of it under the key in ``dealer_hmac_key``
      (hex, at least 16 bytes), passed as ``response``.

    Wrong answers are rate limited: after ``dealer_max_failures`` (default 5) the role is locked for
    ``dealer_lock_s`` (default 60 s); while locked no answer is even checked. Failures and the lock
    are kept in SQLite, so restarting the plugin does not reset them. A session lasts
    ``dealer_session_s`` (default 30 minutes, at most 8 hours) and ends early with
    ``profile.lockDealer``. Times are wall-clock Unix milliseconds; a stored lock or session longer
    than configured (the clock was set back) is cut to the configured length.

    Whenever the role changes (unlock, lock, expiry, start) the plugin publishes the state
    ``"profile.dealer"`` ``{active, until}`` (``until``: Unix ms when the session ends, 0 when
    inactive). The hub gates dealer-group apps on it: active only while ``active`` is true and
    ``until`` is in the future.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import getpass
import hashlib
import hmac
import json
import re
import secrets
import sys
import time
from dataclasses import dataclass
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
from vehicle_host.plugins.contract import now_ms as _now_ms  # tests set the clock here

FILENAME = "profile.sqlite3"
STATE_KEY = "profile.dealer"
MAX_NAME_CHARS = 64
MAX_DEALER_CHARS = 128
MAX_PIN_CHARS = 64
MIN_PIN_CHARS = 4
DEFAULT_MAX_FAILURES = 5
DEFAULT_LOCK_S = 60.0
DEFAULT_SESSION_S = 30 * 60.0
MAX_SESSION_S = 8 * 3600.0
CHALLENGE_TTL_S = 120.0
MIN_HMAC_KEY_BYTES = 16
#: Hash parameters a config may ask for; beyond these a check would stall the plugin (or be weak).
SCRYPT_N = 2**14
SCRYPT_LIMITS = {"n": (2**10, 2**17), "r": (1, 16), "p": (1, 4)}
PBKDF2_ITERATIONS = 600_000
PBKDF2_LIMITS = (10_000, 5_000_000)

DEFAULT_PROFILE: dict[str, Any] = {
    "displayName": "",
    "language": "en",
    "units": "metric",
    "preferredDealer": None,
}
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")

_PROFILE_PROPS: dict[str, Any] = {
    "displayName": {"type": "string", "maxLength": MAX_NAME_CHARS},
    "language": {"type": "string", "minLength": 2, "maxLength": 35, "pattern": LANGUAGE.pattern},
    "units": {"enum": ["metric", "imperial"]},
    "preferredDealer": {"type": ["string", "null"], "maxLength": MAX_DEALER_CHARS},
}
_PROFILE: dict[str, Any] = {
    "type": "object",
    "properties": _PROFILE_PROPS,
    "required": sorted(_PROFILE_PROPS),
    "additionalProperties": False,
}
_DEALER: dict[str, Any] = object_schema(
    {"active": {"type": "boolean"}, "until": {"type": "integer", "minimum": 0}}, ("active", "until")
)


class DealerLocked(PluginError):
    """Too many wrong answers: the dealer role cannot be unlocked for a while."""

    code = "denied"


class WrongPin(PluginError):
    code = "denied"


# -- PIN hashes -------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_pin_text(pin: Any) -> str:
    if not isinstance(pin, str) or not MIN_PIN_CHARS <= len(pin) <= MAX_PIN_CHARS:
        raise InvalidArguments(f"the PIN must be text of {MIN_PIN_CHARS} to {MAX_PIN_CHARS} characters")
    return pin


def make_pin_hash(pin: str, *, scheme: str = "scrypt") -> str:
    """A salted hash of ``pin`` for the profile plugin's ``dealer_pin_hash`` setting."""
    pin_bytes = check_pin_text(pin).encode("utf-8")
    salt = secrets.token_bytes(16)
    if scheme == "scrypt":
        digest = hashlib.scrypt(pin_bytes, salt=salt, n=SCRYPT_N, r=8, p=1, dklen=32)
        return f"scrypt${SCRYPT_N}$8$1${_b64(salt)}${_b64(digest)}"
    if scheme == "pbkdf2_sha256":
        digest = hashlib.pbkdf2_hmac("sha256", pin_bytes, salt, PBKDF2_ITERATIONS)
        return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${_b64(salt)}${_b64(digest)}"
    raise ValueError("scheme must be 'scrypt' or 'pbkdf2_sha256'")


def _within(value: int, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= value <= bounds[1]


def verify_pin(pin: str, stored: str) -> bool:
    """Does ``pin`` match the stored hash? A malformed or too costly hash is a configuration error."""
    bad = PluginError(
        "the dealer PIN hash in the profile plugin's configuration is not usable; "
        "make a new one with 'python -m vehicle_host.plugins.profile hash-pin'"
    )
    parts = stored.split("$") if isinstance(stored, str) and len(stored) <= 512 else []
    try:
        if len(parts) == 6 and parts[0] == "scrypt":
            n, r, p = (int(x) for x in parts[1:4])
            salt, want = _unb64(parts[4]), _unb64(parts[5])
            limits = SCRYPT_LIMITS
            if not (_within(n, limits["n"]) and _within(r, limits["r"]) and _within(p, limits["p"])):
                raise bad
            if n & (n - 1) or not 16 <= len(want) <= 64 or len(salt) < 8:
                raise bad
            got = hashlib.scrypt(
                pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(want), maxmem=256 * 1024 * 1024
            )
        elif len(parts) == 4 and parts[0] == "pbkdf2_sha256":
            iterations = int(parts[1])
            salt, want = _unb64(parts[2]), _unb64(parts[3])
            if not _within(iterations, PBKDF2_LIMITS) or not 16 <= len(want) <= 64 or len(salt) < 8:
                raise bad
            got = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations, dklen=len(want))
        else:
            raise bad
    except (ValueError, TypeError):
        raise bad from None
    return hmac.compare_digest(got, want)


def hmac_response(key: bytes, challenge: str) -> str:
    """What a dealer tool answers to ``challenge``: hex HMAC-SHA256 under the dealer key."""
    return hmac.new(key, challenge.encode("ascii"), hashlib.sha256).hexdigest()


# -- storage ----------------------------------------------------------------------------------------
@dataclass
class DealerRecord:
    failures: int = 0
    locked_until_ms: int = 0
    session_until_ms: int = 0
    unlocked_by: str = ""


class ProfileDB(StateDB):
    """The profile and the dealer role's counters; synchronous and thread-safe."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            "CREATE TABLE IF NOT EXISTS profile (slot INTEGER PRIMARY KEY CHECK (slot = 0),"
            " data TEXT NOT NULL)",
        )
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS dealer (slot INTEGER PRIMARY KEY CHECK (slot = 0),"
                " failures INTEGER NOT NULL, locked_until INTEGER NOT NULL,"
                " session_until INTEGER NOT NULL, unlocked_by TEXT NOT NULL)"
            )

    def get_profile(self) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT data FROM profile WHERE slot = 0").fetchone()
        profile = dict(DEFAULT_PROFILE)
        if row is not None:
            with contextlib.suppress(ValueError, TypeError):
                stored = json.loads(row[0])
                profile.update({k: v for k, v in stored.items() if k in DEFAULT_PROFILE})
        return profile

    def update_profile(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT data FROM profile WHERE slot = 0").fetchone()
                profile = dict(DEFAULT_PROFILE)
                if row is not None:
                    with contextlib.suppress(ValueError, TypeError):
                        profile.update({k: v for k, v in json.loads(row[0]).items() if k in DEFAULT_PROFILE})
                profile.update(changes)
                self._db.execute(
                    "INSERT INTO profile (slot, data) VALUES (0, ?)"
                    " ON CONFLICT (slot) DO UPDATE SET data = excluded.data",
                    (json.dumps(profile, ensure_ascii=False),),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return profile

    def get_dealer(self) -> DealerRecord:
        with self._lock:
            row = self._db.execute(
                "SELECT failures, locked_until, session_until, unlocked_by FROM dealer WHERE slot = 0"
            ).fetchone()
        return DealerRecord(*row) if row is not None else DealerRecord()

    def put_dealer(self, record: DealerRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO dealer (slot, failures, locked_until, session_until, unlocked_by)"
                " VALUES (0, ?, ?, ?, ?) ON CONFLICT (slot) DO UPDATE SET failures = excluded.failures,"
                " locked_until = excluded.locked_until, session_until = excluded.session_until,"
                " unlocked_by = excluded.unlocked_by",
                (record.failures, record.locked_until_ms, record.session_until_ms, record.unlocked_by),
            )


def check_profile_changes(args: dict[str, Any]) -> dict[str, Any]:
    """The profile fields in ``args``, checked (InvalidArguments says what is wrong)."""
    changes = {k: v for k, v in args.items() if k in DEFAULT_PROFILE}
    if not changes:
        raise InvalidArguments(f"name at least one profile field to change: {', '.join(DEFAULT_PROFILE)}")
    name = changes.get("displayName", "")
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise InvalidArguments(f"displayName must be text of at most {MAX_NAME_CHARS} characters")
    language = changes.get("language", "en")
    if not isinstance(language, str) or len(language) > 35 or not LANGUAGE.match(language):
        raise InvalidArguments("language must be a language tag such as 'en' or 'de-AT'")
    if changes.get("units", "metric") not in ("metric", "imperial"):
        raise InvalidArguments("units must be 'metric' or 'imperial'")
    dealer = changes.get("preferredDealer")
    if dealer is not None and (not isinstance(dealer, str) or len(dealer) > MAX_DEALER_CHARS):
        raise InvalidArguments(
            f"preferredDealer must be text of at most {MAX_DEALER_CHARS} characters, or null"
        )
    return changes


class ProfilePlugin(StatePlugin[ProfileDB]):
    name = "profile"
    version = "1.0.0"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        config = context.config
        self.max_failures = int(config_number(config, "dealer_max_failures", DEFAULT_MAX_FAILURES, 1, 100))
        self.lock_ms = int(config_number(config, "dealer_lock_s", DEFAULT_LOCK_S, 1, 86_400) * 1000)
        self.session_ms = int(
            config_number(config, "dealer_session_s", DEFAULT_SESSION_S, 1, MAX_SESSION_S) * 1000
        )
        self._pin_hash = (
            config.get("dealer_pin_hash") if isinstance(config.get("dealer_pin_hash"), str) else None
        )
        self._hmac_key = _hmac_key(config.get("dealer_hmac_key"))
        self._challenge: tuple[str, float] | None = None  # (challenge, monotonic deadline)
        self._guard = asyncio.Lock()  # one unlock/lock decision at a time
        self._expiry: asyncio.Task[None] | None = None
        self._published: dict[str, Any] | None = None

    async def start(self) -> None:
        await self.open_db(ProfileDB, FILENAME)
        await self._publish(await asyncio.to_thread(self._load_dealer))

    async def stop(self) -> None:
        expiry, self._expiry = self._expiry, None
        await stop_task(expiry)
        await self.close_db()

    # -- driver profile ---------------------------------------------------------------------------
    @method(
        "profile.get",
        permission="profile.read",
        consent=True,
        args=NO_ARGS,
        result=_PROFILE,
    )
    async def get_profile(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """The driver's profile: name, language, units and preferred dealer."""
        return await asyncio.to_thread(self.db.get_profile)

    @method(
        "profile.set",
        permission="profile.write",
        driving="parked_only",
        args={"type": "object", "properties": _PROFILE_PROPS, "minProperties": 1},
        result=_PROFILE,
    )
    async def set_profile(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Change some fields of the driver's profile; answers the whole profile."""
        changes = check_profile_changes(args)
        profile = await asyncio.to_thread(self.db.update_profile, changes)
        self.context.log.info(
            "driver profile changed", extra={"app_id": call.app_id, "fields": sorted(changes)}
        )
        return profile

    # -- dealer role ------------------------------------------------------------------------------
    def _load_dealer(self) -> DealerRecord:
        """The stored record, with times longer than configured cut back (the clock was set back)."""
        record = self.db.get_dealer()
        now = _now_ms()
        record.locked_until_ms = min(record.locked_until_ms, now + self.lock_ms)
        record.session_until_ms = min(record.session_until_ms, now + self.session_ms)
        if record.session_until_ms <= now:
            record.session_until_ms = 0
        return record

    def _state(self, record: DealerRecord) -> dict[str, Any]:
        active = record.session_until_ms > _now_ms()
        return {"active": active, "until": record.session_until_ms if active else 0}

    async def _publish(self, record: DealerRecord) -> dict[str, Any]:
        state = self._state(record)
        if state != self._published:
            await self.context.publish_state(STATE_KEY, state)
            self._published = state
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if state["active"]:
            self._expiry = asyncio.create_task(self._expire_at(state["until"]))
        return state

    async def _expire_at(self, until_ms: int) -> None:
        while (left := until_ms - _now_ms()) > 0:
            await asyncio.sleep(min(left / 1000, 60.0))
        self._expiry = None  # this task is done: _publish must not cancel it
        async with self._guard:
            record = await asyncio.to_thread(self._load_dealer)
            try:
                await self._publish(record)
            except Exception:
                self.context.log.exception("the end of the dealer session could not be published")
        self.context.log.info("dealer session expired")

    @method(
        "profile.dealerChallenge",
        permission="profile.dealer",
        args=NO_ARGS,
        result=object_schema(
            {"challenge": {"type": "string"}, "expiresIn": {"type": "number"}}, ("challenge", "expiresIn")
        ),
    )
    async def dealer_challenge(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """A one-time challenge for the dealer tool's HMAC answer (replaces any earlier one)."""
        if self._hmac_key is None:
            raise PluginError(
                "challenge unlock is not set up on this vehicle (no dealer_hmac_key); unlock with the PIN"
            )
        challenge = secrets.token_hex(32)
        self._challenge = (challenge, time.monotonic() + CHALLENGE_TTL_S)
        return {"challenge": challenge, "expiresIn": CHALLENGE_TTL_S}

    @method(
        "profile.unlockDealer",
        permission="profile.dealer",
        driving="parked_only",
        args={
            "type": "object",
            "properties": {
                "pin": {"type": "string", "minLength": MIN_PIN_CHARS, "maxLength": MAX_PIN_CHARS},
                "response": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
            "minProperties": 1,
        },
        result=_DEALER,
        timeout_s=15.0,
    )
    async def unlock_dealer(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Unlock the dealer role with the PIN or the answer to a challenge."""
        pin, response = args.get("pin"), args.get("response")
        if (pin is None) == (response is None):
            raise InvalidArguments("give either 'pin' or 'response' (the answer to profile.dealerChallenge)")
        async with self._guard:
            record = await asyncio.to_thread(self._load_dealer)
            now = _now_ms()
            if record.locked_until_ms > now:
                wait_s = -(-(record.locked_until_ms - now) // 1000)
                raise DealerLocked(
                    f"too many wrong answers: dealer mode is locked for {wait_s} more seconds; try again then"
                )
            if pin is not None:
                ok = await self._check_pin(check_pin_text(pin))
            else:
                ok = self._check_response(response)
            if not ok:
                record.failures += 1
                left = self.max_failures - record.failures
                if left <= 0:
                    record.failures, record.locked_until_ms = 0, now + self.lock_ms
                await asyncio.to_thread(self.db.put_dealer, record)
                self.context.log.warning("wrong dealer unlock answer", extra={"app_id": call.app_id})
                if left <= 0:
                    raise DealerLocked(
                        f"wrong {'PIN' if pin is not None else 'answer'}: too many wrong answers, "
                        f"dealer mode is locked for {self.lock_ms // 1000} seconds"
                    )
                raise WrongPin(
                    f"wrong {'PIN' if pin is not None else 'answer'}; {left} "
                    f"{'try' if left == 1 else 'tries'} left before dealer mode locks for "
                    f"{self.lock_ms // 1000} seconds"
                )
            record = DealerRecord(0, 0, now + self.session_ms, call.app_id)
            await asyncio.to_thread(self.db.put_dealer, record)
            self.context.log.info("dealer mode unlocked", extra={"app_id": call.app_id})
            return await self._publish(record)

    async def _check_pin(self, pin: str) -> bool:
        if self._pin_hash is None:
            raise PluginError(
                "PIN unlock is not set up on this vehicle (no dealer_pin_hash in the profile plugin's "
                "configuration); ask the workshop to configure it"
            )
        return await asyncio.to_thread(verify_pin, pin, self._pin_hash)

    def _check_response(self, response: Any) -> bool:
        if self._hmac_key is None:
            raise PluginError("challenge unlock is not set up on this vehicle (no dealer_hmac_key)")
        if self._challenge is None or time.monotonic() > self._challenge[1]:
            self._challenge = None
            raise PluginError("no challenge is open: ask for one with profile.dealerChallenge first")
        challenge, self._challenge = self._challenge[0], None  # one answer per challenge
        if not isinstance(response, str):
            return False
        return hmac.compare_digest(hmac_response(self._hmac_key, challenge), response)

    @method("profile.lockDealer", permission="profile.dealer", args=NO_ARGS, result=_DEALER)
    async def lock_dealer(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """End the dealer session now."""
        async with self._guard:
            record = await asyncio.to_thread(self._load_dealer)
            record.session_until_ms = 0
            await asyncio.to_thread(self.db.put_dealer, record)
            self.context.log.info("dealer mode locked", extra={"app_id": call.app_id})
            return await self._publish(record)

    @method(
        "profile.dealerStatus",
        args=NO_ARGS,
        result={
            "type": "object",
            "properties": {
                **_DEALER["properties"],
                "lockedFor": {"type": "integer", "minimum": 0},
                "triesLeft": {"type": "integer", "minimum": 0},
            },
            "required": ["active", "until", "lockedFor", "triesLeft"],
            "additionalProperties": False,
        },
    )
    async def dealer_status(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Whether dealer mode is on, until when, and how long unlocking stays locked (seconds)."""
        record = await asyncio.to_thread(self._load_dealer)
        now = _now_ms()
        locked_for = max(0, -(-(record.locked_until_ms - now) // 1000))
        return {
            **self._state(record),
            "lockedFor": locked_for,
            "triesLeft": 0 if locked_for else max(0, self.max_failures - record.failures),
        }


def _hmac_key(value: Any) -> bytes | None:
    if not isinstance(value, str) or len(value) > 256:
        return None
    try:
        key = bytes.fromhex(value)
    except ValueError:
        return None
    return key if len(key) >= MIN_HMAC_KEY_BYTES else None


def main(argv: list[str] | None = None) -> int:
    """``python -m vehicle_host.plugins.profile hash-pin``: print a ``dealer_pin_hash`` value."""
    parser = argparse.ArgumentParser(prog="python -m vehicle_host.plugins.profile")
    sub = parser.add_subparsers(dest="command", required=True)
    hash_pin = sub.add_parser("hash-pin", help="hash a dealer PIN for the profile plugin's dealer_pin_hash")
    hash_pin.add_argument("--scheme", choices=("scrypt", "pbkdf2_sha256"), default="scrypt")
    hash_pin.add_argument("--stdin", action="store_true", help="read the PIN from standard input")
    args = parser.parse_args(argv)
    pin = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass("dealer PIN: ")
    try:
        print(make_pin_hash(pin, scheme=args.scheme))
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
