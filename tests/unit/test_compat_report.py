import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load():
    spec = importlib.util.spec_from_file_location("compat_report", REPO / "scripts" / "compat_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_compatibility_report_matches_the_code():
    report = load()
    assert (REPO / "docs" / "COMPATIBILITY.md").read_text() == report.build(), (
        "run .venv/bin/python scripts/compat_report.py"
    )


def test_counted_apis_are_head_unit_rows_we_implement():
    report = load()
    text = report.build()
    ours = report.implemented_apis()
    head_unit = {r["api"] for r in report.table("wechat-apis-annotated.tsv") if r["headunit"] == "1"}
    assert f"**{len(ours & head_unit)}**" in text
