"""``python -m benchmarks NAME [options]``: runtime, can, roundtrip."""

from __future__ import annotations

import importlib
import sys

NAMES = {
    "runtime": "benchmarks.runtime",
    "can": "benchmarks.can",
    "roundtrip": "benchmarks.roundtrip",
    "updates": "benchmarks.updates",
    "load": "benchmarks.load",
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in NAMES:
        print(f"usage: python -m benchmarks {{{','.join(NAMES)}}} [--json] [options]", file=sys.stderr)
        return 2
    module = importlib.import_module(NAMES[sys.argv[1]])
    result: int = module.main(sys.argv[2:])
    return result


if __name__ == "__main__":
    sys.exit(main())
