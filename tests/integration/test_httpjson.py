"""The shared JSON-over-HTTP server pieces over real sockets on 127.0.0.1: errors, limits, keep-alive."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from vehicle_host.errors import VehicleHostError
from vehicle_host.httpjson import JSONHandler, JSONServer, RequestError

pytestmark = pytest.mark.integration


class EchoHandler(JSONHandler):
    """POST /echo answers its JSON body; GET /fail breaks; GET /refuse refuses."""

    timeout = 1.0  # a silent client is dropped after this long

    def do_GET(self) -> None:
        self.dispatch(self._get)

    def do_POST(self) -> None:
        self.dispatch(self._post)

    def _get(self, seg: list[str], query: dict[str, list[str]]) -> None:
        if seg == ["fail"]:
            raise RuntimeError("secret internal detail")
        if seg == ["mapped"]:
            raise VehicleHostError("not a request error")
        raise RequestError(404, "not_found", "no such endpoint")

    def _post(self, seg: list[str], query: dict[str, list[str]]) -> None:
        if seg != ["echo"]:
            raise RequestError(404, "not_found", "no such endpoint")
        self.respond(200, {"got": self.read_json(64)})


@pytest.fixture
def server() -> Iterator[JSONServer]:
    srv = JSONServer(("127.0.0.1", 0), EchoHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def connect(srv: JSONServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)


def answer(conn: http.client.HTTPConnection) -> tuple[int, dict[str, Any], str | None]:
    response = conn.getresponse()
    return response.status, json.loads(response.read()), response.getheader("Connection")


def test_bodies_are_read_once_and_keep_alive_holds(server: JSONServer) -> None:
    conn = connect(server)
    for n in range(3):  # the same connection serves every request
        conn.request("POST", "/echo", body=json.dumps({"n": n}))
        assert answer(conn) == (200, {"got": {"n": n}}, None)
    conn.request("POST", "/echo", body=b"")
    assert answer(conn) == (200, {"got": {}}, None)
    conn.close()


def test_an_unread_body_closes_the_connection(server: JSONServer) -> None:
    conn = connect(server)
    conn.request("POST", "/elsewhere", body=b'{"smuggled": "GET /fail HTTP/1.1"}')
    status, doc, connection = answer(conn)
    assert status == 404 and doc["error"] == {"code": "not_found", "message": "no such endpoint"}
    assert connection == "close"
    conn.close()
    conn = connect(server)
    conn.request("POST", "/echo", body=b"x" * 65)
    status, doc, connection = answer(conn)
    assert (status, doc["error"]["code"], connection) == (413, "too_large", "close")
    conn.close()


@pytest.mark.parametrize(
    ("body", "code"), [(b"{nope", "bad_json"), (b"[1, 2]", "bad_json"), (b'"text"', "bad_json")]
)
def test_bad_bodies_get_clear_errors(server: JSONServer, body: bytes, code: str) -> None:
    conn = connect(server)
    conn.request("POST", "/echo", body=body)
    status, doc, _ = answer(conn)
    assert status == 400 and doc["error"]["code"] == code and doc["error"]["message"]
    conn.close()


def test_targets_and_queries_are_bounded(server: JSONServer) -> None:
    conn = connect(server)
    conn.request("GET", "/x?" + "&".join(f"a{i}=1" for i in range(20)))
    status, doc, _ = answer(conn)
    assert status == 400 and doc["error"]["code"] == "bad_request"
    conn.request("GET", "/" + "x" * 3000)
    status, doc, _ = answer(conn)
    assert status == 414 and doc["error"]["code"] == "too_long"
    conn.close()


def test_unexpected_failures_are_logged_not_shown(
    server: JSONServer, caplog: pytest.LogCaptureFixture
) -> None:
    conn = connect(server)
    with caplog.at_level(logging.ERROR, logger="vehicle_host.httpjson"):
        conn.request("GET", "/fail")
        status, doc, _ = answer(conn)
    assert status == 500 and doc["error"]["code"] == "internal"
    assert "secret" not in doc["error"]["message"]
    assert any("GET /fail failed" in r.getMessage() and r.exc_info for r in caplog.records)
    conn.request("GET", "/mapped")  # the connection survives a failure
    assert answer(conn)[0] == 500
    conn.close()


def test_a_silent_client_is_dropped(server: JSONServer) -> None:
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        assert sock.recv(1024) == b""  # closed without an answer once the read times out


class SmallServer(JSONServer):
    max_connections = 3


class PatientHandler(EchoHandler):
    timeout = 30.0  # the held connections must outlast a slow machine


def test_a_connection_flood_is_answered_busy_and_service_resumes() -> None:
    srv = SmallServer(("127.0.0.1", 0), PatientHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    idle = [socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=5) for _ in range(3)]
    try:
        conn = connect(srv)
        conn.request("GET", "/refuse")
        status, body, connection = answer(conn)
        assert (status, body["error"]["code"], connection) == (503, "busy", "close")
        conn.close()
        for sock in idle:  # the held connections still get served
            sock.sendall(b"GET /refuse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 404")
    finally:
        for sock in idle:
            sock.close()
    deadline = 50
    while deadline:  # slots come back as the threads finish
        conn = connect(srv)
        conn.request("GET", "/refuse")
        status, _, _ = answer(conn)
        conn.close()
        if status == 404:
            break
        deadline -= 1
        threading.Event().wait(0.05)
    assert status == 404
    srv.shutdown()
    srv.server_close()
