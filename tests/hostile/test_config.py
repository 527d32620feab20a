"""Hostile host config files given to ``python -m vehicle_host hub --config FILE``: each stops the hub
before it starts with one readable line naming the key or the problem (exit 2, no traceback), and
nothing is created (no runtime or state directory, no socket)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from vehicle_host import config

from .bundle_fixtures import one_line_error, vehicle_host

pytestmark = pytest.mark.integration

Make = Callable[[Path], Path]


def text(body: str) -> Make:
    def make(where: Path) -> Path:
        where.write_text(body, encoding="utf-8")
        return where

    return make


def raw(body: bytes) -> Make:
    def make(where: Path) -> Path:
        where.write_bytes(body)
        return where

    return make


def directory(where: Path) -> Path:
    where.mkdir()
    return where


def fifo(where: Path) -> Path:
    os.mkfifo(where)  # a reader would block forever waiting for a writer
    return where


def device(where: Path) -> Path:
    return Path("/dev/zero")  # endless: a reader without a limit fills the memory


CASES: dict[str, tuple[Make, tuple[str, ...]]] = {
    "wrong-type-path": (text("[host]\napps = 5\n"), ("host.apps must be a path", "5")),
    "nul-in-path": (text('[host]\napps = "/var/lib/x\\u0000y"\n'), ("host.apps must be a path",)),
    "unknown-section": (text("[hots]\napps = '/x'\n"), ("'hots' is not a setting", "host, plugins, sandbox")),
    "unknown-host-key": (text("[host]\napp = '/x'\n"), ("host.'app' is not a setting", "apps")),
    "wrong-type-flag": (text('[sandbox]\nenabled = "no"\n'), ("sandbox.enabled must be true or false",)),
    "negative-limit": (text("[sandbox]\nmemory_mb = -1\n"), ("memory_mb=-1", "8..4096")),
    "huge-limit": (text(f"[sandbox]\nnofile = {2**63 - 1}\n"), ("nofile=", "16..65536")),
    "nan-seconds": (text("[sandbox]\nsample_interval_s = nan\n"), ("sandbox.sample_interval_s", "seconds")),
    "string-number": (text('[sandbox]\npool_size = "3"\n'), ("sandbox.pool_size must be an integer",)),
    "unknown-sandbox-key": (text("[sandbox]\nmemory = 64\n"), ("sandbox.'memory' is not a setting",)),
    "unknown-plugin": (text("[plugins.storag]\nquota_bytes = 1\n"), ("[plugins.storag]", "not an installed")),
    "date-for-plugin": (text("[plugins.storage]\nquota_bytes = 1979-05-27\n"), ("[plugins.storage]", "JSON")),
    "oversize-plugin-table": (
        text('[plugins.storage]\nnote = "' + "x" * 100_000 + '"\n'),
        ("[plugins.storage]", "at most 65536"),
    ),
    "enabled-not-a-list": (text('[plugins]\nenabled = "storage"\n'), ("plugins.enabled must be a list",)),
    "not-utf8": (raw(b"[host]\napps = '/caf\xe9'\n"), ("is not UTF-8 text (byte 19)",)),
    "deep-nesting": (
        text("x = " + "[" * 50_000 + "]" * 50_000 + "\n"),
        ("nests arrays or tables too deeply",),
    ),
    "over-large": (text("# " + "x" * (300 * 1024) + "\n"), ("larger than 262144 bytes",)),
    "a-directory": (directory, ("is a directory; give the TOML file itself",)),
    "a-fifo": (fifo, ("not a regular file",)),
    "a-device": (device, ("/dev/zero is not a regular file",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_config_stops_the_hub_with_one_line(case: str, tmp_path: Path) -> None:
    make, needles = CASES[case]
    path = make(tmp_path / "host.toml")
    runtime, state = tmp_path / "run", tmp_path / "state"
    done = vehicle_host("hub", "--config", path, "--runtime-dir", runtime, "--state-dir", state, timeout=30)
    line = one_line_error(done)
    assert done.returncode == 2, done.stderr
    assert line.startswith("vehicle-host: ")
    for needle in needles:
        assert needle in line, line
    assert len(line) < 1000
    assert not runtime.exists() and not state.exists()  # refused before anything was made


def test_control_the_same_keys_with_good_values_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "host.toml"
    path.write_text(
        '[host]\napps = "/srv/apps"\nstate = "/srv/state"\ndealer_apps_need_role = true\n\n'
        '[plugins]\nenabled = ["storage"]\n\n[plugins.storage]\nquota_bytes = 1048576\n\n'
        "[sandbox]\nenabled = true\nmemory_mb = 64\npool_size = 1\nsample_interval_s = 1.5\n"
    )
    cfg = config.resolve(runtime_dir=str(tmp_path / "run"), config_file=str(path))
    assert (cfg.apps_dir, cfg.state_dir, cfg.dealer_apps_need_role) == (
        Path("/srv/apps"),
        Path("/srv/state"),
        True,
    )
    assert cfg.enabled_plugins == ("storage",) and cfg.plugins == {"storage": {"quota_bytes": 1048576}}
    assert dict(cfg.sandbox) == {"enabled": True, "memory_mb": 64, "pool_size": 1, "sample_interval_s": 1.5}
