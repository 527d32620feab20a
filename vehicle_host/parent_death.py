"""A child process of the hub asks the kernel to be signalled when the hub dies."""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1
#: set by the hub for the processes it starts: its pid, so a child can tell it is already gone
HUB_PID_ENV = "VEHICLE_HOST_HUB_PID"


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent goes away."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the hub's SIGTERM handling still covers us
        pass


def hub_already_gone() -> bool:
    """Whether the hub named in :data:`HUB_PID_ENV` is no longer our parent (it died before we could
    ask for the signal). False when the variable is not set (started by hand)."""
    expected = os.environ.get(HUB_PID_ENV, "")
    return expected.isdigit() and os.getppid() != int(expected)
