"""The worker's clock for setTimeout/setInterval: a heap of due times (the callbacks live in JS).

Pure: the caller passes ``now`` (seconds, monotonic) in, so tests need no sleeping.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

#: More timers than this are ignored here (the realm refuses far fewer, with a clear error).
MAX_TIMERS = 10_000


@dataclass(frozen=True, slots=True)
class _Timer:
    interval_s: float | None  # None for a one-shot timer
    seq: int  # matches the heap entry that is current; older entries are stale


class TimerHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int]] = []  # (due, seq, timer id)
        self._timers: dict[int, _Timer] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._timers)

    def add(self, timer_id: int, delay_ms: float, *, repeat: bool, now: float) -> bool:
        """Schedule ``timer_id`` ``delay_ms`` from ``now``; False when the table is full."""
        if timer_id not in self._timers and len(self._timers) >= MAX_TIMERS:
            return False
        delay_s = max(0.0, float(delay_ms)) / 1000.0
        self._seq += 1
        self._timers[timer_id] = _Timer(delay_s if repeat else None, self._seq)
        heapq.heappush(self._heap, (now + delay_s, self._seq, timer_id))
        return True

    def cancel(self, timer_id: int) -> None:
        self._timers.pop(timer_id, None)

    def next_due(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> int | None:
        """The id of one timer due at ``now`` (earliest first, then in creation order), or None.

        An interval timer is rescheduled one interval after its due time (never in the past).
        """
        self._drop_stale()
        if not self._heap or self._heap[0][0] > now:
            return None
        due, _, timer_id = heapq.heappop(self._heap)
        timer = self._timers[timer_id]
        if timer.interval_s is None:
            del self._timers[timer_id]
        else:
            self._seq += 1
            self._timers[timer_id] = _Timer(timer.interval_s, self._seq)
            heapq.heappush(self._heap, (max(due + timer.interval_s, now), self._seq, timer_id))
        return timer_id

    def _drop_stale(self) -> None:
        while self._heap:
            _, seq, timer_id = self._heap[0]
            timer = self._timers.get(timer_id)
            if timer is not None and timer.seq == seq:
                return
            heapq.heappop(self._heap)
