"""The trust error: a signature, hash, expiry or delegation check failed."""

from __future__ import annotations

from vehicle_host.errors import VehicleHostError


class TrustError(VehicleHostError):
    """Signed metadata or a signed file could not be trusted; nothing was installed."""


class FetchError(TrustError):
    """The repository could not be reached or a download was cut off; retrying may succeed."""
