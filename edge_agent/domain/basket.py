"""The till's basket as the POS sends it. Money is always integer minor units (cents)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class BasketLine:
    sku: str
    category: str
    quantity: int
    unit_price: int  # minor units, after any price already applied at the shelf
    margin_band: str = "B"  # A (>= 45%), B, C (<= 15%): DOMAIN.md section 5
    # Minor units per unit, when the POS sends it. Points rules need it to keep burn above the
    # margin floor exactly; without it they trust margin_band and assume its worst margin
    # (edge_agent/domain/points_rules/margin.py).
    unit_cost: int | None = None

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True, slots=True, kw_only=True)
class Basket:
    lines: tuple[BasketLine, ...] = ()

    @property
    def total(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedPromotion:
    """A promotion the POS already applied (store sale, tier discount...), not one of our codes."""

    name: str
    stacking_class: str
    discount: int = 0  # minor units already taken off the basket
