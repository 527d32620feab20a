"""The reference dealer's HTTP/JSON server (``http.server.ThreadingHTTPServer``).

See ``API.md`` next to this file for the interface; :func:`serve` starts it on a thread.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jsonschema

from vehicle_host.dealer_service.catalog import CAMPAIGNS
from vehicle_host.dealer_service.store import DealerRequestError, DealerStore
from vehicle_host.httpjson import JSONHandler, JSONServer, run_until_stopped

MAX_BODY_BYTES = 16 * 1024
MAX_QUERY_CHARS = 64
MAX_DTCS = 20
MAX_ITEMS = 50
MAX_QUANTITY = 99
MAX_NOTE_CHARS = 500
DEFAULT_PORT = 18470
KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")
VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
DTC_RE = re.compile(r"^[PCBU][0-9A-F]{4}$")
PN_RE = re.compile(r"^[A-Z0-9-]{1,32}$")

_VIN = {"type": "string", "pattern": VIN_RE.pattern}
_NOTE = {"type": "string", "maxLength": MAX_NOTE_CHARS}
ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_ITEMS,
            "items": {
                "type": "object",
                "properties": {
                    "partNumber": {"type": "string", "pattern": PN_RE.pattern},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
                },
                "required": ["partNumber", "quantity"],
                "additionalProperties": False,
            },
        },
        "note": _NOTE,
        "vin": _VIN,
    },
    "required": ["items"],
    "additionalProperties": False,
}
BOOKING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"slot": {"type": "string", "maxLength": 16}, "note": _NOTE, "vin": _VIN},
    "required": ["slot"],
    "additionalProperties": False,
}


class DealerServer(JSONServer):
    """The server with its store; ``url`` is where it listens."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], store: DealerStore):
        super().__init__(address, handler)
        self.store = store

    def server_close(self) -> None:
        super().server_close()
        self.store.close()


class DealerHandler(JSONHandler):
    server: DealerServer
    server_version = "vehicle-host-dealer/1.0"
    max_query_fields = MAX_DTCS + 4
    failure_message = "the dealer service failed; try again later"

    def do_GET(self) -> None:
        self.dispatch(self._get)

    def do_POST(self) -> None:
        self.dispatch(self._post)

    def _get(self, seg: list[str], query: dict[str, list[str]]) -> None:
        if seg == ["v1", "parts"]:
            q = _one(query, "q")
            if not 0 < len(q.strip()) <= MAX_QUERY_CHARS:
                raise DealerRequestError(400, "bad_query", f"q must be 1 to {MAX_QUERY_CHARS} characters")
            self.respond(200, {"parts": self.server.store.search(q)})
        elif len(seg) == 4 and seg[:2] == ["v1", "parts"] and seg[3] == "fitment":
            pn, vin = _part_number(seg[2]), _vin(_one(query, "vin"))
            part = self.server.store.part(pn)
            fits, year = self.server.store.fits(pn, vin)
            self.respond(200, {"partNumber": pn, "vin": vin, "modelYear": year, "fits": fits, "part": part})
        elif seg == ["v1", "suggestions"]:
            dtcs = [d.strip().upper() for d in query.get("dtc", [])]
            if not 0 < len(dtcs) <= MAX_DTCS or not all(DTC_RE.match(d) for d in dtcs):
                raise DealerRequestError(
                    400,
                    "bad_dtc",
                    f"pass 1 to {MAX_DTCS} dtc parameters like dtc=P0301 (a letter and 4 hex digits)",
                )
            for_vin = _vin(_one(query, "vin")) if "vin" in query else None
            unique = list(dict.fromkeys(dtcs))
            self.respond(200, {"suggestions": self.server.store.suggestions(unique, for_vin)})
        elif len(seg) == 3 and seg[:2] == ["v1", "orders"]:
            self.respond(200, self.server.store.order(seg[2][:64]))
        elif seg == ["v1", "slots"]:
            day = _one(query, "date")
            self.respond(200, {"date": day, "slots": self.server.store.free_slots(day)})
        elif seg == ["v1", "campaigns"]:
            self.respond(200, {"campaigns": list(CAMPAIGNS)})
        else:
            raise DealerRequestError(404, "not_found", "no such endpoint; see API.md")

    def _post(self, seg: list[str], query: dict[str, list[str]]) -> None:
        if seg not in (["v1", "orders"], ["v1", "bookings"]):
            raise DealerRequestError(404, "not_found", "no such endpoint; see API.md")
        body = self.read_json(MAX_BODY_BYTES)
        key = self.headers.get("Idempotency-Key", "")
        if not KEY_RE.match(key):
            raise DealerRequestError(
                400,
                "bad_key",
                "send an Idempotency-Key header of 8 to 100 characters (letters, digits, ._:-)",
            )
        if seg[1] == "orders":
            _validate(body, ORDER_SCHEMA)
            record, created = self.server.store.create_order(key, body)
        else:
            _validate(body, BOOKING_SCHEMA)
            record, created = self.server.store.create_booking(key, body)
        self.respond(201 if created else 200, record)


def _one(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    if not values or len(values) != 1:
        raise DealerRequestError(400, f"bad_{name}", f"pass exactly one {name} parameter")
    return values[0]


def _vin(text: str) -> str:
    vin = text.strip().upper()
    if not VIN_RE.match(vin):
        raise DealerRequestError(
            400, "bad_vin", "vin must be 17 characters (letters except I, O, Q, and digits)"
        )
    return vin


def _part_number(text: str) -> str:
    pn = text.strip().upper()
    if not PN_RE.match(pn):
        raise DealerRequestError(400, "bad_part_number", "a part number is 1 to 32 letters, digits or dashes")
    return pn


def _validate(body: Any, schema: dict[str, Any]) -> None:
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(body))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "body"
        raise DealerRequestError(400, "invalid_body", f"{where}: {error.message}"[:300])


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    db_path: Path | str = ":memory:",
    *,
    handler: type[DealerHandler] = DealerHandler,
) -> DealerServer:
    """Start the dealer service on a daemon thread; ``server.shutdown(); server.server_close()`` stops it."""
    server = DealerServer((host, port), handler, DealerStore(db_path))
    threading.Thread(target=server.serve_forever, name="dealer-service", daemon=True).start()
    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vehicle-host dealer-service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument("--db", default="dealer.sqlite3", help="SQLite file (created and seeded if absent)")
    args = parser.parse_args(argv)
    try:
        server = DealerServer((args.host, args.port), DealerHandler, DealerStore(Path(args.db)))
    except OSError as exc:
        print(f"cannot start the dealer service: {exc}", file=sys.stderr)
        return 1
    run_until_stopped(server)
    return 0
