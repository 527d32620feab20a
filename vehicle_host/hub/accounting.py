"""Per-worker accounting: message rate limits, crash back-off, CPU time and memory from /proc.

The rate limiter and the crash history are pure (time is passed in); only ``read_usage`` and
``descendants`` read ``/proc``.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class RateLimiter:
    """A token bucket: ``rate`` messages per second sustained, ``burst`` at once.

    Messages beyond it are dropped and counted; ``flooding`` turns true when more than
    ``kill_dropped`` were dropped within ``kill_window_s`` (the sender is then to be killed).
    """

    rate: float
    burst: float
    kill_dropped: int
    kill_window_s: float = 5.0
    tokens: float = -1.0
    stamp: float = 0.0
    accepted: int = 0
    dropped: int = 0
    _drops: deque[tuple[float, int]] = field(default_factory=deque)
    _window_drops: int = 0

    def allow(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.accepted += 1
            return True
        self.dropped += 1
        second = int(now)
        if self._drops and self._drops[-1][0] == second:
            self._drops[-1] = (second, self._drops[-1][1] + 1)
        else:
            self._drops.append((second, 1))
        self._window_drops += 1
        while self._drops and self._drops[0][0] <= now - self.kill_window_s:
            self._window_drops -= self._drops.popleft()[1]
        return False

    @property
    def flooding(self) -> bool:
        return self._window_drops > self.kill_dropped


@dataclass
class RateMeter:
    """Messages per second over the last complete second (cheap enough to run on every message)."""

    current_second: int = 0
    count: int = 0
    last_rate: int = 0
    total: int = 0

    def hit(self, now: float) -> None:
        self.total += 1
        second = int(now)
        if second != self.current_second:
            self.last_rate = self.count if second == self.current_second + 1 else 0
            self.current_second, self.count = second, 0
        self.count += 1

    def rate(self, now: float) -> int:
        second = int(now)
        if second == self.current_second:
            return self.last_rate
        return self.count if second == self.current_second + 1 else 0


@dataclass
class CrashHistory:
    """Crashes of one app; after ``limit`` crashes within ``window_s`` restarts are blocked.

    The first block lasts ``backoff_s``; each further one doubles, up to ``backoff_max_s``. The
    doubling resets once the app has run without crashing for a whole window.
    """

    limit: int = 3
    window_s: float = 60.0
    backoff_s: float = 10.0
    backoff_max_s: float = 300.0
    crashes: deque[float] = field(default_factory=deque)
    total: int = 0
    blocks: int = 0
    blocked_until: float = 0.0
    last: float | None = None

    def record(self, now: float) -> float:
        """Count a crash at ``now``; returns the time until which restarts are blocked (0: not blocked)."""
        if self.last is not None and now - self.last > self.window_s:
            self.blocks = 0
        self.last = now
        self.total += 1
        self.crashes.append(now)
        while self.crashes and self.crashes[0] < now - self.window_s:
            self.crashes.popleft()
        if len(self.crashes) >= self.limit:
            self.blocked_until = now + min(self.backoff_max_s, self.backoff_s * 2**self.blocks)
            self.blocks += 1
            self.crashes.clear()
        return self.blocked_until if self.blocked_until > now else 0.0

    def blocked_for(self, now: float) -> float:
        return max(0.0, self.blocked_until - now)


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_s: float
    rss_mb: float
    threads: int


def read_usage(pid: int) -> Usage | None:
    """CPU time (user + system) and resident memory of one process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ")"
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        threads = int(fields[17])
    except (IndexError, ValueError):
        return None
    rss_kb = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
            break
    return Usage(cpu_s=round(cpu, 3), rss_mb=round(rss_kb / 1024, 2), threads=threads)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return _children_by_scan(pid)
    return [int(item) for item in text.split()]


def _children_by_scan(pid: int) -> list[int]:
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


def leaf_process(pid: int, depth: int = 3) -> int | None:
    """Follow only children down ``depth`` levels (bwrap → its pid-1 helper → the worker)."""
    current = pid
    for _ in range(depth):
        kids = children(current)
        if len(kids) != 1:
            return current if not kids else None
        current = kids[0]
    return current
