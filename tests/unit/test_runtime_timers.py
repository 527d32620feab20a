"""Timers on the worker's clock, Promise jobs after every callback, fc.nextTick."""

from __future__ import annotations

import pytest

from vehicle_host.logic_worker.harness import FakeHub
from vehicle_host.logic_worker.timers import TimerHeap


def app(body: str) -> FakeHub:
    hub = FakeHub()
    hub.start({"app.js": "App({});", "pages/index/index.js": f"Page({{ data: {{}}, {body} }});"})
    return hub


def test_timeouts_fire_in_due_order_then_creation_order() -> None:
    hub = app(
        "onLoad() { const log = (m) => () => console.log(m);"
        " setTimeout(log('c'), 30); setTimeout(log('a'), 10); setTimeout(log('b'), 10);"
        " setTimeout(log('z'), 0); },"
    )
    assert hub.logs() == []
    hub.advance(0.0)
    assert hub.logs() == ["z"]
    hub.advance(0.015)
    assert hub.logs() == ["z", "a", "b"]
    hub.advance(0.1)
    assert hub.logs() == ["z", "a", "b", "c"]


def test_interval_repeats_until_cleared_from_its_own_callback_and_passes_arguments() -> None:
    hub = app(
        "onLoad() { let n = 0; const id = setInterval((x) => { n++; console.log(x + n); if (n ==="
        " 3) clearInterval(id); }, 100, 'tick'); },"
    )
    hub.advance(1.0)
    assert hub.logs() == ["tick1", "tick2", "tick3"]
    assert len(hub.session._timers) == 0


def test_clear_timeout_before_it_fires() -> None:
    hub = app(
        "onLoad() { const id = setTimeout(() => console.log('no'), 10); clearTimeout(id);"
        " clearTimeout(12345); },"
    )
    hub.advance(1.0)
    assert hub.logs() == []
    assert hub.session.next_deadline() is None


def test_promise_jobs_run_after_each_callback() -> None:
    hub = app(
        "onLoad() { setTimeout(() => { Promise.resolve().then(() => console.log('job'));"
        " console.log('timer'); }, 5);"
        " Promise.resolve().then(() => console.log('first job')); console.log('load'); },"
    )
    assert hub.logs() == ["load", "first job"]
    hub.advance(0.01)
    assert hub.logs() == ["load", "first job", "timer", "job"]


def test_next_tick_runs_after_the_current_code() -> None:
    hub = app("onLoad() { fc.nextTick(() => console.log('tick')); console.log('sync'); },")
    assert hub.logs() == ["sync", "tick"]


def test_too_many_timers_is_a_clear_error() -> None:
    hub = app("onLoad() { for (let i = 0; i < 1001; i++) setTimeout(() => {}, 1000); },")
    (error,) = hub.errors()
    assert "too many timers (1000 pending)" in error["message"]
    assert len(hub.session._timers) == 1000


def test_interval_is_at_least_four_ms_and_strings_are_not_code() -> None:
    hub = app(
        "onLoad() { this.n = 0; this.id = setInterval(() => this.n++, 0);"
        " try { setTimeout('console.log(1)', 1); } catch (e) { console.log(e.message); } },"
        " stop() { clearInterval(this.id); console.log(this.n); },"
    )
    assert "strings are not evaluated" in hub.logs()[0]
    hub.advance(0.1)
    hub.take()
    hub.event("stop")
    assert 24 <= int(hub.logs()[0]) <= 25  # every 4 ms over 100 ms (0 would mean thousands)


def test_a_throwing_timer_is_reported_and_others_still_fire() -> None:
    hub = app(
        "onLoad() { setTimeout(() => { throw new Error('bad timer'); }, 1); setTimeout(() =>"
        " console.log('ok'), 2); },"
    )
    hub.advance(0.01)
    assert "bad timer" in hub.errors()[0]["message"]
    assert hub.logs() == ["ok"]


@pytest.mark.parametrize("delay", [0, 5.5, 1e12])
def test_heap_reschedules_intervals_without_drift_and_never_in_the_past(delay: float) -> None:
    heap = TimerHeap()
    heap.add(1, delay, repeat=True, now=10.0)
    due = heap.next_due()
    assert due is not None
    assert heap.pop_due(due) == 1
    assert heap.next_due() == max(due + delay / 1000, due)
    heap.cancel(1)
    assert heap.next_due() is None and heap.pop_due(1e20) is None
