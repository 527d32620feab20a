"""``vehicle-host bundle new|pack|sign|verify|inspect|install``: make, sign and install ``.vhb`` bundles.

    vehicle-host bundle new trip-log                     a new app folder (the developer kit's template)
    vehicle-host bundle pack trip-log [-o FILE]          check, compile and zip it
    vehicle-host bundle inspect FILE [--json]            manifest, files, size, sha256
    vehicle-host bundle sign FILE --key KEY --role ROLE.json --partner ID
    vehicle-host bundle verify FILE --role ROLE.json --pubkey KEY.pub.json
    vehicle-host bundle install FILE --cache DIR         install and activate (dealers, tests)

Exit status: 0 done, 1 refused (bad bundle, bad signature, cache problem), 2 bad command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vehicle_host.errors import VehicleHostError

PROG = "vehicle-host bundle"


def _parser() -> argparse.ArgumentParser:
    from vehicle_host.devkit import scaffold

    parser = argparse.ArgumentParser(prog=PROG, description="make, sign and install mini-app bundles (.vhb)")
    sub = parser.add_subparsers(dest="command", required=True)
    scaffold.add_arguments(sub.add_parser("new", help="create a mini-app folder that runs at once"))

    pack = sub.add_parser("pack", help="check, compile and zip an app folder into a .vhb bundle")
    pack.add_argument("dir", help="the app folder (holding app.json)")
    pack.add_argument("-o", "--output", help="bundle file to write (default ./APP_ID-VERSION.vhb)")

    inspect = sub.add_parser("inspect", help="show a bundle's manifest, files, size and sha256")
    inspect.add_argument("file", help="the .vhb bundle")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")

    sign = sub.add_parser("sign", help="add the bundle to the partner's delegated role and re-sign it")
    sign.add_argument("file", help="the .vhb bundle")
    sign.add_argument("--key", required=True, help="the partner's private key (PKCS8 PEM)")
    sign.add_argument(
        "--role", required=True, help="the partner's role metadata (ROLE.json), updated in place"
    )
    sign.add_argument("--partner", required=True, help="the partner id (the delegated role's name)")

    verify = sub.add_parser("verify", help="check the bundle against a signed role")
    verify.add_argument("file", help="the .vhb bundle")
    verify.add_argument("--role", required=True, help="the partner's role metadata (ROLE.json)")
    verify.add_argument("--pubkey", required=True, help="the partner's public key (KEY.pub.json)")

    keygen = sub.add_parser("keygen", help="make a publisher's ed25519 key pair for signing bundles")
    keygen.add_argument("file", help="private key to write (PKCS8 PEM, 0600); its .pub.json goes beside it")

    rollback = sub.add_parser("rollback", help="switch a cached app back to a kept version")
    rollback.add_argument("app_id", help="the app id")
    rollback.add_argument("--cache", required=True, help="the bundle cache folder")
    rollback.add_argument("--to", dest="version", help="the version (default: the previous one)")

    install = sub.add_parser("install", help="install and activate the bundle in a head unit's bundle cache")
    install.add_argument("file", help="the .vhb bundle")
    install.add_argument("--cache", required=True, help="the bundle cache folder (its apps/ is the hub's)")
    install.add_argument("--sha256", help="refuse the bundle unless its sha256 is this")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "new":
            from vehicle_host.devkit import scaffold

            return scaffold.run(args)
        result: int = COMMANDS[args.command](args)
        return result
    except VehicleHostError as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG} {args.command}: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _pack(args: argparse.Namespace) -> int:
    from vehicle_host.bundles import archive
    from vehicle_host.bundles.manifest import load_manifest

    app_dir = Path(args.dir)
    if not (app_dir / "app.json").is_file():
        print(f"{PROG} pack: {app_dir} has no app.json; give the app's folder", file=sys.stderr)
        return 2
    if args.output:
        out = Path(args.output)
    else:
        manifest = load_manifest(app_dir)
        out = Path(f"{manifest.app_id}-{manifest.version}{archive.SUFFIX}")
    result = archive.pack(app_dir, out)
    m = result.manifest
    print(f"packed {m.app_id} {m.version} into {out}")
    print(f"size    {result.size} bytes")
    print(f"files   {len(result.files)}")
    print(f"sha256  {result.sha256}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from vehicle_host.bundles import archive

    info = archive.inspect(Path(args.file))
    m = info.manifest
    manifest: dict[str, Any] = {
        "id": m.app_id,
        "name": m.name,
        "version": m.version,
        "pages": list(m.pages),
        "permissions": list(m.permissions),
        "network": list(m.allow_list),
        "runtime": {"min": m.runtime_min, "max": m.runtime_max},
        "drivingSafe": m.driving_safe,
        "group": m.group,
        "publisher": m.publisher,
    }
    if args.json:
        doc = {
            "manifest": manifest,
            "files": list(info.files),
            "size": info.size,
            "unpacked": info.unpacked,
            "sha256": info.sha256,
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{m.name} ({m.app_id}) {m.version}")
    for key in ("pages", "permissions", "network", "runtime", "drivingSafe", "group", "publisher"):
        print(f"  {key:<12} {json.dumps(manifest[key])}")
    print(f"size    {info.size} bytes ({info.unpacked} unpacked)")
    print(f"sha256  {info.sha256}")
    print(f"files   {len(info.files)}")
    for name in info.files:
        print(f"  {name}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from vehicle_host.trust import keys, roles

    signer = keys.load_signer(Path(args.key))
    target = roles.sign_bundle(Path(args.role), Path(args.file), signer, args.partner)
    print(f"signed {target.path} ({target.length} bytes) into {args.role} as {args.partner}")
    print(f"sha256  {target.hashes.get('sha256', '')}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from vehicle_host.trust import roles

    target = roles.verify_bundle(Path(args.role), Path(args.file), Path(args.pubkey))
    print(f"verified {args.file}: {target.path} in {args.role}, length and sha256 match, signature good")
    return 0


def _install(args: argparse.Namespace) -> int:
    from vehicle_host.bundle_cache import BundleCache

    with BundleCache(Path(args.cache)) as cache:
        installed = cache.install(Path(args.file), expected_sha256=args.sha256)
        previous = cache.active(installed.app_id)
        cache.activate(installed.app_id, installed.digest)
    was = f" (was {previous.version})" if previous and previous.digest != installed.digest else ""
    print(f"installed {installed.app_id} {installed.version}{was}, active in {Path(args.cache) / 'apps'}")
    print(f"sha256  {installed.digest}")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from vehicle_host.trust import keys

    path = Path(args.file)
    keyid = keys.generate_key(path)
    print(f"private key {path} (keep it secret), public key {path.with_suffix('.pub.json')}")
    print(f"keyid   {keyid}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from vehicle_host.bundle_cache import BundleCache

    with BundleCache(Path(args.cache)) as cache:
        before = cache.active(args.app_id)
        now = cache.rollback(args.app_id, args.version)
    was = f" (was {before.version})" if before else ""
    print(f"{now.app_id} {now.version} active{was}; it runs from the app's next start")
    return 0


COMMANDS = {
    "pack": _pack,
    "inspect": _inspect,
    "sign": _sign,
    "verify": _verify,
    "install": _install,
    "keygen": _keygen,
    "rollback": _rollback,
}

if __name__ == "__main__":
    sys.exit(main())
