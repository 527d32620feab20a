"""The reference dealer service over real HTTP on 127.0.0.1: catalog, idempotency, limits, CLI."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vehicle_host.dealer_service import DealerServer, serve

pytestmark = pytest.mark.integration
VIN = "WVWZZZ1KZEW000001"  # VW, model year 2014


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DealerServer]:
    srv = serve("127.0.0.1", 0, tmp_path / "dealer.sqlite3")
    yield srv
    srv.shutdown()
    srv.server_close()


def request(
    srv: DealerServer, verb: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    url = urllib.parse.urlsplit(srv.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    conn.request(verb, path, body=raw, headers=headers or {})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return response.status, data


def test_search_fitment_and_suggestions(server: DealerServer) -> None:
    status, found = request(server, "GET", "/v1/parts?q=spark+plug")
    assert status == 200 and {p["partNumber"] for p in found["parts"]} == {"SP-1001", "SP-1002"}
    assert request(server, "GET", "/v1/parts?q=maf-4001")[1]["parts"][0]["name"] == "Mass air flow sensor"
    fit = request(server, "GET", f"/v1/parts/IC-2001/fitment?vin={VIN}")[1]
    assert fit["fits"] is True and fit["modelYear"] == 2014
    assert request(server, "GET", f"/v1/parts/FP-4701/fitment?vin={VIN}")[1]["fits"] is False
    status, sugg = request(server, "GET", f"/v1/suggestions?dtc=P0301&dtc=P0420&dtc=C0035&vin={VIN}")
    pns = [(s["dtc"], s["part"]["partNumber"]) for s in sugg["suggestions"]]
    assert ("P0301", "SP-1001") in pns and ("P0301", "IC-2001") in pns and ("P0301", "SP-1002") not in pns
    assert ("P0420", "CAT-3001") not in pns  # this converter fits model years 2015 on
    assert ("P0420", "O2-3102") in pns and ("C0035", "WSS-5001") in pns
    newer = request(server, "GET", "/v1/suggestions?dtc=P0420&vin=WVWZZZ1KZGW000001")[1]["suggestions"]
    assert newer[0]["part"]["partNumber"] == "CAT-3001"
    lean = request(server, "GET", "/v1/suggestions?dtc=P0171")[1]["suggestions"]
    assert [s["part"]["partNumber"] for s in lean][:2] == ["MAF-4001", "IG-4101"]
    assert len(request(server, "GET", "/v1/campaigns")[1]["campaigns"]) >= 1


def test_orders_and_bookings_are_idempotent(server: DealerServer) -> None:
    body = {"items": [{"partNumber": "SP-1001", "quantity": 4}], "note": "before the trip"}
    key = {"Idempotency-Key": "test-key-0001"}
    first = request(server, "POST", "/v1/orders", body, key)
    again = request(server, "POST", "/v1/orders", body, key)
    assert first[0] == 201 and again[0] == 200 and first[1] == again[1]
    assert first[1]["totalCents"] == 4 * 1290 and server.store.order_count() == 1
    assert request(server, "GET", f"/v1/orders/{first[1]['orderId']}")[1] == first[1]
    other = {"items": [{"partNumber": "SP-1001", "quantity": 1}]}
    status, err = request(server, "POST", "/v1/orders", other, key)
    assert status == 409 and err["error"]["code"] == "key_reused" and server.store.order_count() == 1

    free = request(server, "GET", "/v1/slots?date=2025-07-01")[1]["slots"]
    booking = {"slot": free[0]}
    b1 = request(server, "POST", "/v1/bookings", booking, {"Idempotency-Key": "book-key-0001"})
    b2 = request(server, "POST", "/v1/bookings", booking, {"Idempotency-Key": "book-key-0001"})
    assert b1[0] == 201 and b2[0] == 200 and b1[1]["bookingId"] == b2[1]["bookingId"]
    assert free[0] not in request(server, "GET", "/v1/slots?date=2025-07-01")[1]["slots"]
    taken = request(server, "POST", "/v1/bookings", booking, {"Idempotency-Key": "book-key-0002"})
    assert taken[0] == 409 and "already booked" in taken[1]["error"]["message"]
    assert server.store.booking_count() == 1


@pytest.mark.parametrize(
    ("verb", "path", "body", "headers", "status", "code"),
    [
        ("GET", "/v1/parts?q=", None, {}, 400, "bad_query"),
        ("GET", "/v1/parts?q=" + "x" * 100, None, {}, 400, "bad_query"),
        ("GET", "/v1/parts/SP-1001/fitment?vin=123", None, {}, 400, "bad_vin"),
        ("GET", "/v1/suggestions?dtc=X9999", None, {}, 400, "bad_dtc"),
        ("GET", "/v1/suggestions?" + "&".join(["dtc=P0301"] * 30), None, {}, 400, "bad_request"),
        ("GET", "/v1/orders/D-NOPE", None, {}, 404, "unknown_order"),
        ("GET", "/v1/slots?date=tomorrow", None, {}, 400, "bad_date"),
        ("GET", "/nope", None, {}, 404, "not_found"),
        ("POST", "/v1/orders", {"items": [{"partNumber": "SP-1001", "quantity": 1}]}, {}, 400, "bad_key"),
        ("POST", "/v1/orders", b"{not json", {"Idempotency-Key": "k-00000001"}, 400, "bad_json"),
        ("POST", "/v1/orders", {"items": [{"partNumber": "SP-1001", "quantity": 500}]},
         {"Idempotency-Key": "k-00000002"}, 400, "invalid_body"),
        ("POST", "/v1/orders", {"items": [{"partNumber": "NOPE-1", "quantity": 1}]},
         {"Idempotency-Key": "k-00000003"}, 422, "unknown_part"),
        ("POST", "/v1/orders", b"x" * 20_000, {"Idempotency-Key": "k-00000004"}, 413, "too_large"),
        ("POST", "/v1/bookings", {"slot": "2025-07-01T12:30"},
         {"Idempotency-Key": "k-00000005"}, 400, "bad_slot"),
    ],
)  # fmt: skip
def test_bad_input_gets_clear_json_errors(
    server: DealerServer, verb: str, path: str, body: Any, headers: dict[str, str], status: int, code: str
) -> None:
    got_status, got = request(server, verb, path, body, headers)
    assert got_status == status and got["error"]["code"] == code and got["error"]["message"]
    assert server.store.order_count() == 0


def test_the_module_prints_its_url_and_serves(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vehicle_host.dealer_service", "--port", "0", "--db", str(tmp_path / "d.db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = urllib.parse.urlsplit(proc.stdout.readline().strip())
        assert url.hostname == "127.0.0.1"
        conn = http.client.HTTPConnection("127.0.0.1", url.port, timeout=5)
        conn.request("GET", "/v1/parts?q=P0420")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
