"""Refused messages are all counted, but logged only in bursts per reason and sender."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from vehicle_host.hub.broker import REFUSAL_LOG_BURST, Broker, Origin
from vehicle_host.wire import Envelope


async def _ignore(message: Envelope, origin: Origin) -> None:
    return None


def test_refusals_are_counted_every_time_and_logged_in_bursts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "monotonic", lambda: 100.0)  # no tokens come back meanwhile
    broker = Broker(tmp_path, _ignore)  # never started: nothing is bound
    caplog.set_level(logging.WARNING, logger="vehicle_host.hub.broker")
    for _ in range(5 * REFUSAL_LOG_BURST):
        broker.refuse("dropped_forbidden", "refused x", **{"from": "slot a"})
    for _ in range(5 * REFUSAL_LOG_BURST):
        broker.refuse("dropped_forbidden", "refused x", **{"from": "slot b"})  # another sender: its own burst
    broker.refuse("dropped_malformed", "refused y", **{"from": "slot a"})  # another reason: its own burst
    assert broker.counters["dropped_forbidden"] == 10 * REFUSAL_LOG_BURST
    logged = [(r.getMessage(), getattr(r, "from")) for r in caplog.records]
    assert logged.count(("refused x", "slot a")) == REFUSAL_LOG_BURST
    assert logged.count(("refused x", "slot b")) == REFUSAL_LOG_BURST
    assert logged.count(("refused y", "slot a")) == 1
    assert {r.__dict__["counter"] for r in caplog.records} == {"dropped_forbidden", "dropped_malformed"}
    monkeypatch.setattr(time, "monotonic", lambda: 102.0)  # two seconds later: two more
    for _ in range(5):
        broker.refuse("dropped_forbidden", "refused x", **{"from": "slot a"})
    assert [(r.getMessage(), getattr(r, "from")) for r in caplog.records].count(("refused x", "slot a")) == (
        REFUSAL_LOG_BURST + 2
    )
    asyncio.run(broker.close())
