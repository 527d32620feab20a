"""Shared pieces of the registry tests: a registry on a temp dir, app bundles, partner keys, HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import stat
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vehicle_host.bundles import archive
from vehicle_host.registry.http import RegistryServer, serve
from vehicle_host.registry.rollout import RolloutPolicy
from vehicle_host.registry.service import Registry
from vehicle_host.trust import keys, roles

GOOD_WXML = "<view class='box'>{{message}}</view>\n"
BAD_WXML = "<view>{{message</view>\n"


def write_app(
    root: Path,
    app_id: str,
    version: str,
    *,
    permissions: tuple[str, ...] = (),
    network: tuple[str, ...] = (),
    wxml: str = GOOD_WXML,
) -> Path:
    app = root / f"{app_id}-{version}"
    (app / "pages" / "index").mkdir(parents=True)
    manifest = {
        "pages": ["pages/index/index"],
        "window": {"navigationBarTitleText": "Test"},
        "vehicle": {
            "id": app_id,
            "name": "Test App",
            "version": version,
            "runtime": {"min": 1, "max": 1},
            "permissions": list(permissions),
            "network": list(network),
            "group": "partner",
        },
    }
    (app / "app.json").write_text(json.dumps(manifest))
    (app / "app.js").write_text("App({});\n")
    (app / "pages/index/index.js").write_text("Page({ data: { message: 'hi' } });\n")
    (app / "pages/index/index.wxml").write_text(wxml)
    return app


def zip_dir(app: Path, out: Path) -> Path:
    """A bundle written without pack's compile step (to carry a broken template)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in app.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(app).as_posix(), date_time=archive.EPOCH)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, path.read_bytes())
    return out


def make_bundle(root: Path, app_id: str, version: str, **kwargs: Any) -> Path:
    app = write_app(root, app_id, version, **kwargs)
    out = root / f"{app_id}-{version}.vhb"
    if kwargs.get("wxml", GOOD_WXML) == GOOD_WXML:
        archive.pack(app, out)
    else:
        zip_dir(app, out)
    return out


@dataclass
class Client:
    url: str

    def request(
        self,
        verb: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        parts = urllib.parse.urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        head = dict(headers or {})
        if token:
            head["Authorization"] = f"Bearer {token}"
        conn.request(verb, path, body=raw, headers=head)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        kind = response.getheader("Content-Type") or ""
        return response.status, (json.loads(data) if kind.startswith("application/json") and data else data)


@dataclass
class Partner:
    id: str
    key: Path
    token: str


@dataclass
class Setup:
    data: Path
    registry: Registry
    server: RegistryServer
    admin: str
    client: Client

    def add_partner(
        self, tmp: Path, partner_id: str, namespace: str, permissions: list[str], domains: list[str]
    ) -> Partner:
        key = tmp / "keys" / f"{partner_id}.pem"
        keys.generate_key(key)
        public = keys.key_to_dict(keys.load_public_key(key))
        body = {
            "id": partner_id,
            "namespace": namespace,
            "public_key": public,
            "permissions": permissions,
            "domains": domains,
        }
        status, doc = self.client.request("POST", "/api/partners", body, self.admin)
        assert status == 201, doc
        return Partner(partner_id, key, doc["token"])

    def publish(self, partner: Partner, bundle: Path, *, sign_as: Partner | None = None) -> tuple[int, Any]:
        """What ``registry publish`` does: sign into the published role, upload both."""
        signer = sign_as or partner
        status, raw = self.client.request("GET", f"/api/partners/{partner.id}/role", token=partner.token)
        assert status in (200, 404), raw
        role_file = bundle.with_suffix(f".{partner.id}.role.json")
        role_file.unlink(missing_ok=True)
        if status == 200:
            role_file.write_bytes(raw if isinstance(raw, bytes) else json.dumps(raw).encode())
        roles.sign_bundle(role_file, bundle, keys.load_signer(signer.key), partner.id)
        body = {"bundle": base64.b64encode(bundle.read_bytes()).decode(), "role": role_file.read_text()}
        return self.client.request("POST", "/api/submissions", body, partner.token)


def start(tmp: Path, policy: RolloutPolicy | None = None) -> Setup:
    data = tmp / "registry"
    admin = Registry.init(data)
    registry = Registry.open(data, policy=policy)
    server = serve(registry, "127.0.0.1", 0)
    return Setup(data, registry, server, admin, Client(server.url))


def stop(setup: Setup) -> None:
    setup.server.shutdown()
    setup.server.server_close()
