"""What a logic worker does to itself before it runs any mini-app JS.

Order matters: drop to the worker user (when started as root inside bubblewrap), set rlimits, set
``PR_SET_NO_NEW_PRIVS``, then load a seccomp filter. The filter allows by default (Python, pyzmq and
QuickJS use a wide set of ordinary syscalls) and refuses what a confined worker never needs: sockets
other than AF_UNIX, starting programs or processes (threads stay allowed), debugging other processes,
namespaces and mounts, kernel keyrings, BPF, perf, modules, clocks, reboot.

It must run before any thread exists (pyzmq starts its I/O threads when the first socket is made);
the filter is also synchronised to all threads when the kernel supports it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import resource
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vehicle_host.errors import VehicleHostError
from vehicle_host.sandbox.config import ConfineSpec

log = logging.getLogger("vehicle_host.sandbox")

PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_SET_DUMPABLE = 4
CLONE_THREAD = 0x00010000

#: Refused with EPERM. Names unknown to this architecture's libseccomp are skipped.
DENIED_SYSCALLS = (
    "execve",
    "execveat",
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "pidfd_getfd",
    "kcmp",
    "mount",
    "umount2",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "personality",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "uselib",
    "vhangup",
    "fanotify_init",
    "mknod",
    "mknodat",
)


class ConfineError(VehicleHostError):
    """The worker could not confine itself; it must not run mini-app code."""


def apply(spec: ConfineSpec) -> None:
    """Confine the calling process for good. Raises ConfineError if any step fails."""
    if spec.uid is not None and spec.gid is not None:
        _drop_user(spec.uid, spec.gid)
    set_rlimits(spec)
    set_no_new_privs()
    if spec.seccomp:
        load_seccomp()
    log.debug("confined", extra={"uid": os.getuid(), "seccomp": spec.seccomp})


def _drop_user(uid: int, gid: int) -> None:
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        raise ConfineError(f"could not switch to the worker user {uid}:{gid}: {exc}") from exc
    if os.getresuid() != (uid, uid, uid):
        raise ConfineError("the worker user switch did not take effect")


def set_rlimits(spec: ConfineSpec) -> None:
    limits = {
        resource.RLIMIT_CPU: (spec.cpu_s, spec.cpu_s + 5),  # SIGXCPU, then SIGKILL
        resource.RLIMIT_NOFILE: (spec.nofile, spec.nofile),
        resource.RLIMIT_DATA: (spec.data_bytes, spec.data_bytes),
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_FSIZE: (0, 0),  # no file grows; Python ignores SIGXFSZ, writes fail with EFBIG
        resource.RLIMIT_NPROC: (spec.nproc, spec.nproc),
        resource.RLIMIT_MEMLOCK: (0, 0),
        resource.RLIMIT_MSGQUEUE: (0, 0),
    }
    for which, (soft, hard) in limits.items():
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
            soft = min(soft, hard)
        try:
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError) as exc:
            raise ConfineError(f"could not set resource limit {which}: {exc}") from exc


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def set_no_new_privs() -> None:
    libc = _libc()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise ConfineError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
    # not dumpable: no core files and no /proc/<pid>/mem for anyone but root
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def no_new_privs() -> bool:
    return bool(_libc().prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0))


@contextmanager
def _known_libraries() -> Iterator[None]:
    """pyseccomp finds libc and libseccomp with ``ctypes.util.find_library``, which runs ``ldconfig``.

    The sandbox holds no such program; the dynamic loader finds the libraries by soname from
    ``/etc/ld.so.cache``, so answer those two names directly.
    """
    original = ctypes.util.find_library
    sonames = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}

    def find(name: str) -> str | None:
        soname = sonames.get(name)
        if soname is not None:
            try:
                ctypes.CDLL(soname)
                return soname
            except OSError:
                pass
        return original(name)

    ctypes.util.find_library = find
    try:
        yield
    finally:
        ctypes.util.find_library = original


def load_seccomp() -> None:
    try:
        with _known_libraries():
            import pyseccomp as seccomp
    except (ImportError, OSError, RuntimeError) as exc:
        raise ConfineError(f"seccomp is unavailable ({exc}); install libseccomp2 and pyseccomp") from exc
    deny = seccomp.ERRNO(errno.EPERM)
    try:
        flt = seccomp.SyscallFilter(seccomp.ALLOW)
        flt.set_attr(seccomp.Attr.CTL_NNP, 1)
        with _suppress_unsupported():
            flt.set_attr(seccomp.Attr.CTL_TSYNC, 1)
        for name in DENIED_SYSCALLS:
            with _suppress_unsupported():
                flt.add_rule(deny, name)
        # only AF_UNIX sockets (the ipc:// link to the hub); no network, netlink or packet sockets
        flt.add_rule(deny, "socket", seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
        flt.add_rule(deny, "socketpair", seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
        # threads yes, processes no: clone without CLONE_THREAD is refused
        flt.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
        # clone3 passes its flags in memory the filter cannot read: ENOSYS makes libc fall back to clone
        with _suppress_unsupported():
            flt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        flt.load()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfineError(f"could not load the seccomp filter: {exc}") from exc


@contextmanager
def _suppress_unsupported() -> Iterator[None]:
    try:
        yield
    except (OSError, RuntimeError, ValueError) as exc:  # a syscall or attribute this kernel lacks
        log.debug("seccomp rule skipped: %s", exc)
