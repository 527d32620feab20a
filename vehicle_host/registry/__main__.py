"""``python -m vehicle_host.registry``: the registry command."""

from __future__ import annotations

import sys

from vehicle_host.registry.cli import main

sys.exit(main())
