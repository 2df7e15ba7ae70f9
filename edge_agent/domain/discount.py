"""Discount arithmetic on a basket: integer minor units only, deterministic rounding.

Theory of operation
-------------------
A code's discount is computed on what is *left to pay* on each line (``remaining``, after the
discounts of promotions applied earlier in the same basket) and on how many units of each line
are still free to be claimed by a per-unit benefit (``units_left``: a free item or a bundle
takes one unit of each line it uses, so two "free coffee" codes cannot both take the one coffee).

* ``percent_off``: ``value`` basis points of the remaining eligible amount, computed once on the
  sum (not per line, so rounding error never accumulates) and rounded **half up** to the minor
  unit: ``(amount * bp + 5000) // 10000``.
* ``fixed_off``: ``value``, never more than the remaining eligible amount.
* ``free_item``: one unit of ``free_sku`` (the first basket line with that SKU that still has a
  unit and money left).
* ``bundle_price``: one unit of each of ``bundle_skus`` together cost ``value``: the discount is
  the sum of their unit prices minus ``value``. One application is one bundle; a code that may be
  used twice in a transaction (``uses_per_transaction``) can discount a second bundle.

Then ``benefit.max_discount`` caps it, and finally ``headroom`` (what is left to pay on the whole
basket after the POS's own promotions and earlier codes) does. A discount of zero is no discount:
the caller refuses the code rather than burn it for nothing. A percentage that rounds to zero on
items that do qualify (1% of 0.49) says so (``rounds_to_zero``), with the eligible amount: it is
not the same fault as a basket with nothing eligible in it.

The amount is spread over the lines it came from in proportion to what each could give
(largest-remainder method, ties to the earlier line), so the shares are integers, never exceed a
line's remaining amount, and sum exactly to the discount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.domain.basket import BasketLine
from edge_agent.domain.promotion import BenefitKind, Promotion

BASIS_POINTS = 10_000


@dataclass(frozen=True, slots=True)
class Share:
    """A computed discount: the amount, its split per basket line, and the units it consumes."""

    amount: int
    lines: tuple[tuple[int, int], ...]  # (line index, minor units), non-zero shares only
    units: tuple[int, ...] = ()  # line indices of which this application takes one unit


@dataclass(frozen=True, slots=True)
class NoDiscount:
    """Why a benefit yields nothing on this basket; ``why`` is a stable token for details."""

    why: str
    missing_skus: tuple[str, ...] = ()
    eligible_amount: int = 0  # for ``rounds_to_zero``: what the percentage was taken of


def percent_of(amount: int, basis_points: int) -> int:
    """``basis_points`` of ``amount``, rounded half up to the minor unit (amount >= 0)."""
    return (amount * basis_points + BASIS_POINTS // 2) // BASIS_POINTS


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` over ``weights`` proportionally (largest remainder, ties to the earlier).

    Requires ``0 <= total <= sum(weights)`` and non-negative weights; then every share is at most
    its weight and the shares sum to ``total`` exactly.
    """
    whole = sum(weights)
    if whole <= 0 or total <= 0:
        return [0] * len(weights)
    shares = []
    remainders = []
    given = 0
    for index, weight in enumerate(weights):
        share, rem = divmod(total * weight, whole)
        shares.append(share)
        given += share
        if rem:
            remainders.append((-rem, index))
    left = total - given
    if left:
        # Each remainder is < whole, so at most len(remainders) - 1 units are left over.
        remainders.sort()
        for _, index in remainders[:left]:
            shares[index] += 1
    return shares


def _spread(
    amount: int, indices: Sequence[int], weights: Sequence[int]
) -> tuple[tuple[int, int], ...]:
    if len(indices) == 1:
        return ((indices[0], amount),)
    parts = allocate(amount, weights)
    return tuple((i, part) for i, part in zip(indices, parts, strict=True) if part)


def compute(
    promotion: Promotion,
    lines: Sequence[BasketLine],
    remaining: Sequence[int],
    units_left: Sequence[int],
    headroom: int,
) -> Share | NoDiscount:
    """The discount ``promotion`` gives on ``lines`` given what earlier promotions left."""
    benefit = promotion.benefit
    kind = benefit.kind
    indices: list[int] = []
    weights: list[int] = []
    units: tuple[int, ...] = ()
    if kind is BenefitKind.PERCENT_OFF or kind is BenefitKind.FIXED_OFF:
        seen = False
        for i, line in enumerate(lines):
            if line.quantity > 0 and promotion.line_is_eligible(line.sku, line.category):
                seen = True
                if remaining[i] > 0:
                    indices.append(i)
                    weights.append(remaining[i])
        if not indices:
            return NoDiscount("fully_discounted" if seen else "no_eligible_lines")
        pool = sum(weights)
        if kind is BenefitKind.PERCENT_OFF:
            raw = percent_of(pool, min(benefit.value, BASIS_POINTS))
        else:
            raw = benefit.value
    elif kind is BenefitKind.FREE_ITEM:
        sku = benefit.free_sku
        present = False
        for i, line in enumerate(lines):
            if line.sku == sku and line.quantity > 0:
                present = True
                if units_left[i] > 0 and remaining[i] > 0:
                    indices.append(i)
                    weights.append(min(line.unit_price, remaining[i]))
                    break
        if not indices:
            missing = (sku,) if sku else ()
            return NoDiscount("already_discounted" if present else "free_item_missing", missing)
        raw = pool = weights[0]
        units = (indices[0],)
    else:  # BUNDLE_PRICE
        missing_skus: list[str] = []
        gross = 0
        for sku in dict.fromkeys(benefit.bundle_skus):
            for i, line in enumerate(lines):
                if line.sku == sku and units_left[i] > 0 and remaining[i] > 0:
                    indices.append(i)
                    weights.append(min(line.unit_price, remaining[i]))
                    gross += line.unit_price
                    break
            else:
                missing_skus.append(sku)
        if missing_skus or not indices:
            return NoDiscount("bundle_incomplete", tuple(missing_skus))
        raw = gross - benefit.value
        units = tuple(indices)
        if raw <= 0:
            return NoDiscount("bundle_saves_nothing")
        pool = sum(weights)
    amount = min(raw, pool, headroom)
    if benefit.max_discount is not None:
        amount = min(amount, benefit.max_discount)
    if amount <= 0:
        return _nothing(kind, pool=pool, headroom=headroom)
    return Share(amount, _spread(amount, indices, weights), units)


def _nothing(kind: BenefitKind, *, pool: int, headroom: int) -> NoDiscount:
    """Why a computed discount came to zero or less."""
    if headroom <= 0:
        return NoDiscount("fully_discounted")
    if kind is BenefitKind.PERCENT_OFF and pool > 0:
        return NoDiscount("rounds_to_zero", eligible_amount=pool)
    return NoDiscount("no_value")


def format_money(minor: int, decimals: int = 2) -> str:
    """``1234`` -> ``"12.34"``: integer arithmetic only, never float."""
    sign = "-" if minor < 0 else ""
    if decimals <= 0:
        return f"{sign}{abs(minor)}"
    major, rest = divmod(abs(minor), 10**decimals)
    return f"{sign}{major}.{rest:0{decimals}d}"
