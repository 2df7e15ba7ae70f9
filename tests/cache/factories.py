"""Builders shared by the store tests: a format, a promotion, codes, requests, snapshot files."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud_sync.contract.snapshot_format import ddl_script
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.code_format import CodeFormat, make_code
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.decision import ValidationRequest
from edge_agent.domain.promotion import (
    Benefit,
    BenefitKind,
    Limits,
    Member,
    Promotion,
    StackingRule,
)
from edge_agent.domain.promotion_codec import promotion_to_dict

FMT = CodeFormat(prefix="SS")
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
STORE = "S1"
BASKET = Basket(lines=(BasketLine(sku="SKU1", category="food", quantity=2, unit_price=1500),))


def code(random_part: str, namespace: str = "K7") -> str:
    return make_code(FMT, namespace, random_part)


A = code("HQ2P9X")
B = code("K7M4RT")
G = code("GENRC2")  # a generic (shared) code


def promotion(campaign_id: str = "C1", **changes: object) -> Promotion:
    base = Promotion(
        campaign_id=campaign_id,
        name="Spring coupon",
        benefit=Benefit(kind=BenefitKind.FIXED_OFF, value=500),
        stacking=StackingRule(stacking_class="coupon"),
        starts_at=NOW - timedelta(days=30),
        ends_at=NOW + timedelta(days=30),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def generic_promotion() -> Promotion:
    return promotion(
        "G1",
        limits=Limits(total_uses_per_code=3, uses_per_member=2),
        budget_money=10_000,
    )


def records() -> list[CodeRecord]:
    return [
        CodeRecord(code=A, campaign_id="C1", member_id="M1", issued_at=NOW - timedelta(days=1)),
        CodeRecord(code=B, campaign_id="C1", member_id="M2", expires_at=NOW + timedelta(days=3)),
        CodeRecord(code=G, campaign_id="G1", member_id=None, channel="influencer"),
    ]


def open_cache(path: Path, *, synced_at: datetime | None = NOW - timedelta(minutes=1)) -> CodeCache:
    cache = CodeCache.open(path, store_id=STORE)
    cache.put_campaign(promotion())
    cache.put_campaign(generic_promotion())
    cache.put_member(Member(member_id="M1", segment="loyal"))
    cache.put_member(Member(member_id="M2", segment="champion"))
    cache.put_codes(records())
    if synced_at is not None:
        cache.set_synced_at(synced_at)
    return cache


def req(
    *codes: str,
    txn: str | None = "T-1",
    till: str = "till-1",
    member: str | None = "M1",
    now: datetime = NOW,
    basket: Basket = BASKET,
) -> ValidationRequest:
    return ValidationRequest(
        codes=codes,
        store_id=STORE,
        till_id=till,
        cashier_id="cashier-1",
        basket=basket,
        now=now,
        member_id=member,
        transaction_id=txn,
    )


def write_snapshot(
    path: Path,
    *,
    created_at: str = "2025-03-01T11:00:00+00:00",
    store_id: str = "*",
    campaigns: Iterable[Promotion] = (),
    members: Iterable[Member] = (),
    codes: Iterable[tuple[object, ...]] = (),
    format_version: str = "2",
    namespace: str = "",
) -> Path:
    """A snapshot file in the agreed format (see snapshot_load.py); ``namespace`` is the
    store's minting namespace ('' for none)."""
    conn = sqlite3.connect(path)
    conn.executescript(ddl_script())
    conn.executemany(
        "INSERT INTO snapshot_meta VALUES (?, ?)",
        [
            ("format_version", format_version),
            ("created_at", created_at),
            ("store_id", store_id),
            ("namespace", namespace),
        ],
    )
    conn.executemany(
        "INSERT INTO campaigns VALUES (?, ?)",
        [(p.campaign_id, json.dumps(promotion_to_dict(p))) for p in campaigns],
    )
    conn.executemany(
        "INSERT INTO members VALUES (?, ?, ?, ?)",
        [(m.member_id, m.segment, m.tier, int(m.proximity_consent)) for m in members],
    )
    conn.executemany("INSERT INTO codes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", list(codes))
    conn.commit()
    conn.close()
    return path


def code_row(c: str, campaign_id: str = "C1", member_id: str | None = "M1") -> tuple[object, ...]:
    return (c, campaign_id, member_id, "active", "app", "A", None, None, None)
