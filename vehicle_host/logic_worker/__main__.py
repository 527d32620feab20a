"""Worker entry: ``python -m vehicle_host.logic_worker --endpoint EP [--app-id ID] [--confine JSON]``.

With ``--confine`` the process confines itself (worker user, rlimits, no_new_privs, seccomp: see
``vehicle_host.sandbox.confine``) before the message loop starts and before any JS runs. The hub
passes it for every worker unless ``VEHICLE_HOST_CONFINE=0``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="vehicle-host-worker", add_help=False)
    parser.add_argument("--confine", default=None)
    known, rest = parser.parse_known_args(args)
    # everything the worker will need is imported while the file system is still fully readable
    from vehicle_host.logic_worker import worker

    if known.confine is not None:
        from vehicle_host.errors import VehicleHostError
        from vehicle_host.sandbox import confine
        from vehicle_host.sandbox.config import ConfineSpec

        try:
            confine.apply(ConfineSpec.from_json(known.confine))
        except VehicleHostError as exc:
            print(f"worker: refusing to run unconfined: {exc}", file=sys.stderr)
            return 78  # EX_CONFIG; the hub reports that the sandbox failed
    return worker.main(rest)


if __name__ == "__main__":
    sys.exit(main())
