"""The registry's request error: an HTTP status, a stable code word and a message saying what to do."""

from __future__ import annotations

from vehicle_host.httpjson import RequestError


class RegistryError(RequestError):
    """A registry operation was refused; ``status`` is the HTTP status, ``code`` a stable word."""
