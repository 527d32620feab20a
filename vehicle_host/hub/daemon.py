"""``vehicle-host hub``: run the hub until SIGTERM."""

from __future__ import annotations

import asyncio

from vehicle_host import logs
from vehicle_host.config import HostConfig
from vehicle_host.hub.service import Hub


def run(config: HostConfig, *, log_level: str = "INFO") -> int:
    logs.setup(log_level)
    hub = Hub(config)
    asyncio.run(hub.run())
    return 0
