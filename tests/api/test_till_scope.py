"""A sale belongs to the till that made it (issue 6), over real HTTP on a real cache file.

POS systems number their own sales, so two tills may both have a ``T-1``: neither may get the
other's stored answer, commit a code the other holds, or void its holds. A return names the
sale it gives back on (its till and transaction id) and is keyed by the returning till's own
return id. A retry must be the same request: the same key with another basket, other codes or
another member is a 409, never the old answer.
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Server
from tests.api.test_pos_api import BASKET, body
from tests.cache.factories import A, G

SMALL = {"lines": [{"sku": "SKU1", "category": "food", "quantity": 1, "unit_price": 300}]}


def result(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json()["results"][0])


def test_another_till_reusing_a_transaction_id_does_not_get_the_other_sales_answer(
    server: Server,
) -> None:
    with server.client("till-1") as t1, server.client("till-2") as t2:
        paid = result(t1.post("/v1/commit", json=body(A, txn="T-1")))
        assert paid["redemption"]["amount"] == 500
        # Before: till 2's T-1 was taken for till 1's sale and got its full discount again.
        theirs = result(t2.post("/v1/commit", json=body(A, txn="T-1")))
        assert theirs["redemption"] is None and not theirs["replayed"]
        assert theirs["decision"]["reason"] == "ALREADY_REDEEMED"
        status = t1.get(f"/v1/codes/{A}").json()
        assert status["uses"] == 1 and len(status["redemptions"]) == 1


def test_a_till_cannot_commit_or_void_a_code_another_till_holds_under_the_same_id(
    server: Server,
) -> None:
    with server.client("till-1") as t1, server.client("till-2") as t2:
        held = result(t1.post("/v1/reserve", json=body(A, txn="T-1")))
        assert held["decision"]["ok"]
        # Before: till 2's T-1 counted till 1's hold as its own and redeemed the code.
        taken = result(t2.post("/v1/commit", json=body(A, txn="T-1")))
        assert taken["decision"]["reason"] == "RESERVED_ELSEWHERE"
        assert taken["redemption"] is None
        # Before: till 2 released till 1's hold.
        voided = t2.post("/v1/void", json={"transaction_id": "T-1", "cashier_id": "c"}).json()
        assert voided["results"] == []
        one = t2.post("/v1/void", json={"transaction_id": "T-1", "cashier_id": "c", "code": A})
        assert one.json()["results"][0]["released"] is False
        status = t1.get(f"/v1/codes/{A}").json()
        assert [h["till_id"] for h in status["holds"]] == ["till-1"]
        # Till 1's own sale goes through.
        assert result(t1.post("/v1/commit", json=body(A, txn="T-1")))["redemption"]["amount"]


def test_a_generic_code_on_two_tills_sales_of_the_same_number_is_two_redemptions(
    server: Server,
) -> None:
    with server.client("till-1") as t1, server.client("till-2") as t2:
        first = result(t1.post("/v1/commit", json=body(G, txn="T-7")))
        # Before: till 2's T-7 was answered with till 1's stored redemption.
        second = result(t2.post("/v1/commit", json=body(G, member="M2", txn="T-7")))
        assert first["redemption"]["till_id"] == "till-1"
        assert second["redemption"]["till_id"] == "till-2"
        assert t1.get(f"/v1/codes/{G}").json()["uses"] == 2


def test_a_retry_must_be_the_same_request(server: Server) -> None:
    with server.client("till-1") as t1:
        first = result(t1.post("/v1/commit", json=body(A, txn="T-1")))
        again = result(t1.post("/v1/commit", json=body(A, txn="T-1")))
        assert not first["replayed"] and again["replayed"]
        assert {**again, "replayed": False} == first
        changed: list[dict[str, Any]] = [
            {**body(A, txn="T-1"), "basket": SMALL},  # another basket
            body(A, member="M2", txn="T-1"),  # another member
            body(A, G, txn="T-1"),  # other codes
        ]
        for request in changed:
            r = t1.post("/v1/commit", json=request)
            assert r.status_code == 409, request
            assert r.json()["error"] == "idempotency_conflict"
            assert "different request" in r.json()["detail"]
        assert t1.get(f"/v1/codes/{A}").json()["uses"] == 1
        # A reserve retried with another basket is refused the same way.
        result(t1.post("/v1/reserve", json=body(G, txn="T-2")))
        r = t1.post("/v1/reserve", json={**body(G, txn="T-2"), "basket": SMALL})
        assert r.status_code == 409


def test_a_return_at_the_service_desk_names_the_sale_and_is_keyed_by_its_own_return_id(
    server: Server,
) -> None:
    with server.client("till-1") as t1, server.client("till-2") as desk:
        t1.post("/v1/commit", json=body(A, txn="T-1"))
        rev = {"code": A, "transaction_id": "T-1", "cashier_id": "c", "return_id": "R-1"}
        # The desk's own T-1 has no such sale.
        missing = desk.post("/v1/reverse", json={**rev, "amount": 100})
        assert missing.status_code == 404 and "till-2" in missing.json()["detail"]
        part = desk.post("/v1/reverse", json={**rev, "sale_till_id": "till-1", "amount": 100})
        assert part.status_code == 200, part.text
        done = part.json()
        assert (done["sale_till_id"], done["remaining"], done["replayed"]) == ("till-1", 400, False)
        retry = desk.post("/v1/reverse", json={**rev, "sale_till_id": "till-1", "amount": 100})
        assert retry.json() == {**done, "replayed": True}
        # Before: the reused return id got the old answer whatever the amount.
        reused = desk.post("/v1/reverse", json={**rev, "sale_till_id": "till-1", "amount": 300})
        assert reused.status_code == 409 and reused.json()["error"] == "idempotency_conflict"
        # Till 1's own R-1 is another return (return ids are per till).
        own = t1.post("/v1/reverse", json={**rev, "amount": 300})
        assert own.status_code == 200 and own.json()["remaining"] == 100
        status = t1.get(f"/v1/codes/{A}").json()
        reversals = status["redemptions"][0]["reversals"]
        assert sorted((x["till_id"], x["amount"]) for x in reversals) == [
            ("till-1", 300),
            ("till-2", 100),
        ]


def test_a_retry_with_its_json_keys_in_another_order_is_still_a_retry(server: Server) -> None:
    """The fingerprint is of the request's content, not of its JSON text: a retry whose JSON
    keys come in another order is still the same request."""
    with server.client("till-1") as t1:
        doc = body(A, txn="T-1")
        first = result(t1.post("/v1/commit", json=doc))
        reordered = {k: doc[k] for k in reversed(list(doc))}
        reordered["basket"] = {"lines": [dict(reversed(list(BASKET["lines"][0].items())))]}
        again = result(t1.post("/v1/commit", json=reordered))
        assert again["replayed"] and again["redemption"] == first["redemption"]
