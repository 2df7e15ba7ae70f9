"""Builders for the points rules tests: the default rules, a member, lines with a cost."""

from __future__ import annotations

from datetime import UTC, datetime

from edge_agent.domain.basket import BasketLine
from edge_agent.domain.points_rules.burn import BurnRules
from edge_agent.domain.points_rules.earn import EarnPolicy, EarnRules
from edge_agent.domain.promotion import Member

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
KEY = b"test-exposure-key"
MEMBER = Member(member_id="M-1", tier="standard")
RULES = EarnRules(version="v1")
POLICY = EarnPolicy(rules=RULES, exposure_key=KEY)
BURN = BurnRules()


def costed(
    sku: str, unit_price: int, unit_cost: int, quantity: int = 1, category: str = "grocery"
) -> BasketLine:
    return BasketLine(
        sku=sku, category=category, quantity=quantity, unit_price=unit_price, unit_cost=unit_cost
    )


def banded(sku: str, unit_price: int, band: str, quantity: int = 1) -> BasketLine:
    return BasketLine(
        sku=sku, category="grocery", quantity=quantity, unit_price=unit_price, margin_band=band
    )
