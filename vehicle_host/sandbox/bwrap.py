"""The bubblewrap command line that starts one logic worker.

The sandbox's file system is an empty tmpfs holding read-only binds of exactly what the Python
interpreter needs (its executable, ``/usr/lib``, the standard library and site directories, the
vehicle_host package, ``/etc/ld.so.cache``), a private empty ``/tmp``, a fresh ``/proc`` and a minimal
``/dev``, and the worker's own ipc socket file at a fixed path. No bundle, home or runtime directory
is visible; the environment is built from nothing. Every namespace is new, so the network holds
only ``lo``.

When the hub runs as root the sandbox keeps only CAP_SETUID/CAP_SETGID, which the worker uses to
drop to the worker user before it confines itself (see ``confine``); otherwise bubblewrap runs the
worker in a user namespace with no capabilities at all.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import vehicle_host

#: Where things appear inside the sandbox.
INNER_SOCKET = "/run/vehicle-host/worker.sock"
INNER_ENDPOINT = f"ipc://{INNER_SOCKET}"
INNER_ROOT = "/opt/vehicle-host"
INNER_VENV = f"{INNER_ROOT}/venv"
INNER_PYTHONPATH = f"{INNER_ROOT}/lib"
HOSTNAME = "vehicle-host-worker"
INNER_TMP = "/tmp"  # noqa: S108 - a private, empty tmpfs inside the sandbox


@dataclass(frozen=True, slots=True)
class PythonLayout:
    """What of the host's Python installation the sandbox needs."""

    executable: Path  # the real interpreter binary
    venv: Path | None  # the virtual environment's root (mapped to INNER_VENV), if any
    dirs: tuple[Path, ...]  # stdlib and site directories outside the venv, bound at the same path
    package: Path  # the vehicle_host package directory (mapped under INNER_PYTHONPATH)

    @property
    def inner_python(self) -> str:
        if self.venv is not None:
            return f"{INNER_VENV}/bin/python3"
        return str(self.executable)


def discover() -> PythonLayout:
    """Describe the running interpreter; the sandbox is built from the same installation."""
    executable = Path(os.path.realpath(sys.executable))
    venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else None
    candidates: list[str] = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]
    candidates += site.getsitepackages()
    libdir = sysconfig.get_config_var("LIBDIR")
    if isinstance(libdir, str):
        candidates.append(libdir)
    dirs: list[Path] = []
    for item in candidates:
        path = Path(item)
        if not path.is_dir() or (venv is not None and path.is_relative_to(venv)):
            continue
        if _covered(path, [Path("/usr/lib"), *dirs]):
            continue
        dirs.append(path)
    package = Path(vehicle_host.__file__).resolve().parent
    return PythonLayout(executable=executable, venv=venv, dirs=tuple(dirs), package=package)


def _covered(path: Path, roots: list[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def build_argv(
    bwrap: str,
    layout: PythonLayout,
    socket_path: Path,
    python_args: list[str],
    *,
    as_root: bool | None = None,
    env: dict[str, str] | None = None,
) -> list[str]:
    """The full command: bwrap, its options, the inner interpreter and ``python_args``.

    ``socket_path`` is the worker's ipc socket on the host; it appears inside as INNER_SOCKET.
    """
    root = os.geteuid() == 0 if as_root is None else as_root
    argv = [bwrap, "--die-with-parent", "--new-session", "--clearenv"]
    argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    argv += ["--hostname", HOSTNAME]
    if root:
        # no user namespace: the worker drops to the unprivileged worker user itself, then confines
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--cap-drop", "ALL"]
    dirs: set[str] = set()  # directories that exist inside (created or bound)
    bound: list[Path] = []  # what is bound read-only, by inner path

    def mkdirs(inner: str) -> None:
        # bubblewrap would create missing parents with mode 0700, closed to the worker user
        parts = Path(inner).parent.parts
        for i in range(2, len(parts) + 1):
            parent = str(Path(*parts[:i]))
            if parent not in dirs:
                dirs.add(parent)
                argv.extend(["--perms", "0755", "--dir", parent])

    def ro_bind(source: Path | str, inner: str | None = None) -> None:
        target = str(source) if inner is None else inner
        mkdirs(target)
        argv.extend(["--ro-bind", str(source), target])
        dirs.add(target)
        bound.append(Path(target))

    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            argv += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir() and name.startswith("lib"):
            ro_bind(top)
    for usr in ("/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32"):
        if Path(usr).is_dir():
            ro_bind(usr)
    for path in (layout.executable, *layout.dirs):
        if not _covered(path, bound):
            ro_bind(path)
    if Path("/etc/ld.so.cache").exists():
        ro_bind("/etc/ld.so.cache")
    if layout.venv is not None:
        ro_bind(layout.venv / "pyvenv.cfg", f"{INNER_VENV}/pyvenv.cfg")
        ro_bind(layout.venv / "lib", f"{INNER_VENV}/lib")
        if (layout.venv / "lib64").exists():
            argv += ["--symlink", "lib", f"{INNER_VENV}/lib64"]
        mkdirs(f"{INNER_VENV}/bin/python3")
        argv += ["--symlink", str(layout.executable), f"{INNER_VENV}/bin/python3"]
    ro_bind(layout.package, f"{INNER_PYTHONPATH}/{layout.package.name}")
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "01777", "--tmpfs", INNER_TMP]
    ro_bind(socket_path, INNER_SOCKET)
    argv += ["--chdir", INNER_TMP]
    inner_env = {
        "PATH": "/usr/bin",
        "PYTHONPATH": INNER_PYTHONPATH,
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "LANG": "C.UTF-8",
        "HOME": INNER_TMP,
        "TMPDIR": INNER_TMP,
    } | (env or {})
    for key, value in inner_env.items():
        argv += ["--setenv", key, value]
    argv += ["--", layout.inner_python, "-s", "-B", *python_args]
    return argv
