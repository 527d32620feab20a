"""Rate limiting, message rates and crash back-off, with time passed in (no clocks, no sleeping)."""

from __future__ import annotations

import os

from vehicle_host.hub.accounting import CrashHistory, RateLimiter, RateMeter, read_usage


def test_rate_limiter_allows_the_burst_then_the_sustained_rate() -> None:
    limiter = RateLimiter(rate=100, burst=10, kill_dropped=1000)
    assert all(limiter.allow(0.0) for _ in range(10))
    assert not limiter.allow(0.0)
    assert limiter.dropped == 1
    # 0.1 s later ten more tokens
    assert sum(limiter.allow(0.1) for _ in range(20)) == 10
    assert limiter.accepted == 20 and limiter.dropped == 11
    assert not limiter.flooding


def test_rate_limiter_flags_flooding_past_the_hard_bound_within_the_window() -> None:
    limiter = RateLimiter(rate=10, burst=10, kill_dropped=50, kill_window_s=5.0)
    now = 100.0
    for _ in range(60):
        limiter.allow(now)
    assert not limiter.flooding  # exactly at the bound
    limiter.allow(now)
    assert limiter.flooding
    # drops older than the window no longer count
    slow = RateLimiter(rate=10, burst=10, kill_dropped=50, kill_window_s=5.0)
    for second in range(20):
        for _ in range(14):  # 4 over the rate each second: 80 drops in total, never 50 in 5 s
            slow.allow(200.0 + second)
    assert slow.dropped > 50 and not slow.flooding


def test_rate_meter_reports_the_last_complete_second() -> None:
    meter = RateMeter()
    for i in range(30):
        meter.hit(10.0 + i / 100)
    assert meter.rate(10.5) == 0  # the first second is not complete yet
    meter.hit(11.2)
    assert meter.rate(11.3) == 30
    assert meter.rate(12.1) == 1
    assert meter.rate(20.0) == 0
    assert meter.total == 31


def test_three_crashes_within_the_window_block_restarts_and_the_block_doubles() -> None:
    history = CrashHistory(limit=3, window_s=60, backoff_s=10, backoff_max_s=300)
    assert history.record(0) == 0
    assert history.record(5) == 0
    assert history.record(10) == 20  # blocked until t=20
    assert history.blocked_for(15) == 5
    assert history.blocked_for(25) == 0
    history.record(26)
    history.record(27)
    assert history.record(28) == 48  # 20 s the second time
    assert history.total == 6


def test_crashes_spread_beyond_the_window_never_block_and_reset_the_doubling() -> None:
    history = CrashHistory(limit=3, window_s=60, backoff_s=10, backoff_max_s=300)
    for t in (0, 61, 122, 183):
        assert history.record(t) == 0
    for t in (300, 301):
        history.record(t)
    assert history.record(302) == 312
    for t in (400, 401):
        history.record(t)
    assert history.record(402) == 412  # more than a window without crashes: back to the first step


def test_the_block_is_capped() -> None:
    history = CrashHistory(limit=1, window_s=60, backoff_s=10, backoff_max_s=25)
    assert [history.record(t) - t for t in (0.0, 1.0, 2.0)] == [10, 20, 25]


def test_usage_of_this_process_is_read_from_proc() -> None:
    usage = read_usage(os.getpid())
    assert usage is not None and usage.rss_mb > 1 and usage.threads >= 1 and usage.cpu_s > 0
    assert read_usage(2**22 + 12345) is None
