"""Reading files of one installed bundle: paths resolved inside it, sizes bounded, errors clear."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from vehicle_host.errors import BundleError, TemplateError

MAX_FILE_BYTES = 512 * 1024
_BAD_PATH = re.compile(r"[\x00-\x1f\\:*?\"<>|]")


def resolve(base: str, src: str, *, ext: str = "") -> str:
    """The bundle path of ``src`` written in file ``base`` (``/x`` is from the bundle root, anything else
    relative to ``base``'s folder); ``ext`` is added when missing.  Raises ValueError when the path is
    malformed or leaves the bundle."""
    src = src.strip()
    if not src or len(src) > 512 or _BAD_PATH.search(src) or "://" in src:
        raise ValueError(f"{src!r} is not a path inside the bundle")
    joined = src[1:] if src.startswith("/") else posixpath.join(posixpath.dirname(base), src)
    path = posixpath.normpath(joined)
    if path in (".", "") or path == ".." or path.startswith("../") or path.startswith("/"):
        raise ValueError(f"{src!r} points outside the bundle")
    if ext and not path.endswith(ext):
        path += ext
    return path


class BundleFiles:
    """Text and bytes of files inside ``root``; symlinks that lead out of it are refused."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = root.resolve()
        self._text: dict[str, str] = {}

    def _path(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self._real_root):
            raise BundleError(f"{relative}: path leaves the bundle")
        return path

    def exists(self, relative: str) -> bool:
        try:
            return self._path(relative).is_file()
        except (BundleError, OSError):
            return False

    def read_bytes(self, relative: str, limit: int = MAX_FILE_BYTES) -> bytes:
        path = self._path(relative)
        try:
            if path.stat().st_size > limit:
                raise BundleError(f"{relative}: larger than {limit} bytes")
            return path.read_bytes()
        except FileNotFoundError:
            raise BundleError(f"{relative}: missing from the bundle") from None
        except OSError as exc:
            raise BundleError(f"{relative}: cannot be read: {exc.strerror}") from None

    def read_text(self, relative: str, limit: int = MAX_FILE_BYTES) -> str:
        cached = self._text.get(relative)
        if cached is not None:
            return cached
        try:
            text = self.read_bytes(relative, limit).decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError(f"{relative}: is not UTF-8 text") from None
        self._text[relative] = text
        return text

    def read_at(self, base: str, src: str, line: int, column: int, *, ext: str) -> tuple[str, str]:
        """Resolve ``src`` written at ``base:line:column`` and read it; errors point at the reference."""
        try:
            path = resolve(base, src, ext=ext)
        except ValueError as exc:
            raise TemplateError(str(exc), filename=base, line=line, column=column) from None
        try:
            return path, self.read_text(path)
        except BundleError as exc:
            raise TemplateError(str(exc), filename=base, line=line, column=column) from None
