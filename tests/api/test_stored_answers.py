"""Answers stored before one definition per data shape are replayed exactly as that box did.

``old_stored_answers.json`` holds ``requests`` rows written by the hand-written codec the box
used before (a decision's lines as ``[sku, amount]`` pairs, the other kind's fields left out,
times with ``+00:00``) and the bodies that box sent for an identical retry of each request. A
box upgraded with such rows in its cache must send those bodies, byte for byte.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.api.conftest import Server
from tests.cache.factories import A, B

OLD = json.loads((Path(__file__).parent / "old_stored_answers.json").read_text())
BASKET = {"lines": [{"sku": "SKU1", "category": "food", "quantity": 2, "unit_price": 1500}]}


def _body(code: str, *, member: str, txn: str) -> dict[str, Any]:
    return {
        "codes": [code],
        "cashier_id": "c-7",
        "basket": BASKET,
        "member_id": member,
        "transaction_id": txn,
    }


# The requests whose answers the old box stored, in the order it answered them.
RETRIES = {
    "reserve": ("/v1/reserve", _body(A, member="M1", txn="T1")),
    "commit": ("/v1/commit", _body(A, member="M1", txn="T1")),
    "reverse": (
        "/v1/reverse",
        {"transaction_id": "T1", "code": A, "cashier_id": "c", "return_id": "R1", "amount": 100},
    ),
    "reserve_b": ("/v1/reserve", _body(B, member="M2", txn="T3")),
    "void": ("/v1/void", {"transaction_id": "T3", "cashier_id": "c"}),
}


def _store_old_rows(server: Server, operations: set[str] | None = None) -> None:
    columns = ", ".join(OLD["columns"])
    marks = ", ".join("?" for _ in OLD["columns"])
    rows = [r for r in OLD["rows"] if operations is None or r[3] in operations]
    with sqlite3.connect(server.cache_path) as conn:
        conn.executemany(f"INSERT INTO requests ({columns}) VALUES ({marks})", rows)


def test_old_stored_answers_are_replayed_byte_for_byte(server: Server) -> None:
    _store_old_rows(server)
    with server.client() as till:
        for name, (url, body) in RETRIES.items():
            r = till.post(url, json=body)
            assert r.status_code == 200, (name, r.text)
            assert r.text == OLD["retried"][name], name


def test_a_reserve_after_an_old_stored_commit_is_answered_from_it(server: Server) -> None:
    """The late reserve retry (``settled_by``) reads the commit's old-format decision."""
    _store_old_rows(server, {"commit"})
    url, body = RETRIES["reserve"]
    with server.client() as till:
        result = till.post(url, json=body).json()["results"][0]
    committed = json.loads(OLD["retried"]["commit"])["results"][0]
    assert result == {"decision": committed["decision"], "hold_until": None, "replayed": True}
