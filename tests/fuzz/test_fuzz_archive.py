"""Fuzzing the bundle unpacker: mutated sample bundles and zips built from hostile entries are refused
with a BundleError (and nothing is written), or extract to a tree that stays inside the target, holds
only regular files and folders, and keeps every limit. ``inspect`` never writes anything."""

from __future__ import annotations

import functools
import io
import json
import os
import stat
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from tests.fuzz.fuzzing import EXAMPLES, fuzz, mutated_bytes
from vehicle_host.bundles import archive
from vehicle_host.bundles.archive_rules import COMPONENT, DEFAULT_LIMITS, Limits
from vehicle_host.errors import BundleError

#: extraction fsyncs every file and folder: on tmpfs that costs nothing
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@functools.cache
def sample_bundles() -> tuple[bytes, ...]:
    """The sample apps packed as .vhb bytes (packed once per test session)."""
    out = []
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        for app in sorted(p for p in EXAMPLES.iterdir() if (p / "app.json").is_file()):
            target = Path(tmp) / f"{app.name}.vhb"
            archive.pack(app, target)
            out.append(target.read_bytes())
    return tuple(out)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def check_extraction(dest: Path, data: bytes, limits: Limits) -> None:
    """The invariants of an extraction that succeeded."""
    real = dest.resolve()
    files = 0
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for folder, dirs, names in os.walk(dest):
            for name in [*dirs, *names]:
                path = Path(folder) / name
                mode = os.lstat(path).st_mode
                assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), f"{path} is neither file nor folder"
                assert path.resolve().is_relative_to(real)
                relative = path.relative_to(dest)
                assert COMPONENT.match(name) and len(relative.parts) <= limits.max_depth
                if stat.S_ISREG(mode):
                    files += 1
                    size = path.stat().st_size
                    total += size
                    assert stat.S_IMODE(mode) == archive.FILE_MODE
                    assert path.read_bytes() == zf.read(relative.as_posix()), "extracted bytes differ"
    assert files <= limits.max_files and total <= limits.max_total_bytes


def extract_or_refuse(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Extract ``data`` into a fresh folder; check the result or that a refusal wrote nothing."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        parent = Path(tmp) / "apps"
        parent.mkdir()
        bundle = Path(tmp) / "in.vhb"
        bundle.write_bytes(data)
        try:
            info = archive.inspect(bundle, limits)
        except BundleError:
            info = None
        assert sorted(os.listdir(tmp)) == ["apps", "in.vhb"] and not os.listdir(parent), "inspect wrote"
        dest = parent / "app"
        try:
            manifest = archive.extract_bytes(data, dest, limits)
        except BundleError as exc:
            assert str(exc)
            assert os.listdir(parent) == [], f"a refused bundle left {os.listdir(parent)}"
            _note(f"refused: {str(exc).partition(': ')[2][:30]}")
            return exc
        _note("extracted")
        assert os.listdir(parent) == ["app"], "only the target folder appears"
        check_extraction(dest, data, limits)
        assert info is not None, "a bundle that extracts must also pass inspect"
        assert info.manifest == manifest
        assert set(info.files) == {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
        return manifest


def _note(what: str) -> None:
    if currently_in_test_context():
        event(what)  # shown by --hypothesis-show-statistics: how often each outcome was reached


# -- mutated sample bundles -----------------------------------------------------------------------------


def test_sample_bundles_extract() -> None:
    for data in sample_bundles():
        assert not isinstance(extract_or_refuse(data), BundleError)


# drawn lazily, so packing happens when a test runs, not when it is collected
seed_bundles = st.integers(0, 63).map(lambda i: sample_bundles()[i % len(sample_bundles())])


@fuzz(250)
@given(mutated_bytes(seed_bundles, max_ops=4))
def test_mutated_sample_bundles_are_refused_or_extract_safely(data: bytes) -> None:
    extract_or_refuse(data)


# -- zips built from hostile entries ------------------------------------------------------------------

MANIFEST = json.dumps(
    {"pages": ["pages/index/index"], "vehicle": {"id": "com.fuzz.app", "name": "F", "version": "1.0.0"}}
).encode()
parts = st.sampled_from(
    [
        "app.json",
        "pages",
        "index",
        "a.js",
        "A.JS",
        "..",
        ".",
        "",
        "x" * 101,
        "C:",
        "c:x",
        "ä",
        "a b",
        ".hidden",
        "_x",
        "a\\b",
        "con",
        "a\x00b",
        "é.txt",
        "~",
        "-",
        "pages/index",
    ]
)
valid_names = st.lists(st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,6}\Z"), min_size=1, max_size=4).map(
    "/".join
)
names = st.one_of(
    valid_names,
    valid_names,
    valid_names.map(lambda n: n + "/"),
    st.sampled_from(["app.json", "app.json/", "pages/", "pages/index/index.js", "APP.JSON", "/app.json"]),
    st.lists(parts, min_size=1, max_size=20).map("/".join),
    st.builds(
        lambda p, slash: "/" + p if slash else p,
        st.lists(parts, min_size=1, max_size=4).map("/".join),
        st.booleans(),
    ),
    st.text(max_size=12),
)
contents = st.one_of(
    st.just(MANIFEST),
    st.binary(max_size=200),
    st.integers(0, 300_000).map(lambda n: b"\0" * n),  # compresses far beyond any sane ratio
    st.binary(max_size=2000).map(lambda b: b * 8),  # repetitive: compresses about 8:1
    st.sampled_from(
        [b"{}", b"[" * 5000, MANIFEST[:-2], b"\xff\xfe", json.dumps({"pages": ["../x"]}).encode()]
    ),
)
UNIX_KINDS = [
    *[stat.S_IFREG | 0o644] * 6,
    stat.S_IFDIR | 0o755,
    stat.S_IFLNK | 0o777,
    stat.S_IFIFO | 0o644,
    stat.S_IFCHR | 0o644,
    stat.S_IFSOCK | 0o644,
    0,
    stat.S_IFREG | 0o4755,
]
entries = st.lists(
    st.tuples(
        names,
        contents,
        st.sampled_from(
            [zipfile.ZIP_STORED, *[zipfile.ZIP_DEFLATED] * 3, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
        ),
        st.sampled_from(UNIX_KINDS),
        st.sampled_from([3, 3, 3, 0]),  # Unix, or MS-DOS (no mode bits)
        st.sampled_from([0, 0, 0, 0x1, 0x8, 0x800]),  # flag bits: encrypted, data descriptor, UTF-8
    ),
    max_size=8,
)
limits = st.one_of(
    st.just(DEFAULT_LIMITS),
    st.just(DEFAULT_LIMITS),
    st.builds(
        Limits,
        max_archive_bytes=st.integers(100, 2 * 1024 * 1024),
        max_total_bytes=st.integers(0, 400_000),
        max_files=st.integers(1, 10),
        max_ratio=st.integers(1, 200),
        ratio_grace_bytes=st.integers(0, 70_000),
        max_depth=st.integers(1, 16),
        max_path_chars=st.integers(1, 1024),
    ),
)


def build_zip(items: list[tuple[str, bytes, int, int, int, int]], with_manifest: bool) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as zf:
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are part of the attack
        if with_manifest:
            zf.writestr("app.json", MANIFEST)
        for name, data, method, mode, system, flags in items:
            info = zipfile.ZipInfo(name or "x", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.create_system = system
            info.external_attr = mode << 16
            info.flag_bits |= flags & 0x1  # zipfile writes the rest itself
            try:
                zf.writestr(info, data)
            except (ValueError, OSError):
                continue  # zipfile itself refuses some names (e.g. a '/' name with data)
    return buffer.getvalue()


@fuzz(250)
@given(entries, st.sampled_from([True, True, True, False]), limits)
@example([("../evil", b"x", zipfile.ZIP_STORED, stat.S_IFREG | 0o644, 3, 0)], True, DEFAULT_LIMITS)
@example([("link", b"/etc/passwd", zipfile.ZIP_STORED, stat.S_IFLNK | 0o777, 3, 0)], True, DEFAULT_LIMITS)
@example([("big", b"\0" * 300_000, zipfile.ZIP_DEFLATED, stat.S_IFREG | 0o644, 3, 0)], True, DEFAULT_LIMITS)
@example([("A.js", b"1", 0, 0, 0, 0), ("a.JS", b"2", 0, 0, 0, 0)], True, DEFAULT_LIMITS)
@example([("pages", b"1", 0, 0, 0, 0), ("pages/x.js", b"2", 0, 0, 0, 0)], True, DEFAULT_LIMITS)
def test_hostile_zips_are_refused_or_extract_safely(
    items: list[tuple[str, bytes, int, int, int, int]], with_manifest: bool, chosen: Limits
) -> None:
    extract_or_refuse(build_zip(items, with_manifest), chosen)


@fuzz(150)
@given(entries, limits, st.integers(0, 2**16))
def test_mutated_hostile_zips_are_refused_or_extract_safely(
    items: list[tuple[str, bytes, int, int, int, int]], chosen: Limits, seed: int
) -> None:
    data = bytearray(build_zip(items, True))
    # lie in a size or header field: flip one byte inside the central directory or a local header
    if data:
        at = seed % len(data)
        data[at] ^= 0xFF
    extract_or_refuse(bytes(data), chosen)
