"""Head-unit side: verified TUF metadata and bundle downloads from the registry or a USB snapshot.

``TrustedRepo`` wraps python-tuf's ``ngclient.Updater``: every metadata file is checked for
signatures by the provisioned root's keys, expiry, version rollback and delegation before any
target is trusted. ``source`` is an HTTP(S) base URL serving ``metadata/`` and ``targets/`` (the
registry's ``/repo``) or a local directory with the same layout (a USB snapshot), read through a
``FetcherInterface`` that never leaves that directory.

Any failure raises ``TrustError`` (``FetchError`` when the repository was unreachable or the
download cut off, which a later retry may fix); nothing untrusted is ever returned.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib import parse

import urllib3
from tuf.api import exceptions as tuf_errors
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.updater import Updater

from vehicle_host import releases
from vehicle_host.bundles import archive
from vehicle_host.errors import VehicleHostError
from vehicle_host.trust.errors import FetchError, TrustError
from vehicle_host.trust.repository import RELEASES_TARGET
from vehicle_host.trust.tufapi import TargetFile

Progress = Callable[[int, int], None]
LOCAL_SCHEME = "local:/"
MAX_LOCAL_FILE = 64 * 1024 * 1024
MAX_RELEASES = 4 * 1024 * 1024
CHUNK = 64 * 1024
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
BUNDLE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}$")


class LocalFetcher(FetcherInterface):
    """Serves ``local:/metadata/...`` and ``local:/targets/...`` from one directory, nothing else."""

    def __init__(self, root: Path, max_file: int = MAX_LOCAL_FILE) -> None:
        self.root = root.resolve()
        self.max_file = max_file

    def resolve(self, url: str) -> Path:
        if not url.startswith(LOCAL_SCHEME):
            raise tuf_errors.DownloadError(f"{url} is not inside the local repository")
        rel = parse.unquote(url[len(LOCAL_SCHEME) :])
        parts = rel.split("/")
        if (
            "\\" in rel
            or "\0" in rel
            or parts[0] not in ("metadata", "targets")
            or any(p in ("", ".", "..") for p in parts)
        ):
            raise tuf_errors.DownloadError(f"refusing path {rel!r} outside the repository layout")
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root):
            raise tuf_errors.DownloadError(f"refusing {rel!r}: it leads outside {self.root}")
        return path

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = self.resolve(url)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise tuf_errors.DownloadHTTPError(f"{url} not found", 404) from None
        except OSError as e:
            raise tuf_errors.DownloadError(f"cannot read {path}: {e.strerror}") from e
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > self.max_file:
            f.close()
            raise tuf_errors.DownloadError(f"{path} is not a regular file of at most {self.max_file} bytes")
        return self._chunks(f)

    @staticmethod
    def _chunks(f: Any) -> Iterator[bytes]:
        with f:
            while chunk := f.read(CHUNK):
                yield chunk


class TrustedRepo:
    """A verified view of one repository, anchored in the provisioned ``root.json``."""

    def __init__(self, metadata_dir: Path, trust_root: bytes | Path, source: str | Path) -> None:
        self.metadata_dir = metadata_dir
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self._bootstrap = trust_root.read_bytes() if isinstance(trust_root, Path) else trust_root
        self._local: LocalFetcher | None = None
        self._http = urllib3.PoolManager(retries=False)  # bundles only; metadata uses tuf's fetcher
        if isinstance(source, str) and source.startswith(("http://", "https://")):
            base = source.rstrip("/")
            self._metadata_url, self._targets_url = f"{base}/metadata/", f"{base}/targets/"
        else:
            self._local = LocalFetcher(Path(source))
            self._metadata_url, self._targets_url = f"{LOCAL_SCHEME}metadata/", f"{LOCAL_SCHEME}targets/"
        self._updater: Updater | None = None

    def _new_updater(self) -> Updater:
        # After the first run the cached root (possibly rotated since provisioning) is the anchor.
        cached = self.metadata_dir / "root.json"
        with _mapped("loading the trusted root"):
            return Updater(
                metadata_dir=str(self.metadata_dir),
                metadata_base_url=self._metadata_url,
                target_base_url=self._targets_url,
                fetcher=self._local,
                config=UpdaterConfig(),
                bootstrap=None if cached.exists() else self._bootstrap,
            )

    def refresh(self) -> None:
        """Fetch and verify the latest top-level metadata (root, timestamp, snapshot, targets)."""
        updater = self._new_updater()
        with _mapped("refreshing repository metadata"):
            updater.refresh()
        self._updater = updater

    def _current(self) -> Updater:
        if self._updater is None:
            self.refresh()
        assert self._updater is not None
        return self._updater

    def target_info(self, target_path: str) -> TargetFile:
        """The signed length and hashes of ``target_path``; TrustError when no trusted role lists it."""
        updater = self._current()
        with _mapped(f"looking up {target_path}"):
            info = updater.get_targetinfo(target_path)
        if info is None:
            raise TrustError(
                f"{target_path} is not listed by the role delegated for it (unknown, or signed by a "
                "partner that does not own that app); nothing was installed"
            )
        if "sha256" not in info.hashes:
            raise TrustError(f"{target_path} is signed without a sha256 hash")
        return info

    def releases(self) -> dict[str, dict[str, Any]]:
        """The verified and checked ``apps`` mapping of ``releases.json``."""
        info = self.target_info(RELEASES_TARGET)
        if info.length > MAX_RELEASES:
            raise TrustError(f"releases.json is {info.length} bytes, more than {MAX_RELEASES}")
        with tempfile.TemporaryDirectory(dir=self.metadata_dir) as tmp:
            path = self._download(info, Path(tmp), None)
            data = path.read_bytes()
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise TrustError(f"releases.json is signed but not JSON: {e}") from e
        try:
            return releases.check(doc)
        except releases.ReleaseError as e:
            raise TrustError(f"signed {e}") from e

    def fetch_bundle(self, target_path: str, dest_dir: Path, progress: Progress | None = None) -> Path:
        """Download ``target_path`` into ``dest_dir`` and verify it against its signed length/sha256.

        Over HTTP an interrupted download is resumed from ``<name>.part`` with a Range request.
        A file already there that verifies is returned without downloading. The bundle's app.json
        must name the app and version of its target path: a partner key signing another app's code
        under its own app's path is refused (the file is deleted) before anything is extracted.
        """
        info = self.target_info(target_path)
        path = self._download(info, dest_dir, progress)
        try:
            _check_identity(target_path, path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def _download(self, info: TargetFile, dest_dir: Path, progress: Progress | None) -> Path:
        name = info.path.rpartition("/")[2]
        if not BUNDLE_NAME.match(name):
            raise TrustError(f"refusing target file name {name!r}")
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / name
        if dest.exists() and _verifies(info, dest):
            if progress:
                progress(info.length, info.length)
            return dest
        part = dest_dir / f"{name}.part"
        url = self._targets_url + info.get_prefixed_paths()[0]
        if self._local is not None:
            part.unlink(missing_ok=True)
            with _mapped(f"reading {info.path}"):
                self._copy(self._local.fetch(url), part, info, 0, progress)
        else:
            self._http_download(url, part, info, progress)
        try:
            with part.open("rb") as f:
                info.verify_length_and_hashes(f)
        except tuf_errors.LengthOrHashMismatchError as e:
            part.unlink(missing_ok=True)
            raise TrustError(
                f"hash mismatch: {info.path} does not match its signed length and sha256 (tampered or "
                f"corrupt: {e}); it was deleted and nothing was installed"
            ) from e
        os.replace(part, dest)
        return dest

    def _http_download(self, url: str, part: Path, info: TargetFile, progress: Progress | None) -> None:
        have = part.stat().st_size if part.exists() else 0
        if have >= info.length:
            part.unlink()
            have = 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            resp = self._http.request(
                "GET",
                url,
                headers=headers,
                preload_content=False,
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            )
        except urllib3.exceptions.HTTPError as e:
            raise FetchError(f"cannot reach the repository for {info.path}: {e}") from e
        try:
            if resp.status == 206 and have:
                start = _content_range_start(resp.headers.get("Content-Range", ""))
                if start != have:
                    raise FetchError(f"server resumed {info.path} at byte {start}, not {have}; retry")
            elif resp.status == 200:
                have = 0
            elif resp.status == 404:
                raise FetchError(f"{info.path} is signed but missing from the repository (HTTP 404)")
            else:
                raise FetchError(f"repository answered HTTP {resp.status} for {info.path}")
            self._copy(resp.stream(CHUNK), part, info, have, progress)
        except urllib3.exceptions.HTTPError as e:
            got = part.stat().st_size if part.exists() else 0
            raise FetchError(
                f"download of {info.path} was cut off after {got} of {info.length} bytes ({e}); "
                "sync again to resume"
            ) from e
        finally:
            resp.release_conn()

    @staticmethod
    def _copy(
        chunks: Iterator[bytes], part: Path, info: TargetFile, have: int, progress: Progress | None
    ) -> None:
        too_long = False
        with part.open("ab" if have else "wb") as out:
            for chunk in chunks:
                have += len(chunk)
                if have > info.length:
                    too_long = True
                    break
                out.write(chunk)
                if progress:
                    progress(have, info.length)
            out.flush()
            os.fsync(out.fileno())
        if too_long:
            part.unlink(missing_ok=True)
            raise TrustError(f"{info.path} is longer than its signed {info.length} bytes; nothing installed")


def _check_identity(target_path: str, path: Path) -> None:
    """Refuse a verified bundle whose app.json is not the app and version its target path names."""
    parts = target_path.split("/")
    if len(parts) != 4 or parts[0] != "apps" or not releases.TARGET.match(target_path):
        return  # not a bundle target (e.g. releases.json)
    app_id, version = parts[1], parts[2]
    try:
        manifest = archive.inspect(path).manifest
    except VehicleHostError as e:
        raise TrustError(
            f"{target_path} is signed but not a usable bundle ({e}); nothing was installed"
        ) from e
    if (manifest.app_id, manifest.version) != (app_id, version):
        raise TrustError(
            f"{target_path} holds {manifest.app_id} {manifest.version}, not {app_id} {version}: signed "
            "under another app's path; it was deleted and nothing was installed"
        )


def _content_range_start(value: str) -> int:
    m = re.match(r"^bytes (\d+)-\d+/(\d+|\*)$", value.strip())
    return int(m.group(1)) if m else -1


def _verifies(info: TargetFile, path: Path) -> bool:
    try:
        with path.open("rb") as f:
            info.verify_length_and_hashes(f)
        return True
    except (OSError, tuf_errors.LengthOrHashMismatchError):
        return False


class _mapped:
    """Turn python-tuf exceptions into TrustError/FetchError saying what happened."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, TrustError):
            return
        mapped = describe(exc, self.doing)
        if mapped is not None:
            raise mapped from exc


def describe(exc: BaseException, doing: str) -> TrustError | None:
    """The TrustError for a python-tuf failure, or None when ``exc`` is not one."""
    e = exc
    tail = "; nothing was installed"
    if isinstance(e, tuf_errors.ExpiredMetadataError):
        return TrustError(
            f"expired metadata while {doing}: {e} (the registry has not re-signed it, the snapshot is "
            f"too old, or this unit's clock is wrong){tail}"
        )
    if isinstance(e, tuf_errors.UnsignedMetadataError):
        return TrustError(
            f"bad signature while {doing}: {e} — the metadata was altered or comes from a repository "
            f"this unit does not trust{tail}"
        )
    if isinstance(e, tuf_errors.BadVersionNumberError):
        return TrustError(
            f"rollback/replay refused while {doing}: {e} — the repository offered older metadata than "
            f"this unit already trusts{tail}"
        )
    if isinstance(e, tuf_errors.LengthOrHashMismatchError):
        return TrustError(f"hash mismatch while {doing}: {e} (tampered or corrupt){tail}")
    if isinstance(e, tuf_errors.DownloadLengthMismatchError):
        return TrustError(f"oversized file while {doing}: {e}{tail}")
    if isinstance(e, tuf_errors.DownloadHTTPError):
        return FetchError(f"repository answered HTTP {e.status_code} while {doing}: {e}")
    if isinstance(e, tuf_errors.DownloadError):
        cause = f" ({e.__cause__})" if e.__cause__ else ""
        return FetchError(f"cannot reach the repository while {doing}: {e}{cause}")
    if isinstance(e, tuf_errors.RepositoryError):
        return TrustError(f"repository metadata refused while {doing}: {e}{tail}")
    if isinstance(e, OSError):
        return TrustError(f"cannot use the local metadata directory while {doing}: {e}")
    return None
