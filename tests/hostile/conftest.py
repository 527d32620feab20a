"""The hostile suite's network guard, on for every test in this directory.

In the test process the resolver (``socket.getaddrinfo``, ``gethostbyname``...) and socket
(``connect``, ``connect_ex``, ``sendto``, ``sendmsg``; asyncio's ``sock_connect`` goes through
``connect``) entry points refuse any target outside 127.0.0.0/8 and ``::1``: the call raises
:class:`NetGuardViolation` and the test fails at teardown even if the code under test swallowed the
error. Child Python processes get the same hooks through ``netguard/sitecustomize.py``, put first on
``PYTHONPATH``; they write each refusal to a file this fixture reads at teardown.

``netguard.dns(name, *addresses)`` is the fake resolver: the name resolves to those addresses (in
this process and in children started afterwards) without any query leaving the machine, so a test
can point ``evil.example`` at 10.1.2.3 and prove the code under test refuses it before connecting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.netguard import sitecustomize as netguard_hooks

NETGUARD_DIR = Path(__file__).resolve().parent / "netguard"


@dataclass
class NetGuard:
    """What the guard refused so far: in this process (``local``) and in children (``log_path``)."""

    log_path: Path
    monkeypatch: pytest.MonkeyPatch
    local: list[dict[str, Any]] = field(default_factory=list)

    def dns(self, name: str, *addresses: str) -> None:
        """Fake DNS: ``name`` resolves to ``addresses`` here and in children started from now on."""
        netguard_hooks.FAKE_DNS[name.lower().rstrip(".")] = list(addresses)
        self.monkeypatch.setenv(netguard_hooks.DNS_ENV, json.dumps(netguard_hooks.FAKE_DNS))

    def violations(self) -> list[dict[str, Any]]:
        children: list[dict[str, Any]] = []
        if self.log_path.exists():
            text = self.log_path.read_text(encoding="utf-8")
            children = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [*self.local, *children]

    def take(self) -> list[dict[str, Any]]:
        """The violations so far, cleared: for the tests that prove the guard itself."""
        found = self.violations()
        self.local.clear()
        self.log_path.unlink(missing_ok=True)
        return found


@pytest.fixture(autouse=True)
def netguard(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[NetGuard]:
    guard = NetGuard(tmp_path_factory.mktemp("netguard") / "violations.jsonl", monkeypatch)
    netguard_hooks.FAKE_DNS.clear()
    python_path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(NETGUARD_DIR), python_path) if p))
    monkeypatch.setenv(netguard_hooks.FILE_ENV, str(guard.log_path))
    netguard_hooks.install(guard.local.append)
    try:
        yield guard
    finally:
        netguard_hooks.uninstall()
        netguard_hooks.FAKE_DNS.clear()
    found = guard.violations()
    if found:
        pytest.fail(f"network guard: the test tried to leave loopback: {found}", pytrace=False)
