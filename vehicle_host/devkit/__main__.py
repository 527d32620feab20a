"""``python -m vehicle_host.devkit new NAME`` / ``dev DIR``: the developer kit's commands on their own."""

from __future__ import annotations

import argparse
import sys

from vehicle_host.devkit import dev, scaffold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vehicle_host.devkit", description="mini-app developer kit"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    scaffold.add_arguments(sub.add_parser("new", help="create a mini-app that runs at once"))
    dev.add_arguments(sub.add_parser("dev", help="run one app in the window, reloaded on every save"))
    args = parser.parse_args(argv)
    return scaffold.run(args) if args.command == "new" else dev.run(args)


if __name__ == "__main__":
    sys.exit(main())
