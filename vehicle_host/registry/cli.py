"""``vehicle-host registry``: run the registry, publish bundles, review, release.

Server side (on the registry's data directory): ``init``, ``serve``, ``refresh``.
Clients of a running registry (``--url``, ``--token`` or ``$VEHICLE_HOST_REGISTRY_URL`` /
``$VEHICLE_HOST_REGISTRY_TOKEN``; ``--token-file DATA/admin.token`` works too): ``partner``,
``publish`` (partner token), ``review``, ``release``, ``rollout``, ``widen``, ``rollback``,
``experiment``, ``audit`` (admin token).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vehicle_host.errors import VehicleHostError
from vehicle_host.httpjson import run_until_stopped
from vehicle_host.registry.http import DEFAULT_PORT, RegistryServer, refresh_loop
from vehicle_host.registry.rollout import RolloutPolicy
from vehicle_host.registry.service import Registry
from vehicle_host.trust import keys, roles

TIMEOUT = 30.0
MAX_RESPONSE = 8 * 1024 * 1024
REFRESH_EVERY = 6 * 3600.0


class CliError(VehicleHostError):
    """A command failed; the message says what to do."""


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vehicle-host registry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def data(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, type=Path, help="the registry's data directory")

    def client(p: argparse.ArgumentParser) -> None:
        default_url = os.environ.get("VEHICLE_HOST_REGISTRY_URL", f"http://127.0.0.1:{DEFAULT_PORT}")
        p.add_argument("--url", default=default_url, help=f"registry URL (default {default_url})")
        p.add_argument("--token", default=os.environ.get("VEHICLE_HOST_REGISTRY_TOKEN"), help="bearer token")
        p.add_argument(
            "--token-file", type=Path, help="read the token from this file (e.g. DATA/admin.token)"
        )

    data(sub.add_parser("init", help="create a registry: TUF keys and repository, database, admin token"))
    serve = sub.add_parser("serve", help="run the registry's HTTP server")
    data(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    serve.add_argument("--threshold", type=float, default=0.02, help="rollback above this failure rate")
    serve.add_argument("--min-launches", type=int, default=20, help="launches per step before deciding")
    serve.add_argument("--no-auto", action="store_true", help="never widen or roll back automatically")
    data(sub.add_parser("refresh", help="re-sign the timestamp (run daily, e.g. from a timer)"))

    partner = sub.add_parser("partner", help="onboard and list partners (admin)")
    psub = partner.add_subparsers(dest="partner_command", required=True)
    add = psub.add_parser("add", help="onboard a partner with its key and ceilings; prints its token")
    add.add_argument("id")
    add.add_argument("--namespace", required=True, help="app id prefix, e.g. com.acme (apps com.acme.*)")
    add.add_argument("--pubkey", required=True, type=Path, help="the partner's .pub.json key file")
    add.add_argument("--permissions", default="", help="comma-separated permission ceiling")
    add.add_argument("--domains", default="", help="comma-separated network domain ceiling (*.x allowed)")
    client(add)
    client(psub.add_parser("list", help="list partners"))

    publish = sub.add_parser("publish", help="sign a bundle into your role and submit it for review")
    publish.add_argument("bundle", type=Path)
    publish.add_argument("--partner", required=True, help="your partner id")
    publish.add_argument(
        "--key", required=True, type=Path, help="your private key (PEM; .pub.json beside it)"
    )
    client(publish)

    review = sub.add_parser("review", help="the review queue (admin)")
    rsub = review.add_subparsers(dest="review_command", required=True)
    rlist = rsub.add_parser("list", help="list submissions")
    rlist.add_argument("--status", default="pending", choices=["pending", "approved", "rejected", "all"])
    client(rlist)
    approve = rsub.add_parser("approve", help="approve a submission (its checks must pass)")
    approve.add_argument("id", type=int)
    approve.add_argument("--note", default="")
    client(approve)
    reject = rsub.add_parser("reject", help="reject a submission with a reason the partner sees")
    reject.add_argument("id", type=int)
    reject.add_argument("--reason", required=True)
    client(reject)

    release = sub.add_parser("release", help="make a version stable for every vehicle (admin)")
    release.add_argument("app_id")
    release.add_argument("version")
    release.add_argument("--urgent", action="store_true", help="head units restart the app at once")
    client(release)
    rollout = sub.add_parser("rollout", help="gray-release a version to a share of the fleet (admin)")
    rollout.add_argument("app_id")
    rollout.add_argument("version", nargs="?")
    rollout.add_argument("--percent", type=float, help="share of vehicles (default 5)")
    rollout.add_argument("--urgent", action="store_true")
    rollout.add_argument("--stop", action="store_true", help="remove the rollout (stable stays)")
    client(rollout)
    widen = sub.add_parser("widen", help="widen the rollout to the next step (5, 25, 50, 100)")
    widen.add_argument("app_id")
    widen.add_argument("--percent", type=float)
    client(widen)
    rollback = sub.add_parser("rollback", help="stable := the previous released version, at once")
    rollback.add_argument("app_id")
    rollback.add_argument("--version", help="roll back to this released version instead")
    client(rollback)
    experiment = sub.add_parser("experiment", help="start or stop an A/B experiment")
    experiment.add_argument("app_id")
    experiment.add_argument("--name", default="ab")
    experiment.add_argument("--a", help="version A")
    experiment.add_argument("--b", help="version B")
    experiment.add_argument("--split", type=float, default=50.0, help="percent of vehicles on A")
    experiment.add_argument("--stop", action="store_true")
    client(experiment)
    audit = sub.add_parser("audit", help="the audit log")
    audit.add_argument("--app")
    audit.add_argument("--limit", type=int, default=50)
    client(audit)
    return parser


def _token(args: argparse.Namespace) -> str:
    if args.token_file is not None:
        try:
            return str(args.token_file.read_text().strip())
        except OSError as exc:
            raise CliError(f"cannot read {args.token_file}: {exc.strerror}") from None
    if not args.token:
        raise CliError("pass --token, --token-file or set VEHICLE_HOST_REGISTRY_TOKEN")
    return str(args.token)


def call(url: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    """One request to the registry; returns (status, body); raises CliError when unreachable."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)  # noqa: S310
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return int(response.status), response.read(MAX_RESPONSE)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(MAX_RESPONSE)
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot reach the registry at {url}: {exc}; is 'registry serve' running?") from None


def _json(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    status, raw = call(args.url, _token(args), method, path, body)
    try:
        doc = json.loads(raw)
    except ValueError:
        raise CliError(f"the registry answered {status} with a non-JSON body") from None
    if status >= 400:
        error = doc.get("error", {}) if isinstance(doc, dict) else {}
        raise CliError(
            f"registry refused ({status} {error.get('code', '')}): {error.get('message', raw[:200])}"
        )
    return doc


def _print(doc: Any) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True))


def _publish(args: argparse.Namespace) -> int:
    token = _token(args)
    signer = keys.load_signer(args.key)
    status, raw = call(args.url, token, "GET", f"/api/partners/{args.partner}/role")
    if status not in (200, 404):
        raise CliError(f"cannot fetch the published role ({status}): {raw[:300].decode(errors='replace')}")
    with tempfile.TemporaryDirectory(prefix="vh-publish-") as tmp:
        role_file = Path(tmp) / f"{args.partner}.json"
        if status == 200:
            role_file.write_bytes(raw)
        target = roles.sign_bundle(role_file, args.bundle, signer, args.partner)
        role_text = role_file.read_text()
    try:
        bundle = args.bundle.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.bundle}: {exc.strerror}") from None
    body = {"bundle": base64.b64encode(bundle).decode(), "role": role_text}
    sub = _json(args, "POST", "/api/submissions", body)
    print(f"submitted {target.path} as submission {sub['id']} ({sub['status']})")
    for check in sub["checks"]:
        print(f"  {'ok  ' if check['ok'] else 'FAIL'} {check['name']}: {check['message']}")
    return 0 if sub["checks_passed"] else 1


def _serve(args: argparse.Namespace) -> int:
    policy = RolloutPolicy(threshold=args.threshold, min_launches=args.min_launches, auto=not args.no_auto)
    registry = Registry.open(args.data, policy=policy)
    try:
        server = RegistryServer((args.host, args.port), registry)
    except OSError as exc:
        registry.close()
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    registry.refresh()
    threading.Thread(
        target=refresh_loop, args=(server, REFRESH_EVERY), name="registry-refresh", daemon=True
    ).start()
    run_until_stopped(server)
    return 0


def _run(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "init":
        Registry.init(args.data)
        print(f"registry created in {args.data}; admin token in {args.data / 'admin.token'}")
        print(f"head units are provisioned with {args.data / 'repo' / 'metadata' / 'root.json'}")
        return 0
    if cmd == "serve":
        return _serve(args)
    if cmd == "refresh":
        registry = Registry.open(args.data)
        try:
            registry.refresh()
        finally:
            registry.close()
        print("timestamp re-signed")
        return 0
    if cmd == "publish":
        return _publish(args)
    if cmd == "partner" and args.partner_command == "add":
        body = {
            "id": args.id,
            "namespace": args.namespace,
            "public_key": keys.key_to_dict(keys.load_public_key(args.pubkey)),
            "permissions": _split(args.permissions),
            "domains": _split(args.domains),
        }
        _print(_json(args, "POST", "/api/partners", body))
    elif cmd == "partner":
        _print(_json(args, "GET", "/api/partners"))
    elif cmd == "review" and args.review_command == "list":
        query = "" if args.status == "all" else f"?status={args.status}"
        _print(_json(args, "GET", f"/api/submissions{query}"))
    elif cmd == "review" and args.review_command == "approve":
        _print(_json(args, "POST", f"/api/submissions/{args.id}/approve", {"note": args.note}))
    elif cmd == "review":
        _print(_json(args, "POST", f"/api/submissions/{args.id}/reject", {"reason": args.reason}))
    elif cmd == "release":
        _print(
            _json(
                args,
                "POST",
                f"/api/apps/{args.app_id}/release",
                {"version": args.version, "urgent": args.urgent},
            )
        )
    elif cmd == "rollout":
        if not args.stop and not args.version:
            raise CliError("give the version to roll out, or --stop")
        body = {"stop": True} if args.stop else {"version": args.version, "urgent": args.urgent}
        if args.percent is not None:
            body["percent"] = args.percent
        _print(_json(args, "POST", f"/api/apps/{args.app_id}/rollout", body))
    elif cmd == "widen":
        body = {} if args.percent is None else {"percent": args.percent}
        _print(_json(args, "POST", f"/api/apps/{args.app_id}/widen", body))
    elif cmd == "rollback":
        body = {} if args.version is None else {"version": args.version}
        _print(_json(args, "POST", f"/api/apps/{args.app_id}/rollback", body))
    elif cmd == "experiment":
        if args.stop:
            body = {"stop": True}
        elif args.a and args.b:
            body = {"name": args.name, "a": args.a, "b": args.b, "split": args.split}
        else:
            raise CliError("give --a and --b versions, or --stop")
        _print(_json(args, "POST", f"/api/apps/{args.app_id}/experiment", body))
    elif cmd == "audit":
        query = f"?limit={args.limit}" + (f"&app_id={args.app}" if args.app else "")
        _print(_json(args, "GET", f"/api/audit{query}"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (VehicleHostError, OSError) as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 1
