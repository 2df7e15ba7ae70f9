"""A basket line's margin band, and how deep a discount its margin floor allows.

Theory of operation
-------------------
Margin is gross margin on the selling price, in basis points, rounded down (towards the worse
margin, the safe side for a floor)::

    margin_bp = floor((unit_price - unit_cost) * 10000 / unit_price)

The bands are DOMAIN.md section 5's: A when ``margin_bp >= a_min_bp`` (45%), C when
``margin_bp <= c_max_bp`` (15%), B in between. Both thresholds are configurable.

Where the margin comes from. The POS sends either a ``unit_cost`` per line (preferred) or only a
``margin_band``. With a cost the band is derived from it (the cost wins over a band the POS also
sent, so the two cannot disagree silently) and the margin is exact. Without a cost the band is
trusted and the margin is *assumed at the band's worst*: A at ``a_min_bp``, B at ``c_max_bp``,
C unknown (a clearance line may already sell at a loss). A negative cost is nonsense and is
treated as no cost. A band label other than A/B/C is read as C: it earns nothing and cannot be
discounted, so a typo can only cost the programme nothing.

The floor. A discount ``d`` on a line of total ``T`` and cost ``K`` keeps the margin at or above
``floor_bp`` when ``(T - d - K) * 10000 >= floor_bp * (T - d)``, that is when the net
``T - d >= ceil(K * 10000 / (10000 - floor_bp))``. ``max_discount`` is the largest such ``d`` in
``[0, T]``. Without a known cost ``K`` is the assumed one, rounded up; an unknown margin (band C
without a cost) allows no discount at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from edge_agent.domain.basket import BasketLine

BP = 10_000  # basis points in one whole


class MarginBand(StrEnum):
    A = "A"
    B = "B"
    C = "C"


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginBands:
    a_min_bp: int = 4_500  # band A: margin >= 45%
    c_max_bp: int = 1_500  # band C: margin <= 15%

    def __post_init__(self) -> None:
        if not 0 <= self.c_max_bp < self.a_min_bp <= BP:
            raise ValueError(
                f"need 0 <= c_max_bp ({self.c_max_bp}) < a_min_bp ({self.a_min_bp}) <= {BP}"
            )

    def band_of(self, margin_bp: int) -> MarginBand:
        if margin_bp >= self.a_min_bp:
            return MarginBand.A
        if margin_bp <= self.c_max_bp:
            return MarginBand.C
        return MarginBand.B


@dataclass(frozen=True, slots=True, kw_only=True)
class LineMargin:
    band: MarginBand
    margin_bp: int | None  # exact (cost known), assumed (band's worst), or None (unknown)
    cost_known: bool


def margin_bp(unit_price: int, unit_cost: int) -> int | None:
    """Gross margin in basis points, floored; None when the price is not positive."""
    if unit_price <= 0:
        return None
    return (unit_price - unit_cost) * BP // unit_price


def assess(line: BasketLine, bands: MarginBands) -> LineMargin:
    """The line's band and margin (see the module docstring for where they come from)."""
    if line.unit_cost is not None and line.unit_cost >= 0:
        exact = margin_bp(line.unit_price, line.unit_cost)
        band = MarginBand.C if exact is None else bands.band_of(exact)
        return LineMargin(band=band, margin_bp=exact, cost_known=True)
    try:
        band = MarginBand(line.margin_band)
    except ValueError:
        band = MarginBand.C
    assumed = {MarginBand.A: bands.a_min_bp, MarginBand.B: bands.c_max_bp}.get(band)
    return LineMargin(band=band, margin_bp=assumed, cost_known=False)


def max_discount(line: BasketLine, margin: LineMargin, floor_bp: int) -> int:
    """The deepest discount (minor units) on the whole line that keeps margin >= ``floor_bp``."""
    if not 0 <= floor_bp < BP:
        raise ValueError(f"margin floor must be 0..{BP - 1} basis points, got {floor_bp}")
    total = line.total
    if total <= 0 or line.quantity <= 0 or margin.margin_bp is None:
        return 0
    if margin.cost_known and line.unit_cost is not None:
        cost = line.quantity * line.unit_cost
    else:
        cost = -(-total * (BP - margin.margin_bp) // BP)  # assumed cost, rounded up
    min_net = -(-cost * BP // (BP - floor_bp))
    return max(0, total - max(0, min_net))
