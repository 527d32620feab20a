"""A real registry repository served over loopback HTTP, for the trust and sync tests."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vehicle_host import releases
from vehicle_host.trust import keys, roles
from vehicle_host.trust.repository import RegistryRepository


def make_bundle(path: Path, app_id: str, version: str, body: str = "App({})") -> Path:
    app_json = {"pages": ["pages/index/index"], "vehicle": {"id": app_id, "name": "Test", "version": version}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.json", json.dumps(app_json))
        zf.writestr("app.js", body)
        zf.writestr("pages/index/index.wxml", f"<view>{app_id} {version}</view>")
        zf.writestr("pages/index/index.js", "Page({})")
        # some incompressible bulk so downloads span several chunks
        zf.writestr("data.bin", os.urandom(300_000), compress_type=zipfile.ZIP_STORED)
    return path


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range support; ``server.cut`` makes one path stop half-way."""

    server: StaticServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        self.server.requests.append((self.path, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        m = re.match(r"^bytes=(\d+)-$", self.headers.get("Range") or "")
        if m and int(m.group(1)) < len(data):
            start = int(m.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.cut and self.server.cut in self.path:
            self.server.cut = ""
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class StaticServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cut = ""
        self.requests: list[tuple[str, str | None]] = []
        super().__init__(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root)))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@dataclass
class Registry:
    base: Path
    repo: RegistryRepository
    server: StaticServer | None
    partner_signers: dict[str, Any] = field(default_factory=dict)
    pins: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def add_partner(self, partner: str, namespace: str) -> None:
        key = self.base / "partners" / f"{partner}.pem"
        keys.generate_key(key)
        self.partner_signers[partner] = keys.load_signer(key)
        self.repo.add_partner(partner, namespace, json.loads(key.with_suffix(".pub.json").read_text()))

    def role_file(self, partner: str) -> Path:
        return self.base / "partners" / f"{partner}.json"

    def publish(self, partner: str, app_id: str, version: str, body: str = "App({})") -> Path:
        """Pack, sign, upload and store a bundle (not yet in releases.json)."""
        bundle = make_bundle(self.base / "out" / f"{app_id}-{version}.vhb", app_id, version, body)
        roles.sign_bundle(self.role_file(partner), bundle, self.partner_signers[partner], partner)
        self.repo.publish_partner_role(partner, self.role_file(partner).read_bytes())
        self.repo.add_bundle(releases.target_path(app_id, version), bundle)
        return bundle

    def release(
        self, app_id: str, version: str, rollout: tuple[str, float] | None = None, urgent: bool = False
    ) -> None:
        stable = {"version": version, "target": releases.target_path(app_id, version), "urgent": urgent}
        entry: dict[str, Any] = {"stable": stable}
        if rollout is not None:
            entry["rollout"] = {
                "version": rollout[0],
                "target": releases.target_path(app_id, rollout[0]),
                "percent": rollout[1],
            }
        self.pins[app_id] = entry
        self.repo.set_releases({"format": releases.FORMAT, "apps": dict(self.pins)})

    def blob(self, app_id: str, version: str) -> Path:
        """The served file of a published bundle."""
        (found,) = (self.base / "repo" / "targets" / "apps" / app_id / version).glob("*.vhb")
        return found

    def copy_to(self, dest: Path) -> Path:
        shutil.copytree(self.base / "repo", dest)
        return dest


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    repo = RegistryRepository.init(tmp_path / "repo", tmp_path / "keys")
    server = StaticServer(tmp_path / "repo")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Registry(tmp_path, repo, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
