"""Campaigns and the promotion a code unlocks: benefit, conditions, budgets, stacking, limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class BenefitKind(StrEnum):
    PERCENT_OFF = "percent_off"  # value: basis points (1000 = 10%)
    FIXED_OFF = "fixed_off"  # value: minor units off the eligible lines
    FREE_ITEM = "free_item"  # free_sku: one unit of it is free (must be in the basket)
    BUNDLE_PRICE = "bundle_price"  # bundle_skus bought together cost value minor units


@dataclass(frozen=True, slots=True, kw_only=True)
class Benefit:
    kind: BenefitKind
    value: int = 0
    free_sku: str | None = None
    bundle_skus: tuple[str, ...] = ()
    max_discount: int | None = None  # cap in minor units, None = uncapped


@dataclass(frozen=True, slots=True, kw_only=True)
class StackingRule:
    """Explicit stacking (DOMAIN.md section 1): never implicit.

    ``exclusive`` promotions combine with nothing. Otherwise a promotion combines only with the
    classes named in ``combines_with``; both sides must allow it. ``order`` sets the sequence of
    application (lower first): each later discount is computed on what the earlier ones left.
    """

    stacking_class: str
    exclusive: bool = False
    combines_with: frozenset[str] = frozenset()
    order: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Use limits. For a member-bound single-use code ``total_uses_per_code`` is 1."""

    total_uses_per_code: int | None = 1
    uses_per_member: int | None = None  # per code, per member (generic codes)
    uses_per_transaction: int = 1  # how many times one transaction may apply the code
    member_velocity_count: int | None = None  # at most N redemptions by a member...
    member_velocity_window: timedelta = timedelta(hours=24)  # ...in this rolling window


@dataclass(frozen=True, slots=True, kw_only=True)
class OfflinePolicy:
    """How stale this store's cache may be before an online check is required."""

    max_cache_age: timedelta = timedelta(hours=24)
    high_value_threshold: int | None = None  # discounts at/above this need fresh data
    # Codes with no use cap or no money cap are riskier offline; they get this shorter bound.
    uncapped_max_cache_age: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Promotion:
    campaign_id: str
    name: str
    benefit: Benefit
    stacking: StackingRule
    starts_at: datetime
    ends_at: datetime
    min_spend: int = 0
    min_quantity: int = 0
    eligible_skus: frozenset[str] = frozenset()  # empty = every SKU...
    eligible_categories: frozenset[str] = frozenset()  # ...unless categories narrow it
    eligible_segments: frozenset[str] = frozenset()  # empty = every segment
    allowed_stores: frozenset[str] = frozenset()  # empty = every store
    requires_member: bool = False
    budget_count: int | None = None
    budget_money: int | None = None
    store_allocation: int | None = None  # this store's share of budget_count
    limits: Limits = field(default_factory=Limits)
    offline: OfflinePolicy = field(default_factory=OfflinePolicy)
    active: bool = True  # HQ can withdraw a whole campaign

    def line_is_eligible(self, sku: str, category: str) -> bool:
        if not self.eligible_skus and not self.eligible_categories:
            return True
        return sku in self.eligible_skus or category in self.eligible_categories


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    member_id: str
    segment: str = "loyal"
    tier: str = "standard"
    proximity_consent: bool = False
