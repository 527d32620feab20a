"""Child processes that cannot outlive the hub.

Workers and plugins are started with :func:`die_with_hub` as their ``preexec_fn``: between fork and
exec the child asks the kernel for a signal when the hub dies (``PR_SET_PDEATHSIG``), then checks
that the hub is still its parent. A hub killed while a child is being started would otherwise leave
that child orphaned for good (the kernel only signals deaths that happen after the request).
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1

try:
    _prctl: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the hub's own stop handling still covers its children
    _prctl = None


def die_with_hub(signum: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get ``signum`` when this (hub) process dies, and exit at
    once if it already has. ``None`` where the kernel cannot do it."""
    prctl = _prctl
    if prctl is None:
        return None
    hub = os.getpid()

    def preexec() -> None:  # runs in the child, after fork: no imports, no locks
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != hub:
            os._exit(1)

    return preexec
