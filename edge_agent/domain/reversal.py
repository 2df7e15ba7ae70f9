"""The rules of a return: how much of a redeemed discount it gives back, and whether the use too.

Pure: the redemption's figures in, a plan out; ``redemption/reversals.py`` carries it out in one
transaction with its event.

* A return gives back the amount asked, or everything left when no amount is named.
* It may not give back more than is left, nor anything once the redemption is fully reversed.
* When the returns add up to the whole discount the redemption is *fully* reversed: the use
  goes back as well (the code, member, campaign and store counts drop by one and a single-use
  code may be used again). Until then only money goes back (the campaign's money budget): the
  coupon was still used on what the customer kept.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReversalPlan:
    amount: int  # minor units this return gives back
    remaining: int  # minor units of the discount left after it
    full: bool  # the use goes back too


@dataclass(frozen=True, slots=True)
class TooLarge:
    """Refused: more was asked than is left (``remaining`` 0 once fully reversed)."""

    requested: int
    remaining: int


def plan_reversal(
    *, total: int, reversed_so_far: int, fully_reversed: bool, requested: int | None
) -> ReversalPlan | TooLarge:
    """What a return of ``requested`` minor units (None: all that is left) does to a redemption
    of ``total`` of which ``reversed_so_far`` was already given back."""
    left = 0 if fully_reversed else total - reversed_so_far
    wanted = left if requested is None else requested
    if fully_reversed or wanted > left:
        return TooLarge(requested=wanted, remaining=left)
    return ReversalPlan(amount=wanted, remaining=left - wanted, full=wanted == left)
