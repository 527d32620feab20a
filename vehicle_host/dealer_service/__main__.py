"""``python -m vehicle_host.dealer_service``: run the reference dealer service."""

from __future__ import annotations

import sys

from vehicle_host.dealer_service.server import main

sys.exit(main())
