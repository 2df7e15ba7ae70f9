"""Burn at checkout: points as tender, within the margin floor and the member's availability.

Theory of operation
-------------------
**Value.** ``points_per_unit`` points pay one currency unit (``minor_per_unit`` minor units) at
face value. On band C lines a point is worth ``clearance_value_bp`` / 10000 of that (1.2x by
default, DOMAIN.md section 5: it clears stock). The money a line's ``p`` points take off is::

    discount(p) = floor(p * minor_per_unit * value_bp / (points_per_unit * 10000))

rounded down: points as tender never pay more than their value (at most one minor unit per line
is lost to rounding, and the line caps below are chosen so it usually is not).

**Caps per line.** A line may be discounted only as far as its margin stays at or above the
floor: ``margin_floor_bp`` on bands A and B, ``clearance_floor_bp`` on band C (default 0: clear at
cost, never below). ``margin.max_discount`` gives the money cap; the point cap is the most points
whose discount fits in it: ``floor(cap * points_per_unit * 10000 / (minor_per_unit * value_bp))``.
A line whose margin is unknown (band C without a cost) has cap 0.

**The plan.** ``eligible`` = sum of the point caps; ``max_burnable = min(eligible, available)``
(``offline_bound``). The points granted, ``min(requested, max_burnable)``, are allocated line by
line, the most valuable point first (band C's 1.2x), then by basket position, each line up to its
cap: deterministic, and the member gets the most money for the points.

**Why not more.** When fewer points are granted than asked, ``shortfall`` names the binding limit
with the numbers the cashier needs: the balance side if ``available <= eligible``
(``OFFLINE_ALLOWANCE_EXCEEDED`` when an allowance was counted, else ``INSUFFICIENT_BALANCE``),
otherwise the basket side (``NOTHING_ELIGIBLE`` when no line can take a point, else
``MARGIN_FLOOR``). A negative request is ``INVALID_REQUEST`` and grants nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.points_rules.margin import (
    BP,
    MarginBand,
    MarginBands,
    assess,
    max_discount,
)
from edge_agent.domain.points_rules.offline_bound import Availability


class BurnLimit(StrEnum):
    INSUFFICIENT_BALANCE = "insufficient_balance"
    OFFLINE_ALLOWANCE_EXCEEDED = "offline_allowance_exceeded"
    MARGIN_FLOOR = "margin_floor"
    NOTHING_ELIGIBLE = "nothing_eligible"
    INVALID_REQUEST = "invalid_request"


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnRules:
    points_per_unit: int = 100  # points worth one currency unit at face value
    minor_per_unit: int = 100  # minor units in one currency unit
    margin_floor_bp: int = 1_000  # bands A and B keep at least 10% margin
    clearance_floor_bp: int = 0  # band C: down to cost, never below
    clearance_value_bp: int = 12_000  # band C points worth 1.2x face
    bands: MarginBands = field(default_factory=MarginBands)

    def __post_init__(self) -> None:
        if min(self.points_per_unit, self.minor_per_unit, self.clearance_value_bp) <= 0:
            raise ValueError("points_per_unit, minor_per_unit and clearance_value_bp must be > 0")

    def value_bp(self, band: MarginBand) -> int:
        return self.clearance_value_bp if band is MarginBand.C else BP

    def floor_bp(self, band: MarginBand) -> int:
        return self.clearance_floor_bp if band is MarginBand.C else self.margin_floor_bp

    def discount(self, points: int, band: MarginBand) -> int:
        """Money (minor units) ``points`` take off a line of ``band``, rounded down."""
        return (points * self.minor_per_unit * self.value_bp(band)) // (self.points_per_unit * BP)

    def points_for(self, money: int, band: MarginBand) -> int:
        """The most points whose discount on a ``band`` line is at most ``money``."""
        return (money * self.points_per_unit * BP) // (self.minor_per_unit * self.value_bp(band))


@dataclass(frozen=True, slots=True, kw_only=True)
class LineCap:
    index: int  # position in the basket
    sku: str
    band: MarginBand
    margin_bp: int | None
    floor_bp: int
    max_discount: int  # minor units the floor allows
    max_points: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LineBurn:
    index: int
    sku: str
    quantity: int
    band: MarginBand
    points: int
    discount: int  # minor units these points take off the line


@dataclass(frozen=True, slots=True, kw_only=True)
class Shortfall:
    reason: BurnLimit
    requested: int
    granted: int
    eligible: int  # what the basket's margin floors allow
    availability: Availability  # what the member may spend, and why


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnPlan:
    requested: int | None  # None: as many as possible
    granted: int
    max_burnable: int
    eligible: int
    availability: Availability
    caps: tuple[LineCap, ...]
    lines: tuple[LineBurn, ...]  # lines that take points, in basket order
    shortfall: Shortfall | None

    @property
    def discount(self) -> int:
        return sum(line.discount for line in self.lines)

    def discount_by_line(self) -> dict[int, int]:
        return {line.index: line.discount for line in self.lines}


def line_cap(rules: BurnRules, index: int, line: BasketLine) -> LineCap:
    margin = assess(line, rules.bands)
    floor = rules.floor_bp(margin.band)
    money = max_discount(line, margin, floor)
    return LineCap(
        index=index,
        sku=line.sku,
        band=margin.band,
        margin_bp=margin.margin_bp,
        floor_bp=floor,
        max_discount=money,
        max_points=rules.points_for(money, margin.band),
    )


def plan_burn(
    rules: BurnRules, basket: Basket, available: Availability, requested: int | None = None
) -> BurnPlan:
    """What may be burned on ``basket``, how it is spread, and why not more (module docstring)."""
    caps = tuple(line_cap(rules, i, line) for i, line in enumerate(basket.lines))
    eligible = sum(c.max_points for c in caps)
    max_burnable = min(eligible, available.available)
    want = max_burnable if requested is None else max(0, requested)
    granted = min(want, max_burnable)
    remaining = granted
    allocated: dict[int, int] = {}
    for cap in sorted(caps, key=lambda c: (-rules.value_bp(c.band), c.index)):
        take = min(remaining, cap.max_points)
        if take > 0:
            allocated[cap.index] = take
            remaining -= take
    lines = tuple(
        LineBurn(
            index=c.index,
            sku=c.sku,
            quantity=basket.lines[c.index].quantity,
            band=c.band,
            points=allocated[c.index],
            discount=rules.discount(allocated[c.index], c.band),
        )
        for c in caps
        if c.index in allocated
    )
    shortfall = None
    if requested is not None and (requested < 0 or granted < requested):
        shortfall = Shortfall(
            reason=_reason(requested, eligible, available),
            requested=requested,
            granted=granted,
            eligible=eligible,
            availability=available,
        )
    return BurnPlan(
        requested=requested,
        granted=granted,
        max_burnable=max_burnable,
        eligible=eligible,
        availability=available,
        caps=caps,
        lines=lines,
        shortfall=shortfall,
    )


def _reason(requested: int, eligible: int, available: Availability) -> BurnLimit:
    if requested < 0:
        return BurnLimit.INVALID_REQUEST
    if available.available <= eligible:
        if available.allowance > 0:
            return BurnLimit.OFFLINE_ALLOWANCE_EXCEEDED
        return BurnLimit.INSUFFICIENT_BALANCE
    return BurnLimit.NOTHING_ELIGIBLE if eligible == 0 else BurnLimit.MARGIN_FLOOR
