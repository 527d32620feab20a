"""Containment of a real sandboxed worker process.

A probe runs inside bubblewrap exactly as a worker starts (same command line from
``vehicle_host.sandbox.bwrap``, same ``confine.apply`` with the hub's default limits), tries what a
hostile app would try, and reports back over its ipc socket to a ROUTER held by the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from vehicle_host.config import ensure_private_dir
from vehicle_host.sandbox import bwrap
from vehicle_host.sandbox.config import NOBODY, SandboxConfig

pytestmark = pytest.mark.integration

PROBE = r"""
import ctypes, errno, json, os, socket, sys, threading
from vehicle_host.sandbox import confine
from vehicle_host.sandbox.config import ConfineSpec
import zmq

confine.apply(ConfineSpec.from_json(sys.argv[1]))
targets = json.loads(sys.argv[2])
res = {"tmp": sorted(os.listdir("/tmp"))}

def attempt(name, fn):
    try:
        fn()
        res[name] = "allowed"
    except OSError as exc:
        res[name] = errno.errorcode.get(exc.errno, str(exc.errno))
    except Exception as exc:
        res[name] = type(exc).__name__

for family, kind in (("AF_INET", "SOCK_STREAM"), ("AF_INET6", "SOCK_DGRAM"), ("AF_NETLINK", "SOCK_RAW"),
                     ("AF_PACKET", "SOCK_RAW")):
    attempt(family, lambda: socket.socket(getattr(socket, family), getattr(socket, kind)).close())
attempt("AF_UNIX", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close())
attempt("exec", lambda: os.execv("/bin/sh", ["sh", "-c", "true"]))
attempt("exec_python", lambda: os.execv(sys.executable, [sys.executable, "-c", "pass"]))
attempt("fork", lambda: os._exit(0) if os.fork() == 0 else None)
box = []
thread = threading.Thread(target=lambda: box.append(1))
thread.start(); thread.join()
res["thread"] = box == [1]

libc = ctypes.CDLL(None, use_errno=True)
def ptrace(request, pid):
    if libc.ptrace(request, pid, None, None) != 0:
        raise OSError(ctypes.get_errno(), "ptrace")
attempt("ptrace_traceme", lambda: ptrace(0, 0))
attempt("ptrace_attach", lambda: ptrace(16, 1))
CLONE_NEWNET = 0x40000000
def unshare():
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
attempt("unshare", unshare)
attempt("kill_pid1", lambda: os.kill(1, 9))
attempt("write_package", lambda: open("/opt/vehicle-host/lib/vehicle_host/x.py", "w").close())
def write_tmp_file():
    with open("/tmp/grow", "wb") as f:
        f.write(b"x")
attempt("grow_file", write_tmp_file)
def sysctl():
    with open("/proc/sys/kernel/hostname", "w") as f:
        f.write("x")
attempt("sysctl", sysctl)
for name, path in targets.items():
    res["sees_" + name] = os.path.exists(path)
res["root"] = sorted(os.listdir("/"))
res["env"] = dict(os.environ)
res["uid"] = os.getuid()
res["no_new_privs"] = confine.no_new_privs()
res["seccomp"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")][0]
res["cap_eff"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff:")][0]
res["net"] = sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:])
res["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
try:
    block = bytearray(512 * 1024 * 1024)
    res["alloc"] = "allowed"
except MemoryError:
    res["alloc"] = "MemoryError"
res["after_alloc"] = len(bytearray(1024 * 1024))  # still alive and usable afterwards

sock = zmq.Context().socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 2000)
sock.connect(os.environ.get("PROBE_ENDPOINT", "ipc:///run/vehicle-host/worker.sock"))
sock.send(json.dumps(res).encode())
if sock.poll(10000):
    reply = sock.recv()
    sock.send(b"got " + reply)
sock.close()
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = Path(tmp_path_factory.mktemp("sbx"))
    runtime = ensure_private_dir(base / "run")
    apps = base / "apps"
    (apps / "someapp").mkdir(parents=True)
    (apps / "someapp" / "app.js").write_text("secret")
    (base / "marker").write_text("host tmp")
    socket_path = runtime / "w-1.sock"
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(f"ipc://{socket_path}")
    config = SandboxConfig()
    spec = config.confine_spec()
    if spec.uid is not None and spec.gid is not None:
        os.chown(socket_path, spec.uid, spec.gid)
    targets = {
        "apps": str(apps),
        "runtime": str(runtime),
        "host_tmp_marker": str(base / "marker"),
        "work": "/work",
        "home": "/home",
        "root_home": "/root",
        "host_etc_passwd": "/etc/passwd",
        "repo": str(Path(__file__).resolve().parents[2]),
    }
    binary = shutil.which("bwrap")
    assert binary is not None, "bubblewrap must be installed for these tests"
    argv = bwrap.build_argv(
        binary, bwrap.discover(), socket_path, ["-c", PROBE, spec.to_json(), json.dumps(targets)]
    )
    env = dict(os.environ, VEHICLE_HOST_TEST_SECRET="hunter2", AWS_SECRET_ACCESS_KEY="x")
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert router.poll(30000), f"no report from the probe: {process.communicate(timeout=10)}"
        peer, data = router.recv_multipart()
        router.send_multipart([peer, b"pong"])
        assert router.poll(10000)
        _, echo = router.recv_multipart()
        result = json.loads(data)
        result["echo"] = echo.decode()
        process.wait(10)
        result["exit_code"] = process.returncode
        yield result
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        router.close()
        ctx.term()
        shutil.rmtree(base, ignore_errors=True)


def test_only_unix_sockets_can_be_opened(probe: dict[str, Any]) -> None:
    for family in ("AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"):
        assert probe[family] == "EPERM", family
    assert probe["AF_UNIX"] == "allowed"


def test_the_network_namespace_holds_only_loopback(probe: dict[str, Any]) -> None:
    assert probe["net"] == ["lo"]


def test_no_program_or_process_can_be_started_but_threads_work(probe: dict[str, Any]) -> None:
    assert probe["exec"] == "EPERM"
    assert probe["exec_python"] == "EPERM"
    assert probe["fork"] == "EPERM"
    assert probe["thread"] is True


def test_no_tracing_namespaces_or_signals_to_others(probe: dict[str, Any]) -> None:
    assert probe["ptrace_traceme"] == "EPERM"
    assert probe["ptrace_attach"] == "EPERM"
    assert probe["unshare"] == "EPERM"
    assert probe["kill_pid1"] == "EPERM"
    assert probe["pids"] == [1, 2]  # its own pid namespace: bubblewrap's init and the worker


def test_privileges_are_gone(probe: dict[str, Any]) -> None:
    assert probe["no_new_privs"] is True
    assert probe["seccomp"] == "2"  # filter mode
    assert probe["cap_eff"] == "0000000000000000"
    if os.geteuid() == 0:
        assert probe["uid"] == NOBODY[0]


def test_the_host_file_system_is_invisible(probe: dict[str, Any]) -> None:
    for name in (
        "apps",
        "runtime",
        "host_tmp_marker",
        "work",
        "home",
        "root_home",
        "host_etc_passwd",
        "repo",
    ):
        assert probe[f"sees_{name}"] is False, name
    assert probe["root"] == ["bin", "dev", "etc", "lib", "lib64", "opt", "proc", "run", "sbin", "tmp", "usr"]


def test_tmp_is_private_and_empty_and_nothing_is_writable(probe: dict[str, Any]) -> None:
    assert probe["tmp"] == []
    assert probe["write_package"] in ("EROFS", "EACCES")
    assert probe["grow_file"] == "EFBIG"  # RLIMIT_FSIZE 0: no file can grow, not even in /tmp
    assert probe["sysctl"] in ("EROFS", "EACCES")


def test_the_environment_is_built_from_nothing(probe: dict[str, Any]) -> None:
    env = probe["env"]
    assert "VEHICLE_HOST_TEST_SECRET" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert set(env) <= {
        "PATH",
        "PYTHONPATH",
        "PYTHONNOUSERSITE",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
        "LANG",
        "HOME",
        "TMPDIR",
        "PWD",
    }


def test_a_big_allocation_fails_cleanly_and_the_process_lives_on(probe: dict[str, Any]) -> None:
    assert probe["alloc"] == "MemoryError"
    assert probe["after_alloc"] == 1024 * 1024


def test_the_bound_ipc_socket_carries_messages_both_ways(probe: dict[str, Any]) -> None:
    assert probe["echo"] == "got pong"
    assert probe["exit_code"] == 0


def test_the_real_worker_entry_refuses_to_run_unconfined_when_confinement_fails(short_dir: Path) -> None:
    # a uid switch the process has no right to make: confinement fails, the worker must not serve
    spec = SandboxConfig().confine_spec()
    bad = json.dumps(
        {
            "data_bytes": spec.data_bytes,
            "cpu_s": 5,
            "nofile": 64,
            "nproc": 64,
            "uid": 1,
            "gid": 1,
            "seccomp": True,
        }
    )
    endpoint = f"ipc://{short_dir / 'w.sock'}"
    code = "import os; os.setresuid(65534, 65534, 65534)" if os.geteuid() == 0 else "pass"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{code}\nimport sys, runpy\nsys.argv = ['w', '--endpoint', '{endpoint}', '--confine', '{bad}']\n"
            "runpy.run_module('vehicle_host.logic_worker', run_name='__main__')",
        ],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 78
    assert b"refusing to run unconfined" in result.stderr
