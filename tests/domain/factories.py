"""Builders for domain tests: a valid baseline that each test bends in one place."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from edge_agent.domain.basket import AppliedPromotion, Basket, BasketLine
from edge_agent.domain.code_format import CodeFormat, make_code, namespace_string
from edge_agent.domain.code_record import CodeFacts, CodeRecord, UsageFacts
from edge_agent.domain.decision import Audience, Decision, ValidationRequest
from edge_agent.domain.promotion import (
    Benefit,
    BenefitKind,
    Limits,
    Member,
    OfflinePolicy,
    Promotion,
    StackingRule,
)
from edge_agent.domain.validation import evaluate

FMT = CodeFormat(prefix="SS")
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
SYNCED = NOW - timedelta(minutes=5)
MEMBER = "M-1"


def code(random_part: str, namespace: int = 0) -> str:
    """A valid canonical code with the given 6-symbol random part."""
    return make_code(FMT, namespace_string(namespace, FMT), random_part)


def line(sku: str, unit_price: int, quantity: int = 1, category: str = "grocery") -> BasketLine:
    return BasketLine(sku=sku, category=category, quantity=quantity, unit_price=unit_price)


BASKET = Basket(
    lines=(
        line("MILK", 250, 2, "dairy"),
        line("BREAD", 300, 1, "bakery"),
        line("COFFEE", 450, 1, "drinks"),
        line("APPLE", 60, 5, "fruit"),
    )
)  # total 500 + 300 + 450 + 300 = 1550


def promotion(**changes: object) -> Promotion:
    base = Promotion(
        campaign_id="C1",
        name="Spring ten",
        benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=1000),
        stacking=StackingRule(
            stacking_class="member_coupon",
            combines_with=frozenset({"tier_discount", "member_coupon"}),
        ),
        starts_at=NOW - timedelta(days=7),
        ends_at=NOW + timedelta(days=7),
        limits=Limits(),
        offline=OfflinePolicy(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def facts(
    the_code: str,
    promo: Promotion | None = None,
    *,
    member_id: str | None = MEMBER,
    usage: UsageFacts | None = None,
    member: Member | None = None,
    **record_changes: object,
) -> CodeFacts:
    record = CodeRecord(code=the_code, campaign_id="C1", member_id=member_id)
    record = replace(record, **record_changes)  # type: ignore[arg-type]
    return CodeFacts(
        record=record,
        promotion=promo if promo is not None else promotion(),
        member=member if member is not None else Member(member_id=MEMBER),
        usage=usage if usage is not None else UsageFacts(),
    )


def request(
    *codes: str,
    basket: Basket = BASKET,
    member_id: str | None = MEMBER,
    applied: tuple[AppliedPromotion, ...] = (),
    audience: Audience = Audience.CASHIER,
    store_id: str = "S1",
    transaction_id: str | None = "T-100",
    now: datetime = NOW,
) -> ValidationRequest:
    return ValidationRequest(
        codes=codes,
        store_id=store_id,
        till_id="TILL-1",
        cashier_id="CASHIER-1",
        basket=basket,
        now=now,
        member_id=member_id,
        transaction_id=transaction_id,
        applied=applied,
        audience=audience,
    )


def run(
    req: ValidationRequest,
    known: dict[str, CodeFacts],
    synced: datetime | None = SYNCED,
) -> tuple[Decision, ...]:
    return evaluate(req, known, fmt=FMT, store_cache_synced_at=synced)


def one(
    req: ValidationRequest, known: dict[str, CodeFacts], synced: datetime | None = SYNCED
) -> Decision:
    (decision,) = run(req, known, synced)
    return decision
