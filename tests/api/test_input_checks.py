"""Input is checked once, the same way everywhere: strict JSON types, path parameters held to the
body's id rules, and a body size limit enforced while the body is read (real server, real
sockets, real oversized bodies)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from edge_agent.api.app import MAX_BODY_BYTES
from tests.api.conftest import Server
from tests.cache.factories import A

LINE = {"sku": "SKU1", "category": "food", "quantity": 2, "unit_price": 1500}


def validate_body(**line: Any) -> dict[str, Any]:
    return {"codes": [A], "cashier_id": "c-7", "basket": {"lines": [{**LINE, **line}]}}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", True),
        ("quantity", "2"),
        ("quantity", 2.5),
        ("unit_price", "1500"),
        ("unit_price", False),
        ("sku", 7),
        ("category", None),
    ],
)
def test_wrong_json_types_are_422_not_coerced(server: Server, field: str, value: Any) -> None:
    with server.client() as till:
        r = till.post("/v1/validate", json=validate_body(**{field: value}))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request"
    assert f"basket.lines.0.{field}" in r.json()["detail"]


def test_wrong_types_elsewhere_in_bodies(server: Server) -> None:
    with server.client() as till:
        r = till.post("/v1/validate", json={"codes": [A], "cashier_id": 7})
        assert r.status_code == 422 and "cashier_id" in r.json()["detail"]
        rev = {"code": A, "transaction_id": "S1", "cashier_id": "c", "return_id": "R1"}
        r = till.post("/v1/reverse", json={**rev, "amount": "100"})
        assert r.status_code == 422 and "amount" in r.json()["detail"]
        r = till.post("/v1/reverse", json={**rev, "amount": 10**30})
        assert r.status_code == 422 and "amount" in r.json()["detail"]
        # JSON-natural input still works: ints are ints, and 2.0 is the JSON number 2 (JSON
        # Schema's "integer", as the OpenAPI document says)
        assert till.post("/v1/validate", json=validate_body()).status_code == 200
        assert till.post("/v1/validate", json=validate_body(quantity=2.0)).status_code == 200


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/members/M%201/linked-codes", "member_id"),
        ("/v1/members/" + "m" * 65 + "/linked-codes", "member_id"),
        ("/v1/codes/" + "X" * 257, "code"),
        ("/v1/receipt-coupons/T%201/print", "transaction_id"),
        ("/v1/receipt-coupons/" + "t" * 65 + "/reprint", "transaction_id"),
    ],
)
def test_path_parameters_are_checked_like_body_fields(
    server: Server, path: str, param: str
) -> None:
    with server.client() as till:
        r = till.post(path) if path.endswith("reprint") else till.get(path)
    assert r.status_code == 422, r.text
    assert set(r.json()) == {"error", "detail"}
    assert f"path.{param}" in r.json()["detail"]


# --- body size limit --------------------------------------------------------------------------


def _oversized_json(size: int) -> bytes:
    return b'{"codes": ["' + b"x" * size + b'"], "cashier_id": "c"}'


def test_oversized_body_with_content_length_is_413(server: Server) -> None:
    with server.client() as till:
        r = till.post(
            "/v1/validate",
            content=_oversized_json(16 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413
        assert r.json()["error"] == "body_too_large"
        # the connection and the server are fine afterwards
        assert till.post("/v1/validate", json=validate_body()).status_code == 200


def test_oversized_chunked_body_is_413(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"codes": ["'
        for _ in range(256):  # 2 MiB in 8 KiB chunks, no Content-Length
            yield b"x" * 8192
        yield b'"], "cashier_id": "c"}'

    with server.client() as till:
        r = till.post(
            "/v1/validate", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413
        assert set(r.json()) == {"error", "detail"}
        assert till.get("/v1/health").status_code == 200


def test_a_body_at_the_limit_is_read(server: Server) -> None:
    raw = _oversized_json(MAX_BODY_BYTES - len(_oversized_json(0)))
    assert len(raw) == MAX_BODY_BYTES
    with server.client() as till:
        r = till.post("/v1/validate", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 422  # read and validated (the code is too long), not refused as 413
    assert "codes.0" in r.json()["detail"]


def _raw_request(server: Server, head: bytes, body: bytes) -> bytes:
    """Send a request head and part of a body, never finish it, and read what comes back."""
    url = urlsplit(server.base_url)
    assert url.hostname is not None and url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    return answer


def _head(server: Server, extra: str) -> bytes:
    token = server.tokens["till-1"]
    return (
        "POST /v1/validate HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\n{extra}\r\n"
    ).encode()


def test_too_large_content_length_is_refused_before_the_body_is_sent(server: Server) -> None:
    answer = _raw_request(server, _head(server, "Content-Length: 16777216\r\n"), b"")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"body_too_large"' in answer


def test_chunked_body_is_cut_off_at_the_limit_as_it_streams(server: Server) -> None:
    # The body never ends: the answer can only come from counting the chunks as they arrive.
    chunk = b"x" * 4096
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20))
    answer = _raw_request(server, _head(server, "Transfer-Encoding: chunked\r\n"), body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
