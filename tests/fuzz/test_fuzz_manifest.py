"""Fuzzing the manifest parser: any app.json (bytes or decoded document) gives a BundleError that names
the field to fix, or a Manifest whose invariants hold. A corrupted field is the one the error names."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.fuzzing import fuzz, json_values, mutated_bytes, mutated_text, seed_files
from vehicle_host.bundles.manifest import (
    APP_ID,
    GROUPS,
    HOST,
    MAX_ALLOW_LIST,
    MAX_MANIFEST_BYTES,
    MAX_PAGES,
    ROUTE,
    VERSION,
    Manifest,
    load_manifest,
    parse_manifest,
)
from vehicle_host.errors import BundleError

SEEDS = seed_files("app.json")
SEED_DOCS = [json.loads(raw) for _, raw in SEEDS]

#: what an error about each part of the document must mention (any one of them)
FIELD_WORDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("pages",): ("'pages'", "page route", "tabBar"),
    ("window",): ("'window'", "window."),
    ("tabBar",): ("tabBar",),
    ("vehicle",): ("vehicle",),
    ("window", "navigationBarTitleText"): ("navigationBarTitleText",),
    **{
        ("vehicle", key): (f"vehicle.{key}",)
        for key in ("id", "name", "version", "runtime", "permissions", "drivingSafe", "group", "network")
    },
}
ANY_FIELD = tuple(sorted({word for words in FIELD_WORDS.values() for word in words} | {"JSON object"}))


def check_manifest(manifest: Manifest, doc: dict[str, Any]) -> None:
    """The invariants every accepted manifest keeps."""
    assert APP_ID.match(manifest.app_id) and len(manifest.app_id) <= 64
    assert VERSION.match(manifest.version)
    assert manifest.name.strip() and len(manifest.name) <= 200
    assert 1 <= len(manifest.pages) <= MAX_PAGES
    assert all(isinstance(p, str) and ROUTE.match(p) and len(p) <= 128 for p in manifest.pages)
    assert manifest.entry == manifest.pages[0]
    assert 1 <= manifest.runtime_min <= manifest.runtime_max
    assert type(manifest.runtime_min) is int and type(manifest.runtime_max) is int
    assert all(isinstance(p, str) for p in manifest.permissions)
    assert isinstance(manifest.driving_safe, bool)
    assert manifest.group in GROUPS
    assert len(manifest.allow_list) <= MAX_ALLOW_LIST
    assert all(h == h.lower() and HOST.match(h) and len(h) <= 253 for h in manifest.allow_list)
    assert all(0 < int(h.rpartition(":")[2]) < 65536 for h in manifest.allow_list if ":" in h)
    assert set(manifest.tab_routes) <= set(manifest.pages)
    assert manifest.tab_routes == () or 2 <= len(manifest.tab_routes) <= 5
    assert isinstance(manifest.title, str) and len(manifest.title) <= 100
    assert isinstance(manifest.publisher, str)
    hash(manifest)  # frozen, made of hashable parts


def parse_or_refuse(doc: Any) -> Manifest | BundleError:
    try:
        manifest = parse_manifest(doc, where="app.json")
    except BundleError as exc:
        assert str(exc).startswith("app.json: "), str(exc)
        assert any(word in str(exc) for word in ANY_FIELD), f"the error names no field: {exc}"
        return exc
    check_manifest(manifest, doc)
    return manifest


# -- documents ------------------------------------------------------------------------------------------

valid_ids = st.from_regex(r"\A[a-z][a-z0-9_]{0,8}(\.[a-z0-9_-]{1,8}){1,3}\Z")
valid_routes = st.from_regex(r"\A[A-Za-z0-9_-]{1,8}(/[A-Za-z0-9_-]{1,8}){0,2}\Z")


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    pages = draw(st.lists(valid_routes, min_size=1, max_size=6, unique=True))
    doc: dict[str, Any] = {
        "pages": pages,
        "window": {"navigationBarTitleText": draw(st.text(max_size=100))},
        "vehicle": {
            "id": draw(valid_ids),
            "name": draw(st.text(min_size=1, max_size=20).filter(str.strip)),
            "version": draw(st.from_regex(r"\A\d{1,3}\.\d{1,3}\.\d{1,3}(-[0-9A-Za-z.]{1,5})?\Z")),
            "runtime": {"min": 1, "max": draw(st.integers(1, 5))},
            "permissions": draw(st.lists(st.text(max_size=12), max_size=4)),
            "drivingSafe": draw(st.booleans()),
            "group": draw(st.sampled_from(GROUPS)),
            "network": draw(
                st.lists(st.from_regex(r"\A(\*\.)?[a-z0-9]{1,10}(\.[a-z0-9]{1,6}){0,2}\Z"), max_size=3)
            ),
        },
    }
    if len(pages) >= 2 and draw(st.booleans()):
        tabs = draw(st.lists(st.sampled_from(pages), min_size=2, max_size=min(5, len(pages))))
        doc["tabBar"] = {"list": [{"pagePath": p, "text": draw(st.text(max_size=20))} for p in tabs]}
    return doc


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(doc))
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


# a wrong value of a plausible-looking kind for each field, or any JSON at all
wrong_values = st.one_of(
    json_values,
    st.sampled_from(
        [
            "",
            " ",
            "x" * 300,
            "com",
            "Com.A.B",
            "1.0",
            "1.0.0.0",
            "a..b",
            "../x",
            "/abs",
            "pages//x",
            [],
            [""],
            ["x"] * (MAX_PAGES + 1),
            {"min": 0},
            {"min": 2, "max": 1},
            {"min": True},
            {"min": 1.0},
            "true",
            "root",
            ["http://x"],
            ["localhost:99999"],
            ["*.*"],
            ["a" * 64],
            [1],
            {"list": []},
            {"list": [{}]},
            {"list": [{"pagePath": "nope"}, {"pagePath": "nope"}]},
            2**64,
            -1,
            None,
            float("nan"),
            "driver ",
        ]
    ),
)


@fuzz(400)
@given(valid_documents(), st.sampled_from(sorted(FIELD_WORDS)), wrong_values)
@example({"pages": ["p"], "vehicle": {"id": "a.b", "name": "n", "version": "1.0.0"}}, ("tabBar",), [])
@example(
    {"pages": ["p"], "vehicle": {"id": "a.b", "name": "n", "version": "1.0.0"}},
    ("vehicle", "network"),
    ["h:99999"],
)
@example(
    {"pages": ["p"], "vehicle": {"id": "a.b", "name": "n", "version": "1.0.0"}},
    ("vehicle", "network"),
    ["h:0"],
)
def test_a_corrupted_field_is_the_one_the_error_names(
    doc: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    parse_or_refuse(doc)  # the base document is valid
    assert isinstance(parse_or_refuse(doc), Manifest)
    result = parse_or_refuse(_set(doc, path, value))
    if isinstance(result, BundleError):
        words = FIELD_WORDS[path]
        assert any(word in str(result) for word in words), f"{path} was changed but the error says: {result}"


@fuzz(300)
@given(
    st.one_of(
        json_values, st.dictionaries(st.sampled_from(["pages", "window", "vehicle", "tabBar"]), json_values)
    )
)
def test_any_document_gives_a_manifest_or_names_the_field(doc: Any) -> None:
    parse_or_refuse(doc)


_JSON_TOKENS = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "NaN",
    "Infinity",
    "-0",
    "1e999",
    "9" * 5000,
    '"pages"',
    '"vehicle"',
    '"id"',
    '"version"',
    '"runtime"',
    '"min"',
    '"max"',
    '"group"',
    '"network"',
    '"tabBar"',
    '"list"',
    '"pagePath"',
    "[" * 3000,
    "\ufeff",
]


@fuzz(200)
@given(
    st.one_of(
        st.binary(max_size=300),
        mutated_bytes(st.sampled_from([raw for _, raw in SEEDS]), max_ops=8),
        mutated_text(st.sampled_from([raw.decode() for _, raw in SEEDS]), _JSON_TOKENS).map(
            lambda t: t.encode("utf-8", "surrogatepass")
        ),
    )
)
@example(b"[" * 100_000)
@example(b'{"pages": [' + b"9" * 5000 + b"]}")
@example(b"\xef\xbb\xbf{}")
@example(b"{" * 10 + b" " * MAX_MANIFEST_BYTES)
def test_any_app_json_bytes_give_a_manifest_or_bundle_error(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "app.json").write_bytes(raw)
        before = sorted(p.name for p in Path(tmp).iterdir())
        try:
            manifest = load_manifest(Path(tmp))
        except BundleError as exc:
            assert "app.json" in str(exc)
        else:
            check_manifest(manifest, json.loads(raw))
        assert sorted(p.name for p in Path(tmp).iterdir()) == before  # reading writes nothing


def test_the_sample_manifests_are_valid() -> None:
    for (name, _), doc in zip(SEEDS, SEED_DOCS, strict=True):
        assert isinstance(parse_or_refuse(doc), Manifest), name
