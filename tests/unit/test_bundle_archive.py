"""The .vhb bundle file: deterministic packing, compile errors at pack time, and every refusal of
a hostile archive (nothing written outside ``dest``, ``dest`` untouched on failure)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest

from vehicle_host.bundles import archive
from vehicle_host.bundles.archive import Limits
from vehicle_host.errors import BundleError, TemplateError, VehicleHostError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vehicle-info"
APP_JSON = (EXAMPLE / "app.json").read_bytes()


def tree_digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def make_zip(
    path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]], *, with_manifest: bool = True
) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests write
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            if with_manifest:
                zf.writestr("app.json", APP_JSON)
            for name, data in entries:
                zf.writestr(name, data)
    return path


def special(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty folder holding only the extraction target; tests check nothing else appears."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def refuse(bundle: Path, work: Path, match: str, limits: Limits | None = None) -> None:
    dest = work / "dest"
    with pytest.raises(BundleError, match=match):
        archive.extract(bundle, dest, limits or Limits())
    assert list(work.iterdir()) == []  # no dest, no leftover temporary folder
    assert not (work.parent / "x").exists()


# -- pack ------------------------------------------------------------------------------------------


def test_pack_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    first = archive.pack(EXAMPLE, tmp_path / "a.vhb")
    copy = tmp_path / "copy"
    shutil.copytree(EXAMPLE, copy)
    for path in copy.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
        if path.is_file():
            path.chmod(0o600)
    second = archive.pack(copy, tmp_path / "b.vhb")
    assert first.sha256 == second.sha256 == archive.sha256_file(tmp_path / "a.vhb")
    assert (tmp_path / "a.vhb").read_bytes() == (tmp_path / "b.vhb").read_bytes()
    assert first.size == (tmp_path / "a.vhb").stat().st_size
    assert first.files == tuple(sorted(tree_digests(EXAMPLE)))
    assert first.manifest.app_id == "org.vehiclehost.samples.vehicleinfo"

    info = archive.inspect(tmp_path / "a.vhb")
    assert (info.sha256, info.size, info.files) == (first.sha256, first.size, first.files)
    manifest = archive.extract(tmp_path / "a.vhb", tmp_path / "out")
    assert manifest == first.manifest
    assert tree_digests(tmp_path / "out") == tree_digests(EXAMPLE)
    with zipfile.ZipFile(tmp_path / "a.vhb") as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {stat.S_IMODE(i.external_attr >> 16) for i in zf.infolist()} == {0o644}


def test_pack_leaves_out_hidden_files_and_bundles(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app)
    (app / ".git").mkdir()
    (app / ".git" / "config").write_text("x")
    (app / ".DS_Store").write_bytes(b"x")
    (app / "old.vhb").write_bytes(b"x")
    result = archive.pack(app, app / "new.vhb")
    assert result.files == tuple(sorted(tree_digests(EXAMPLE)))


def test_pack_reports_a_broken_template_with_its_position(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app)
    (app / "pages" / "index" / "index.wxml").write_text("<view>\n  <text>{{ a + }}</text>\n</view>\n")
    with pytest.raises(TemplateError) as caught:
        archive.pack(app, tmp_path / "x.vhb")
    assert (caught.value.filename, caught.value.line) == ("pages/index/index.wxml", 2)
    assert str(caught.value).startswith("pages/index/index.wxml:2:")
    assert not (tmp_path / "x.vhb").exists()


def test_pack_refuses_a_missing_page_script_a_symlink_and_a_bad_name(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app)
    (app / "pages" / "index" / "index.js").unlink()
    with pytest.raises(BundleError, match=r"index\.js"):
        archive.pack(app, tmp_path / "x.vhb")

    shutil.rmtree(app)
    shutil.copytree(EXAMPLE, app)
    (app / "secret").symlink_to("/etc/hostname")
    with pytest.raises(BundleError, match="link"):
        archive.pack(app, tmp_path / "x.vhb")

    (app / "secret").unlink()
    (app / "bad name.js").write_text("")
    with pytest.raises(BundleError, match="bad name"):
        archive.pack(app, tmp_path / "x.vhb")
    assert not (tmp_path / "x.vhb").exists()


def test_pack_refuses_an_archive_over_the_package_limit(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(EXAMPLE, app)
    (app / "noise.bin").write_bytes(os.urandom(4096))
    with pytest.raises(BundleError, match="per-package limit"):
        archive.pack(app, tmp_path / "x.vhb", Limits(max_archive_bytes=4000))
    assert not (tmp_path / "x.vhb").exists()


# -- refusals --------------------------------------------------------------------------------------


def test_zip_slip_is_refused(tmp_path: Path, work: Path) -> None:
    refuse(make_zip(tmp_path / "b.vhb", [("../x", b"owned")]), work, r"'\.\./x'.*'\.\.'")
    refuse(make_zip(tmp_path / "b.vhb", [("pages/../../x", b"owned")]), work, r"'\.\.'")


def test_absolute_paths_and_backslashes_are_refused(tmp_path: Path, work: Path) -> None:
    refuse(make_zip(tmp_path / "b.vhb", [("/etc/x", b"owned")]), work, "'/etc/x': absolute path")
    refuse(make_zip(tmp_path / "b.vhb", [("C:/x", b"owned")]), work, "absolute path")
    refuse(make_zip(tmp_path / "b.vhb", [("..\\x", b"owned")]), work, "backslash")
    assert not Path("/etc/x").exists()


def test_bad_components_and_depth_are_refused(tmp_path: Path, work: Path) -> None:
    refuse(make_zip(tmp_path / "b.vhb", [(".hidden", b"")]), work, "'.hidden' must start")
    refuse(make_zip(tmp_path / "b.vhb", [("a//b", b"")]), work, "component ''")
    refuse(make_zip(tmp_path / "b.vhb", [("a b", b"")]), work, "component 'a b'")
    deep = "/".join(["d"] * 17) + "/f.js"
    refuse(make_zip(tmp_path / "b.vhb", [(deep, b"")]), work, "deeper than 16")


def test_symlink_and_device_entries_are_refused(tmp_path: Path, work: Path) -> None:
    link = special("pages/link", stat.S_IFLNK | 0o777)
    refuse(make_zip(tmp_path / "b.vhb", [(link, b"/etc/passwd")]), work, "'pages/link': is a symbolic link")
    device = special("dev", stat.S_IFCHR | 0o666)
    refuse(make_zip(tmp_path / "b.vhb", [(device, b"")]), work, "device")
    fifo = special("fifo", stat.S_IFIFO | 0o644)
    refuse(make_zip(tmp_path / "b.vhb", [(fifo, b"")]), work, "device, FIFO")


def test_duplicates_are_refused_ignoring_case(tmp_path: Path, work: Path) -> None:
    refuse(make_zip(tmp_path / "b.vhb", [("a.js", b"1"), ("a.js", b"2")]), work, "'a.js': duplicates 'a.js'")
    refuse(make_zip(tmp_path / "b.vhb", [("App.JSON", b"{}")]), work, "'App.JSON': duplicates 'app.json'")
    refuse(make_zip(tmp_path / "b.vhb", [("lib", b"1"), ("LIB/x.js", b"2")]), work, "is a file, not a folder")
    refuse(make_zip(tmp_path / "b.vhb", [("lib/x.js", b"1"), ("lib", b"2")]), work, "duplicates 'lib/x.js'")


def test_too_many_files_are_refused(tmp_path: Path, work: Path) -> None:
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [(f"f{i}.js", b"") for i in range(10)]
    bundle = make_zip(tmp_path / "b.vhb", entries)
    refuse(bundle, work, "11 entries; the limit is 10 files", Limits(max_files=10))
    assert archive.extract(bundle, work / "dest", Limits(max_files=11)).version == "1.0.0"


def test_an_oversized_archive_is_refused_before_it_is_read(tmp_path: Path, work: Path) -> None:
    bundle = make_zip(tmp_path / "b.vhb", [("noise.bin", os.urandom(8192))])
    refuse(bundle, work, "per-package limit", Limits(max_archive_bytes=8000))
    with pytest.raises(BundleError, match="per-package limit"):
        archive.inspect(bundle, Limits(max_archive_bytes=8000))


def test_the_uncompressed_total_is_limited(tmp_path: Path, work: Path) -> None:
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [(f"f{i}.bin", os.urandom(1000)) for i in range(5)]
    bundle = make_zip(tmp_path / "b.vhb", entries)
    refuse(bundle, work, "per-app limit", Limits(max_total_bytes=4000))


def test_a_compression_bomb_is_refused(tmp_path: Path, work: Path) -> None:
    bundle = make_zip(tmp_path / "b.vhb", [("bomb.bin", bytes(10 * 1024 * 1024))])
    assert bundle.stat().st_size < 20_000
    refuse(bundle, work, "'bomb.bin': unpacks to more than 100 times")
    with pytest.raises(BundleError, match="zip bomb"):
        archive.inspect(bundle)


def _shrink_declared_size(bundle: Path, name: bytes, declared: int) -> None:
    """Rewrite the central directory's uncompressed size of ``name`` (a lying header)."""
    data = bytearray(bundle.read_bytes())
    at = 0
    while True:
        at = data.find(b"PK\x01\x02", at)
        assert at >= 0, "entry not found"
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]) == name:
            struct.pack_into("<I", data, at + 24, declared)
            break
        at += 4
    bundle.write_bytes(bytes(data))


def test_sizes_are_counted_while_streaming_not_taken_from_headers(tmp_path: Path, work: Path) -> None:
    # a header that declares 1 KiB for 10 MiB of zeros passes the header checks; the bytes do not
    bundle = make_zip(tmp_path / "b.vhb", [("a.js", b"ok"), ("bomb.bin", bytes(10 * 1024 * 1024))])
    _shrink_declared_size(bundle, b"bomb.bin", 1024)
    with zipfile.ZipFile(bundle) as zf:
        assert zf.getinfo("bomb.bin").file_size == 1024
    refuse(bundle, work, "'bomb.bin': is damaged")


def test_streamed_bytes_are_limited_even_when_headers_agree(tmp_path: Path, work: Path) -> None:
    # two entries of 40 KiB each (within the grace for the ratio); the running total trips first
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [("a.bin", bytes(40_000)), ("b.bin", bytes(40_000))]
    bundle = make_zip(tmp_path / "b.vhb", entries)
    with pytest.raises(BundleError, match="per-app limit"):
        archive.extract_bytes(bundle.read_bytes(), work / "dest", Limits(max_total_bytes=70_000))
    assert list(work.iterdir()) == []


def test_damaged_data_missing_or_bad_manifest_and_non_zips_are_refused(tmp_path: Path, work: Path) -> None:
    bundle = make_zip(tmp_path / "b.vhb", [("a.js", os.urandom(3000))])
    data = bytearray(bundle.read_bytes())
    data[data.find(b"PK\x03\x04", 4) + 30 + len("a.js") + 500] ^= 0xFF  # inside a.js's data
    bundle.write_bytes(bytes(data))
    refuse(bundle, work, "damaged")
    refuse(make_zip(tmp_path / "b.vhb", [("a.js", b"")], with_manifest=False), work, "no app.json")
    bad = tmp_path / "bad.vhb"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("app.json", b'{"pages": []}')
    refuse(bad, work, "pages")
    (tmp_path / "text.vhb").write_bytes(b"not a zip at all")
    refuse(tmp_path / "text.vhb", work, "not a bundle")
    refuse(tmp_path / "missing.vhb", work, "cannot read the bundle")


def test_other_compression_methods_and_encryption_are_refused(tmp_path: Path, work: Path) -> None:
    bundle = tmp_path / "b.vhb"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("app.json", APP_JSON)
        zf.writestr("a.js", b"x" * 100, compress_type=zipfile.ZIP_BZIP2)
    refuse(bundle, work, "method 12")
    data = bytearray(make_zip(bundle, [("a.js", b"x")]).read_bytes())
    at = data.rfind(b"PK\x01\x02")
    struct.pack_into("<H", data, at + 8, struct.unpack_from("<H", data, at + 8)[0] | 1)
    bundle.write_bytes(bytes(data))
    refuse(bundle, work, "encrypted")


def test_a_failure_midway_leaves_dest_and_its_folder_untouched(tmp_path: Path, work: Path) -> None:
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [(f"f{i}.js", b"x") for i in range(20)]
    entries.append(("z.bin", os.urandom(5000)))
    bundle = make_zip(tmp_path / "b.vhb", entries)
    with pytest.raises(BundleError, match="per-app limit"):
        archive.extract_bytes(bundle.read_bytes(), work / "dest", Limits(max_total_bytes=4500))
    assert list(work.iterdir()) == []

    good = archive.pack(EXAMPLE, tmp_path / "good.vhb")
    dest = work / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(VehicleHostError, match="already exists"):
        archive.extract(tmp_path / "good.vhb", dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in work.iterdir()) == ["dest"]
    (dest / "keep.txt").unlink()
    assert archive.extract(tmp_path / "good.vhb", dest) == good.manifest  # an empty folder is fine


def test_directory_entries_are_accepted(tmp_path: Path, work: Path) -> None:
    bundle = tmp_path / "b.vhb"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("app.json", APP_JSON)
        zf.writestr(special("pages/", stat.S_IFDIR | 0o755), b"")
        zf.writestr("pages/a.js", b"x")
    archive.extract(bundle, work / "dest")
    assert (work / "dest" / "pages" / "a.js").read_bytes() == b"x"
    assert archive.inspect(bundle).files == ("app.json", "pages/a.js")


def test_progress_reports_bytes_written(tmp_path: Path, work: Path) -> None:
    archive.pack(EXAMPLE, tmp_path / "a.vhb")
    seen: list[tuple[int, int]] = []
    archive.extract(
        tmp_path / "a.vhb", work / "dest", progress=lambda done, total: seen.append((done, total))
    )
    total = sum(p.stat().st_size for p in EXAMPLE.rglob("*") if p.is_file())
    assert seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_ratio_grace_lets_small_regular_files_through(tmp_path: Path, work: Path) -> None:
    data = b"a" * 60_000
    assert len(data) > 100 * len(zlib.compress(data, 9))
    bundle = make_zip(tmp_path / "b.vhb", [("blank.txt", data)])
    archive.extract(bundle, work / "dest")
    assert (work / "dest" / "blank.txt").read_bytes() == data
