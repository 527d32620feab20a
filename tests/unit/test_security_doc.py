"""docs/SECURITY.md stays true: every threat row names at least one test, and every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "SECURITY.md"
NODE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")
THREAT_ROW = re.compile(r"^\|\s*([TF]\d+)\s*\|")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return {name for name in names if name.startswith("test_")}


def test_every_threat_names_a_test() -> None:
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if THREAT_ROW.match(line)]
    assert len(rows) >= 20, "the threat tables went missing"
    ids = [THREAT_ROW.match(line).group(1) for line in rows]  # type: ignore[union-attr]
    assert len(ids) == len(set(ids)), "threat ids must be unique"
    untested = [i for i, line in zip(ids, rows, strict=True) if not NODE.search(line)]
    assert not untested, f"threats without a test: {untested}"


def test_every_named_test_exists() -> None:
    missing = []
    seen = 0
    for path_text, name in NODE.findall(DOC.read_text(encoding="utf-8")):
        seen += 1
        path = REPO / path_text
        if not path.is_file():
            missing.append(path_text)
        elif name and name not in _tests_in(path):
            missing.append(f"{path_text}::{name}")
    assert seen >= 40
    assert not missing, f"docs/SECURITY.md names tests that do not exist: {missing}"
