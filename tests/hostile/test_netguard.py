"""The network guard itself: a connect or a name lookup outside loopback fails, here and in a child."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.hostile.conftest import NetGuard
from tests.hostile.netguard.sitecustomize import NetGuardViolation

CHILD = """
import socket, sys
results = []
for attempt in (lambda: socket.create_connection(("10.0.0.1", 80), timeout=1),
                lambda: socket.getaddrinfo("example.com", 80)):
    try:
        attempt()
        results.append("reached")
    except OSError as error:
        results.append(type(error).__name__)
print(",".join(results))
"""


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_connect_outside_loopback_fails_in_process(netguard: NetGuard) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(NetGuardViolation, match=r"10\.0\.0\.1"),
    ):
        sock.connect(("10.0.0.1", 80))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.connect_ex(("127.0.0.1", _closed_port())) == errno.ECONNREFUSED  # loopback: allowed
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(NetGuardViolation):
        udp.sendto(b"x", ("192.168.1.1", 53))
    found = netguard.take()
    assert [v["call"] for v in found] == ["connect", "sendto"]


def test_resolve_outside_loopback_fails_in_process(netguard: NetGuard) -> None:
    with pytest.raises(NetGuardViolation, match=r"example\.com"):
        socket.getaddrinfo("example.com", 80)
    with pytest.raises(NetGuardViolation):
        socket.gethostbyname("example.com")
    assert socket.getaddrinfo("localhost", 80)  # loopback names and numeric hosts stay allowed
    assert socket.getaddrinfo("2130706433", 80)[0][4][0] == "127.0.0.1"
    assert [v["call"] for v in netguard.take()] == ["getaddrinfo", "gethostbyname"]


def test_swallowed_violation_is_still_recorded(netguard: NetGuard) -> None:
    with contextlib.suppress(OSError):  # code under test that hides the error does not hide the attempt
        socket.create_connection(("8.8.8.8", 53), timeout=1)
    assert [v["target"] for v in netguard.take()] == ["('8.8.8.8', 53)"]


def test_child_process_is_guarded(netguard: NetGuard) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == "NetGuardViolation,NetGuardViolation"
    found = netguard.take()
    assert {v["call"] for v in found} == {"connect", "getaddrinfo"}
    assert all(v["pid"] != 0 for v in found)


def test_ipv4_mapped_and_decimal_spellings_are_refused(netguard: NetGuard) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock, pytest.raises(NetGuardViolation):
        sock.connect(("::ffff:10.0.0.1", 80))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(NetGuardViolation):
        sock.connect(("167772161", 80))  # 10.0.0.1 in decimal
    assert len(netguard.take()) == 2


def test_violation_fails_the_test_even_when_swallowed(tmp_path: Path, netguard: NetGuard) -> None:
    """A nested pytest run with this guard: a test that hides a blocked connect still fails."""
    (tmp_path / "conftest.py").write_text("from tests.hostile.conftest import netguard  # noqa: F401\n")
    (tmp_path / "test_leak.py").write_text(
        textwrap.dedent(
            """
            import socket

            def test_leak():
                try:
                    socket.create_connection(("10.9.8.7", 80), timeout=1)
                except OSError:
                    pass
            """
        )
    )
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert run.returncode == 1, run.stdout
    assert "network guard: the test tried to leave loopback" in run.stdout
    assert "10.9.8.7" in run.stdout
    assert netguard.take() == []


def test_fake_dns_answers_without_a_query_here_and_in_a_child(netguard: NetGuard) -> None:
    netguard.dns("evil.example", "10.1.2.3", "fd00::7")
    answers = {info[4][0] for info in socket.getaddrinfo("evil.example", 443, type=socket.SOCK_STREAM)}
    assert answers == {"10.1.2.3", "fd00::7"}
    child = "import socket; print(socket.gethostbyname('EVIL.example.'))"
    out = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == "10.1.2.3"
    with pytest.raises(NetGuardViolation):
        socket.create_connection(("evil.example", 443), timeout=1)  # resolving is fine, connecting is not
    found = netguard.take()
    assert {v["call"] for v in found} == {"connect"} and "10.1.2.3" in found[0]["target"]
