"""A real cache file with members, a points service over it, baskets with known margins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from config.points import PointsConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.points import codec
from edge_agent.domain.points.event import LedgerEvent
from edge_agent.domain.points_rules.returns import ReturnedLine
from edge_agent.domain.promotion import Member
from edge_agent.points import balances
from edge_agent.points.outcomes import Return, Sale
from edge_agent.points.service import PointsService
from tests.cache.factories import NOW, STORE

BOX = "box-001"
# 60% margin: band A. 2 x 10.00 earns 20 x 5 = 100 points.
BAND_A = BasketLine(sku="A-1", category="food", quantity=2, unit_price=1000, unit_cost=400)
# 10% margin: band C, earns nothing; burnable down to cost: 3.00 off, 250 points at 1.2x.
BAND_C = BasketLine(sku="C-1", category="food", quantity=3, unit_price=1000, unit_cost=900)
BASKET = Basket(lines=(BAND_A, BAND_C))


def open_cache(path: Path) -> CodeCache:
    cache = CodeCache.open(path, store_id=STORE, box_id=BOX)
    cache.put_member(Member(member_id="M1", tier="standard"))
    cache.put_member(Member(member_id="M2", tier="gold"))
    return cache


def service(cache: CodeCache, **burn: Any) -> PointsService:
    cfg = PointsConfig.model_validate(
        {"enabled": True, "rules": {"tier_multipliers": {"gold": 2.0}}, "burn": burn}
    )
    return PointsService(cache, policy=cfg.to_policy(), programme=cfg.programme)


def sale(
    txn: str = "T-1",
    *,
    member: str = "M1",
    basket: Basket = BASKET,
    burn: int | None = None,
    till: str = "till-1",
) -> Sale:
    return Sale(
        till_id=till,
        transaction_id=txn,
        cashier_id="c-1",
        member_id=member,
        basket=basket,
        burn_points=burn,
        now=NOW,
    )


def give_back(
    return_id: str, txn: str = "T-1", *lines: tuple[int, int], till: str = "till-1"
) -> Return:
    return Return(
        till_id=till,
        return_id=return_id,
        sale_till_id="till-1",
        transaction_id=txn,
        cashier_id="c-1",
        lines=tuple(ReturnedLine(index=i, quantity=q) for i, q in lines),
        now=NOW,
    )


def hq_says(cache: CodeCache, member: str, balance: int, marks: str) -> None:
    with cache.transaction() as conn:
        balances.put(
            conn, member_id=member, programme="main", balance=balance, marks=marks, box_id=BOX
        )


def count(cache: CodeCache, table: str) -> int:
    return int(cache.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def posted(cache: CodeCache) -> list[tuple[int, dict[str, Any], LedgerEvent]]:
    """Every points.posted event in the outbox: (seq, details, the decoded ledger event)."""
    out = []
    for seq, payload in cache.conn.execute("SELECT seq, payload FROM outbox ORDER BY seq"):
        doc = json.loads(payload)
        if doc["type"] == "points.posted":
            out.append((int(seq), doc["details"], codec.decode(doc["details"]["ledger"])))
    return out
