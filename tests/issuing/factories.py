"""Builders for the issuing tests: a cache with the default receipt campaigns, a service, a
checkout, and members known to fall in or out of a cohort's holdout."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from config.receipt_offers import ReceiptOffersConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain import holdout
from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.code_format import CodeFormat
from edge_agent.domain.coupon_token import CouponClaims
from edge_agent.domain.offer_policy import DEFAULT_CAMPAIGN_IDS, OfferPolicy
from edge_agent.domain.promotion import Member, Promotion
from edge_agent.domain.receipt_campaigns import default_receipt_campaigns
from edge_agent.issuing.outcome import Checkout, IssuedCoupon
from edge_agent.issuing.service import IssueService
from tests.cache import factories as store_factories

FMT = CodeFormat(prefix="SS")
NAMESPACE = "23"  # the store's, from HQ's registry ("22" is HQ's own first namespace)
STORE = "S1"
NOW = datetime(2025, 3, 1, 12, 0, 30, 123_456, tzinfo=UTC)
BASKET = Basket(
    lines=(
        BasketLine(sku="milk", category="dairy", quantity=2, unit_price=149),
        BasketLine(sku="tea", category="drinks", quantity=1, unit_price=450),
    )
)
CAMPAIGN_START = NOW - timedelta(days=10)
CAMPAIGN_END = NOW + timedelta(days=90)


def policy(**config: Any) -> OfferPolicy:
    return ReceiptOffersConfig(**config).to_policy()


def sign(claims: CouponClaims) -> str:
    """A deterministic stand-in for the store's signer: the claims, readable."""
    member = claims.member_id or "-"
    return (
        f"T1.{claims.code}.{claims.campaign_id}.{member}.{claims.store_id}."
        f"{int(claims.issued_at.timestamp())}.{int(claims.expires_at.timestamp())}"
    )


def member_id(
    segment: str, *, held_out: bool, pol: OfferPolicy | None = None, skip: int = 0
) -> str:
    """The ``skip``-th member id of the form ``<segment>-N`` that is (or is not) in the holdout
    of ``segment``'s default cohort."""
    pol = pol or policy()
    rule = pol.rule_for(segment)
    cohort = rule.cohort if rule is not None else DEFAULT_CAMPAIGN_IDS[segment]
    found = 0
    for n in itertools.count():
        candidate = f"{segment}-{n}"
        if (
            holdout.in_holdout(
                key=pol.holdout_key, cohort=cohort, subject=candidate, share_bp=pol.holdout_bp
            )
            == held_out
        ):
            if found == skip:
                return candidate
            found += 1
    raise AssertionError("unreachable")


def open_cache(
    path: Path,
    *,
    members: tuple[Member, ...] = (),
    namespace: str = NAMESPACE,
    campaigns: tuple[Promotion, ...] | None = None,
) -> CodeCache:
    """A cache loaded from a real snapshot carrying the receipt campaigns, ``members`` and
    the store's minting ``namespace`` ('' for none), as HQ ships them."""
    cache = CodeCache.open(path, store_id=STORE)
    snapshot = store_factories.write_snapshot(
        path.with_name(f"{path.stem}.snapshot.db"),
        store_id=STORE,
        campaigns=campaigns
        if campaigns is not None
        else default_receipt_campaigns(starts_at=CAMPAIGN_START, ends_at=CAMPAIGN_END),
        members=members,
        namespace=namespace,
    )
    cache.load_snapshot(snapshot)
    return cache


class HookLog:
    """An ``on_issued`` hook that writes a row in the issue's own transaction (as the print
    queue does) and remembers its calls."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[IssuedCoupon] = []
        self.fail = fail

    def __call__(self, conn: sqlite3.Connection, coupon: IssuedCoupon) -> None:
        assert conn.in_transaction
        conn.execute("INSERT INTO hook_rows (code) VALUES (?)", (coupon.code,))
        self.calls.append(coupon)
        if self.fail:
            raise RuntimeError("printer queue refused the job")

    @staticmethod
    def install(cache: CodeCache) -> None:
        cache.conn.execute("CREATE TABLE IF NOT EXISTS hook_rows (code TEXT NOT NULL)")


def service(
    cache: CodeCache,
    *,
    pol: OfferPolicy | None = None,
    on_issued: Callable[[sqlite3.Connection, IssuedCoupon], None] | None = None,
    mint: Callable[[], str] | None = None,
    signer: Callable[[CouponClaims], str] = sign,
) -> IssueService:
    return IssueService(
        cache,
        fmt=FMT,
        policy=pol or policy(),
        sign=signer,
        on_issued=on_issued,
        mint=mint,
    )


def checkout(
    txn: str = "T-1",
    *,
    member: str | None,
    now: datetime = NOW,
    basket: Basket = BASKET,
    till: str = "till-3",
    cashier: str = "c-7",
) -> Checkout:
    return Checkout(
        transaction_id=txn,
        till_id=till,
        cashier_id=cashier,
        basket=basket,
        now=now,
        member_id=member,
    )


def count(cache: CodeCache, table: str) -> int:
    return int(cache.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
