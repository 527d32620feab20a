import importlib.util
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load():
    spec = importlib.util.spec_from_file_location("api_reference", REPO / "scripts" / "api_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_reference_and_permissions_match_the_code():
    ref = load()
    assert (REPO / "docs" / "API.md").read_text() == ref.build_api(), (
        "run .venv/bin/python scripts/api_reference.py"
    )
    assert (REPO / "docs" / "PERMISSIONS.md").read_text() == ref.build_permissions(), (
        "run .venv/bin/python scripts/api_reference.py"
    )


def test_generation_is_deterministic():
    ref = load()
    assert ref.build_api() == ref.build_api()
    assert ref.build_permissions() == ref.build_permissions()


def test_every_plugin_of_pyproject_is_documented():
    ref = load()
    doc = tomllib.loads((REPO / "pyproject.toml").read_text())
    registered = set(doc["project"]["entry-points"]["vehicle_host.plugins"])
    assert registered
    assert {name for name, _ in ref.plugins()} == registered
    api = ref.build_api()
    for name in registered:
        assert f"### Plugin {name}\n" in api


def test_every_declared_method_appears_with_its_rules():
    ref = load()
    api, perms = ref.build_api(), ref.build_permissions()
    count = 0
    for plugin, cls in ref.plugins():
        for decl in cls.declarations():
            count += 1
            section = api.split(f"#### `fc.{decl.name}`\n", 1)
            assert len(section) == 2, f"{plugin}: fc.{decl.name} has no section in API.md"
            body = section[1].split("\n#### ", 1)[0]
            expected = f"`{decl.permission}`" if decl.permission else "none"
            assert f"| permission | {expected} |" in body
            assert ("parked only" if decl.driving == "parked_only" else "also while driving") in body
            assert ("asked on first use" if decl.consent else "| driver consent | no |") in body
            for prop in decl.args.get("properties", {}):
                assert f"| `{prop}` |" in body, f"fc.{decl.name}: argument {prop} missing"
            row = re.search(rf"^\| {re.escape(plugin)} \| `fc\.{re.escape(decl.name)}` \| (.+)$", perms, re.M)
            assert row, f"fc.{decl.name} missing from PERMISSIONS.md"
            assert row.group(1).startswith(expected)
    assert count > 0


def test_every_permission_lists_the_methods_that_need_it():
    ref = load()
    perms = ref.build_permissions()
    needed: dict[str, set[str]] = {}
    for _, cls in ref.plugins():
        for decl in cls.declarations():
            if decl.permission:
                needed.setdefault(decl.permission, set()).add(decl.name)
    for permission, methods in needed.items():
        row = next(line for line in perms.splitlines() if line.startswith(f"| `{permission}` |"))
        assert {m.removeprefix("`fc.").rstrip("`") for m in row.split(" | ")[1].split(", ")} == methods


def test_every_fc_api_is_listed():
    ref = load()
    api = ref.build_api()
    for name in ref.compat_report.implemented_apis():
        assert f"| `fc.{name}` |" in api
