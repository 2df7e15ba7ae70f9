"""The points routes through the real POS API server (httpx over a loopback socket)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.conftest import running_server

LINES: list[dict[str, Any]] = [
    {"sku": "A-1", "category": "food", "quantity": 2, "unit_price": 1000, "unit_cost": 400},
    {"sku": "C-1", "category": "food", "quantity": 3, "unit_price": 1000, "unit_cost": 900},
]
SALE = {"transaction_id": "T-1", "member_id": "M1", "cashier_id": "c-1", "basket": {"lines": LINES}}


def test_points_are_off_by_default(tmp_path: Path) -> None:
    with running_server(tmp_path) as server, server.client() as till:
        r = till.post("/v1/points/checkout", json=SALE)
        assert r.status_code == 503 and r.json()["error"] == "points_disabled"


def test_checkout_return_void_and_balance_over_http(tmp_path: Path) -> None:
    with running_server(tmp_path, points=True) as server, server.client() as till:
        quote = till.post(
            "/v1/points/quote", json={k: v for k, v in SALE.items() if k != "transaction_id"}
        )
        assert quote.status_code == 200 and quote.json()["earn_points"] == 100
        first = till.post("/v1/points/checkout", json=SALE).json()
        assert first["ok"] and first["earned"] == 100 and not first["replayed"]
        assert till.post("/v1/points/checkout", json=SALE).json()["replayed"]
        other = till.post("/v1/points/checkout", json={**SALE, "member_id": "M2"})
        assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
        too_much = till.post(
            "/v1/points/checkout", json={**SALE, "transaction_id": "T-2", "burn_points": 500}
        )
        assert too_much.json()["reason"] == "insufficient_balance"
        with server.client("till-2") as desk:
            back = desk.post(
                "/v1/points/returns",
                json={"return_id": "R-1", "transaction_id": "T-1", "sale_till_id": "till-1",
                      "cashier_id": "c-2", "lines": [{"line": 0, "quantity": 1}]},
            )  # fmt: skip
            assert back.status_code == 200 and back.json()["taken_back"] == 50
            foreign = desk.post(
                "/v1/points/void",
                json={"transaction_id": "T-1", "cashier_id": "c-2", "sale_till_id": "till-1"},
            )
            assert foreign.status_code == 403 and foreign.json()["error"] == "other_till"
        void = till.post("/v1/points/void", json={"transaction_id": "T-1", "cashier_id": "c-1"})
        assert void.status_code == 200 and void.json()["taken_back"] == 50
        balance = till.get("/v1/members/M1/points").json()
        assert balance["known"] == 0 and balance["unsynced"] == 0
        assert till.get("/v1/members/nobody/points").status_code == 404
