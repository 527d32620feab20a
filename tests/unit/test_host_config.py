"""Host configuration: file, environment and command line, in that order of strength."""

from __future__ import annotations

from pathlib import Path

import pytest

from vehicle_host import config
from vehicle_host.errors import VehicleHostError


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "host.toml"
    path.write_text('[host]\napps = "/from/file"\n\n[plugins]\nenabled = ["storage"]\n')
    for var in ("VEHICLE_HOST_APPS", "VEHICLE_HOST_PLUGINS", "VEHICLE_HOST_STATE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VEHICLE_HOST_CONFIG", str(path))
    return path


def test_the_environment_overrides_the_file_and_the_command_line_the_environment(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.resolve(runtime_dir="/tmp/vh").apps_dir == Path("/from/file")
    monkeypatch.setenv("VEHICLE_HOST_APPS", "/from/env")
    assert config.resolve(runtime_dir="/tmp/vh").apps_dir == Path("/from/env")
    assert config.resolve("/from/cli", "/tmp/vh").apps_dir == Path("/from/cli")


def test_plugin_names_from_the_environment_are_trimmed(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.resolve(runtime_dir="/tmp/vh").enabled_plugins == ("storage",)
    monkeypatch.setenv("VEHICLE_HOST_PLUGINS", " storage, network ,,")
    assert config.resolve(runtime_dir="/tmp/vh").enabled_plugins == ("storage", "network")


def test_a_broken_file_or_setting_says_what_is_wrong(config_file: Path) -> None:
    config_file.write_text("[host]\ndealer_apps_need_role = 'yes'\n")
    with pytest.raises(VehicleHostError, match="must be true or false"):
        config.resolve(runtime_dir="/tmp/vh")
    config_file.write_text("[host\n")
    with pytest.raises(VehicleHostError, match="not valid TOML"):
        config.resolve(runtime_dir="/tmp/vh")
    config_file.write_text("")
    with pytest.raises(VehicleHostError, match="shorter --runtime-dir"):
        config.resolve(runtime_dir="/tmp/" + "x" * 100)
