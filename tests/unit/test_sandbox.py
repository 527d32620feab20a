"""Sandbox settings and the bubblewrap command line (pure: nothing is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vehicle_host.sandbox import bwrap
from vehicle_host.sandbox.config import ConfineSpec, SandboxConfig, SandboxConfigError, WorkerLimits

LAYOUT = bwrap.PythonLayout(
    executable=Path("/usr/bin/python3.11"),
    venv=Path("/srv/app/.venv"),
    dirs=(Path("/usr/local/lib/python3.11/dist-packages"),),
    package=Path("/srv/app/src/vehicle_host"),
)
SOCKET = Path("/run/user/1000/vehicle-host-1000/w-7.sock")


def argv(*, as_root: bool) -> list[str]:
    return bwrap.build_argv(
        "/usr/bin/bwrap", LAYOUT, SOCKET, ["-m", "vehicle_host.logic_worker"], as_root=as_root
    )


def binds(args: list[str]) -> dict[str, str]:
    return {args[i + 2]: args[i + 1] for i, a in enumerate(args) if a in ("--ro-bind", "--bind")}


def test_defaults_match_the_documented_limits() -> None:
    config = SandboxConfig()
    assert config.enabled and config.confine and config.pool_size == 1
    assert config.limits.time_ms == 1000 and config.limits.memory_mb == 64
    assert config.heartbeat_timeout_s == 5.0 and config.crash_limit == 3 and config.crash_window_s == 60.0
    assert config.limits.for_worker_start() == {"time_ms": 1000, "memory_mb": 64}
    assert config.limits.data_bytes == (64 + 128) * 1024 * 1024


def test_environment_overrides_and_explicit_overrides_win() -> None:
    env = {
        "VEHICLE_HOST_SANDBOX": "0",
        "VEHICLE_HOST_POOL_SIZE": "3",
        "VEHICLE_HOST_WORKER_MEMORY_MB": "128",
        "VEHICLE_HOST_HEARTBEAT_TIMEOUT_S": "2.5",
        "VEHICLE_HOST_WORKER_USER": "1234:4321",
        "VEHICLE_HOST_BWRAP": "/opt/bwrap",
    }
    config = SandboxConfig.from_env(env, pool_size=2)
    assert not config.enabled and config.pool_size == 2
    assert config.limits.memory_mb == 128 and config.heartbeat_timeout_s == 2.5
    assert config.worker_user == (1234, 4321) and config.bwrap == "/opt/bwrap"
    assert SandboxConfig.from_env({}, limits=WorkerLimits(nofile=99)).limits.nofile == 99


@pytest.mark.parametrize(
    "env",
    [
        {"VEHICLE_HOST_SANDBOX": "maybe"},
        {"VEHICLE_HOST_POOL_SIZE": "lots"},
        {"VEHICLE_HOST_POOL_SIZE": "100"},
        {"VEHICLE_HOST_WORKER_MEMORY_MB": "1"},
        {"VEHICLE_HOST_WORKER_USER": "0:0"},
        {"VEHICLE_HOST_WORKER_USER": "nobody"},
        {"VEHICLE_HOST_HEARTBEAT_TIMEOUT_S": "-1"},
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(env: dict[str, str]) -> None:
    with pytest.raises(SandboxConfigError):
        SandboxConfig.from_env(env)


def test_confine_spec_round_trips_and_refuses_hostile_json() -> None:
    spec = ConfineSpec(data_bytes=1 << 28, cpu_s=10, nofile=64, nproc=100, uid=65534, gid=65534)
    assert ConfineSpec.from_json(spec.to_json()) == spec
    for bad in ("not json", "[]", '{"data_bytes": 1}',
                '{"data_bytes": -1, "cpu_s": 1, "nofile": 1, "nproc": 1}',
                '{"data_bytes": 1, "cpu_s": 1, "nofile": 1, "nproc": 1, "evil": true}',
                '{"data_bytes": 1, "cpu_s": 1, "nofile": 1, "nproc": 1, "uid": -5}'):  # fmt: skip
        with pytest.raises(SandboxConfigError):
            ConfineSpec.from_json(bad)


def test_the_command_starts_with_every_namespace_a_clean_environment_and_no_capabilities() -> None:
    args = argv(as_root=False)
    assert args[0] == "/usr/bin/bwrap"
    for flag in ("--die-with-parent", "--new-session", "--clearenv", "--unshare-net", "--unshare-pid",
                 "--unshare-ipc", "--unshare-uts", "--unshare-user"):  # fmt: skip
        assert flag in args
    assert args[args.index("--cap-drop") + 1] == "ALL"
    assert "--cap-add" not in args
    tail = args[args.index("--") + 1 :]
    assert tail == ["/opt/vehicle-host/venv/bin/python3", "-s", "-B", "-m", "vehicle_host.logic_worker"]


def test_as_root_only_the_uid_switch_capabilities_are_kept_and_no_user_namespace() -> None:
    args = argv(as_root=True)
    assert "--unshare-user" not in args
    kept = [args[i + 1] for i, a in enumerate(args) if a == "--cap-add"]
    assert sorted(kept) == ["CAP_SETGID", "CAP_SETUID"]
    assert SandboxConfig().confine_spec().seccomp


def test_only_the_interpreter_the_package_and_the_socket_are_bound_read_only() -> None:
    args = argv(as_root=False)
    assert "--bind" not in args  # nothing writable from the host
    mounted = binds(args)
    assert mounted["/run/vehicle-host/worker.sock"] == str(SOCKET)
    assert mounted["/opt/vehicle-host/lib/vehicle_host"] == "/srv/app/src/vehicle_host"
    assert mounted["/opt/vehicle-host/venv/lib"] == "/srv/app/.venv/lib"
    assert mounted["/usr/bin/python3.11"] == "/usr/bin/python3.11"
    assert mounted["/usr/local/lib/python3.11/dist-packages"] == "/usr/local/lib/python3.11/dist-packages"
    sources = set(mounted.values())
    assert not any(s.startswith(("/home", "/root", "/run/user", "/srv/app/src/examples")) for s in sources - {
        str(SOCKET)})  # fmt: skip
    env = {args[i + 1]: args[i + 2] for i, a in enumerate(args) if a == "--setenv"}
    assert env["PYTHONPATH"] == "/opt/vehicle-host/lib" and env["HOME"] == "/tmp"


def test_tmp_is_a_tmpfs_mounted_before_anything_under_it_and_parents_are_world_readable() -> None:
    args = argv(as_root=True)
    tmpfs = args.index("--tmpfs")
    assert args[tmpfs + 1] == "/tmp" and args[tmpfs - 2 : tmpfs] == ["--perms", "01777"]
    assert args.index("--proc") < tmpfs
    for i, a in enumerate(args):
        if a == "--dir":
            assert args[i - 2 : i] == ["--perms", "0755"]  # bwrap's default 0700 would lock the worker out
    created = {args[i + 1] for i, a in enumerate(args) if a == "--dir"}
    assert {"/usr", "/opt", "/run", "/run/vehicle-host", "/etc"} <= created


def test_discovery_describes_this_interpreter() -> None:
    layout = bwrap.discover()
    assert layout.executable.is_file()
    assert (layout.package / "sandbox" / "bwrap.py").is_file()
    assert all(d.is_dir() for d in layout.dirs)


def test_the_config_file_section_is_read_and_the_environment_wins_over_it() -> None:
    section = {"enabled": True, "memory_mb": 96, "pool_size": 2, "worker_user": "2000:2000"}
    config = SandboxConfig.resolve(section, {"VEHICLE_HOST_POOL_SIZE": "0"})
    assert config.limits.memory_mb == 96 and config.pool_size == 0 and config.worker_user == (2000, 2000)
    with pytest.raises(SandboxConfigError, match="not a setting"):
        SandboxConfig.resolve({"memroy_mb": 96}, {})
    with pytest.raises(SandboxConfigError):
        SandboxConfig.resolve({"memory_mb": "lots"}, {})
