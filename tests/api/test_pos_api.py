"""The POS API over real HTTP: auth, validation answers, the two-step redemption, errors."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

from tests.api.conftest import Server
from tests.cache.factories import A, B, G

BASKET = {"lines": [{"sku": "SKU1", "category": "food", "quantity": 2, "unit_price": 1500}]}


def body(*codes: str, member: str | None = "M1", txn: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"codes": list(codes), "cashier_id": "c-7", "basket": BASKET}
    if member is not None:
        doc["member_id"] = member
    if txn is not None:
        doc["transaction_id"] = txn
    return doc


def outbox_rows(server: Server) -> int:
    with sqlite3.connect(server.cache_path) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])


def test_health_needs_no_token_but_codes_do(server: Server) -> None:
    with server.client(None) as anon:
        assert anon.get("/v1/health").json()["status"] == "ok"
        r = anon.post("/v1/validate", json=body(A))
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized"
        r = anon.post("/v1/validate", json=body(A), headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401


def test_validate_accepts_and_explains(server: Server) -> None:
    with server.client() as till:
        r = till.post("/v1/validate", json=body(A))
    assert r.status_code == 200
    decision = r.json()["decisions"][0]
    assert decision["ok"] is True
    assert decision["discount"] == 500
    assert r.json()["total_discount"] == 500
    assert sum(line["amount"] for line in decision["lines"]) == 500


def test_validate_refusals_carry_stable_reasons(server: Server) -> None:
    typo = A[:-2] + A[-1] + A[-2]  # two neighbours swapped
    with server.client() as till:
        r = till.post("/v1/validate", json=body(typo, B, member="M1"))
    typo_d, wrong_d = r.json()["decisions"]
    assert typo_d["reason"] == "MALFORMED"
    assert "swapped" in typo_d["cashier_message"]
    assert wrong_d["reason"] == "WRONG_MEMBER"


def test_bad_body_is_422_naming_the_field_and_writes_nothing(server: Server) -> None:
    before = outbox_rows(server)
    bad = body(A, txn="T1")
    bad["basket"] = {"lines": [{"sku": "SKU1", "category": "food", "quantity": 0, "unit_price": 1}]}
    with server.client() as till:
        r = till.post("/v1/commit", json=bad)
        assert r.status_code == 422
        assert "basket.lines.0.quantity" in r.json()["detail"]
        extra = {**body(A, txn="T1"), "discount_override": 100}
        r = till.post("/v1/commit", json=extra)
        assert r.status_code == 422
        assert "discount_override" in r.json()["detail"]
        r = till.post("/v1/commit", json=body(A))  # no transaction id
        assert r.status_code == 422
    assert outbox_rows(server) == before


def test_two_tills_reserve_commit_retry_and_already_redeemed(server: Server) -> None:
    with server.client("till-1") as t1, server.client("till-2") as t2:
        held = t1.post("/v1/reserve", json=body(A, txn="T1")).json()["results"][0]
        assert held["decision"]["ok"] and held["hold_until"]
        other = t2.post("/v1/reserve", json=body(A, txn="T2")).json()["results"][0]
        assert other["decision"]["reason"] == "RESERVED_ELSEWHERE"
        first = t1.post("/v1/commit", json=body(A, txn="T1")).json()
        again = t1.post("/v1/commit", json=body(A, txn="T1")).json()
        # A retried commit gets the same answer, flagged as a replay, never a second redemption.
        assert not first["results"][0]["replayed"] and again["results"][0]["replayed"]
        again["results"][0]["replayed"] = False
        assert first == again
        redemption = first["results"][0]["redemption"]
        assert redemption["till_id"] == "till-1" and redemption["amount"] == 500
        later = t2.post("/v1/validate", json=body(A)).json()["decisions"][0]
        assert later["reason"] == "ALREADY_REDEEMED"
        status = t1.get(f"/v1/codes/{A}").json()
        assert status["uses"] == 1
        assert [h["type"] for h in status["history"]][-1] == "code.redeemed"


def test_hold_expires_and_void_releases(server: Server) -> None:
    with server.client("till-1") as t1, server.client("till-2") as t2:
        t1.post("/v1/reserve", json=body(A, txn="T1"))
        server.clock.advance(timedelta(seconds=61))  # hold is 60 s
        took = t2.post("/v1/reserve", json=body(A, txn="T2")).json()["results"][0]
        assert took["decision"]["ok"]
        voided = t2.post("/v1/void", json={"transaction_id": "T2", "cashier_id": "c"}).json()
        assert voided["results"][0]["released"] is True
        again = t1.post("/v1/reserve", json=body(A, txn="T3")).json()["results"][0]
        assert again["decision"]["ok"]


def test_partial_then_full_reverse_and_too_much(server: Server) -> None:
    with server.client() as till:
        till.post("/v1/commit", json=body(A, txn="S1"))
        rev = {"code": A, "transaction_id": "S1", "cashier_id": "c", "return_id": "R1"}
        part = till.post("/v1/reverse", json={**rev, "amount": 200}).json()
        assert part["amount"] == 200 and part["remaining"] == 300 and not part["fully_reversed"]
        retry = till.post("/v1/reverse", json={**rev, "amount": 200}).json()
        assert retry == {**part, "replayed": True}
        too_much = till.post("/v1/reverse", json={**rev, "return_id": "R2", "amount": 999})
        assert too_much.status_code == 409
        full = till.post("/v1/reverse", json={**rev, "return_id": "R3"}).json()
        assert full["amount"] == 300 and full["fully_reversed"]
        # the use is restored, so the member can use the code again
        assert till.post("/v1/validate", json=body(A)).json()["decisions"][0]["ok"]


def test_link_and_unknown_code(server: Server) -> None:
    with server.client() as till:
        linked = till.post("/v1/links", json={"code": G, "member_id": "M2", "cashier_id": "c"})
        assert linked.status_code == 200 and linked.json()["created"]
        assert till.post("/v1/validate", json=body(G, member="M1")).json()["decisions"][0][
            "reason"
        ] == ("WRONG_MEMBER")
        missing = till.get("/v1/codes/SSK7AAAAAAA")
        assert missing.status_code == 404
        assert missing.json()["error"] == "unknown_code"


def test_openapi_documents_every_route(server: Server) -> None:
    with server.client(None) as anon:
        doc = anon.get("/openapi.json").json()
    paths = set(doc["paths"])
    assert {
        "/v1/validate",
        "/v1/reserve",
        "/v1/commit",
        "/v1/void",
        "/v1/reverse",
        "/v1/links",
        "/v1/codes/{code}",
        "/v1/health",
    } <= paths
    assert "401" in doc["paths"]["/v1/commit"]["post"]["responses"]


def test_guessing_till_is_throttled_and_other_tills_are_not(server: Server) -> None:
    guesses = [f"SSK7{c}{c}{c}{c}{c}{c}2" for c in "ABCDEF"]
    with server.client("till-1") as t1, server.client("till-2") as t2:
        for guess in guesses[:5]:  # limit is 5 guess-like failures a window
            t1.post("/v1/validate", json=body(guess))
        blocked = t1.post("/v1/validate", json=body(A)).json()["decisions"][0]
        assert blocked["reason"] == "TILL_THROTTLED"
        assert blocked["retry_after"]
        assert t2.post("/v1/validate", json=body(A)).json()["decisions"][0]["ok"]


def test_linked_code_is_offered_at_the_members_next_checkout(server: Server) -> None:
    with server.client() as till:
        assert till.get("/v1/members/M2/linked-codes").json()["codes"] == []
        till.post("/v1/links", json={"code": G, "member_id": "M2", "cashier_id": "c"})
        assert till.get("/v1/members/M2/linked-codes").json()["codes"] == [G]
        assert till.get("/v1/members/M1/linked-codes").json()["codes"] == []
        paid = till.post("/v1/commit", json=body(G, member="M2", txn="T-L1")).json()
        assert paid["results"][0]["redemption"] is not None
        assert till.get("/v1/members/M2/linked-codes").json()["codes"] == []  # used
