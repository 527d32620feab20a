"""Calls that left the worker (api.call, nav.request) and wait for an answer, each with a deadline.

Pure: the caller passes ``now`` in. Every call gets exactly one outcome: its answer, its
cancellation or :meth:`PendingCalls.expired` once its deadline passed.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Calls waiting for an answer at once; more fail at once ("too many calls in flight").
MAX_IN_FLIGHT = 512
DEFAULT_TIMEOUT_S = 15.0
MAX_TIMEOUT_S = 600.0


@dataclass(slots=True)
class PendingCall:
    call_id: int
    kind: str  # "api" or "nav"
    method: str
    deadline: float | None  # None: a stream that has started (it lives until its end or a cancel)
    stream: bool = False


class PendingCalls:
    def __init__(self, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._calls: dict[int, PendingCall] = {}
        self._max = max_in_flight

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def add(self, call: PendingCall) -> bool:
        """Track ``call``; False when too many calls are in flight already."""
        if len(self._calls) >= self._max:
            return False
        self._calls[call.call_id] = call
        return True

    def get(self, call_id: int) -> PendingCall | None:
        return self._calls.get(call_id)

    def pop(self, call_id: int) -> PendingCall | None:
        return self._calls.pop(call_id, None)

    def started(self, call_id: int) -> PendingCall | None:
        """A stream sent its first event: it no longer times out."""
        call = self._calls.get(call_id)
        if call is not None and call.stream:
            call.deadline = None
        return call

    def expired(self, now: float) -> list[PendingCall]:
        """Remove and return the calls whose deadline has passed, oldest first."""
        late = [c for c in self._calls.values() if c.deadline is not None and c.deadline <= now]
        for call in late:
            del self._calls[call.call_id]
        return late

    def next_deadline(self) -> float | None:
        deadlines = [c.deadline for c in self._calls.values() if c.deadline is not None]
        return min(deadlines) if deadlines else None
