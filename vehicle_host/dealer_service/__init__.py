"""The reference dealer service: the HTTP/JSON interface a real dealer system implements.

The ``parts_ordering`` plugin talks to one dealer service at its configured ``service_url``. This
package is a small, complete implementation of that interface on the standard library
(``http.server.ThreadingHTTPServer``) and SQLite, seeded with a sample catalog (about 40 parts,
fitment by WMI and model year, DTC -> part suggestions, a summer campaign). It serves demos and
tests; a real dealer system implements the same endpoints (``API.md`` next to this file):

- ``GET /v1/parts?q=`` keyword or part number; ``GET /v1/parts/{pn}/fitment?vin=``;
  ``GET /v1/suggestions?dtc=P0301&dtc=...&vin=``; ``GET /v1/campaigns``;
- ``POST /v1/orders`` and ``POST /v1/bookings`` with an ``Idempotency-Key`` header: the same key
  always answers the same order or booking (201 the first time, 200 after), never a second one;
- ``GET /v1/orders/{id}``; ``GET /v1/slots?date=YYYY-MM-DD`` (free workshop slots).

Errors are ``{"error": {"code", "message"}}`` with a 4xx status (the request is wrong and will stay
wrong) or 5xx (retry later). Bodies are limited to 16 KiB. It listens on loopback by default.

Run it: ``python -m vehicle_host.dealer_service --host 127.0.0.1 --port 0 --db PATH`` (prints the
bound URL on the first line of stdout); in code: :func:`serve`.
"""

from __future__ import annotations

from vehicle_host.dealer_service.server import DEFAULT_PORT, DealerHandler, DealerServer, main, serve
from vehicle_host.dealer_service.store import DealerRequestError, DealerStore

__all__ = [
    "DEFAULT_PORT",
    "DealerHandler",
    "DealerRequestError",
    "DealerServer",
    "DealerStore",
    "main",
    "serve",
]
