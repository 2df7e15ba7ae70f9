"""Returns: the exact points to take back (earned) and give back (burned) on a partial return.

Theory of operation
-------------------
A line sold ``Q`` units, earned ``E`` points and took ``B`` points (``D`` minor units of
discount). After ``r`` units have come back already, returning ``q`` more reverses::

    share(X) = floor(X * (r + q) / Q) - floor(X * r / Q)     for X in E, B, D

The cumulative floors telescope: whatever the partial returns, once all ``Q`` units are back
exactly ``E`` points are taken back and ``B`` given back, with no rounding drift; a full return
at once is the same sum. Each partial return reverses at most what is proportionally due (the
remainder goes with the last unit), so a member is never charged ahead of time.

The caller passes what came back before (``already_returned``: position -> units); the box keeps
that per transaction, so a replayed return (same return id) is the caller's idempotency, not
this function's. Bad input (a position not in the sale, a non-positive quantity, more units than
were sold) is a ``ReturnRefused`` with its numbers, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from edge_agent.domain.points_rules.burn import BurnPlan
from edge_agent.domain.points_rules.earn import EarnResult, LineEarn


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnedLine:
    index: int  # position in the original basket
    quantity: int


class ReturnProblem(StrEnum):
    UNKNOWN_LINE = "unknown_line"
    BAD_QUANTITY = "bad_quantity"
    MORE_THAN_SOLD = "more_than_sold"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnRefused:
    problem: ReturnProblem
    index: int
    quantity: int  # asked for this line in this return
    sold: int  # units on the original line (0 for an unknown line)
    already_returned: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LineReversal:
    index: int
    quantity: int
    earn_taken_back: int
    burn_given_back: int
    discount_reversed: int  # minor units of points discount on the returned units


@dataclass(frozen=True, slots=True, kw_only=True)
class Reversal:
    lines: tuple[LineReversal, ...]  # in basket order

    @property
    def points_taken_back(self) -> int:
        return sum(line.earn_taken_back for line in self.lines)

    @property
    def points_given_back(self) -> int:
        return sum(line.burn_given_back for line in self.lines)

    @property
    def net(self) -> int:
        """The member's balance change: given back minus taken back (DOMAIN.md: the net)."""
        return self.points_given_back - self.points_taken_back


def share(total: int, sold: int, before: int, now: int) -> int:
    """The part of ``total`` due when ``now`` more of ``sold`` units follow ``before``."""
    return total * (before + now) // sold - total * before // sold


def reverse(
    *,
    earn: EarnResult,
    burn: BurnPlan | None,
    returning: Sequence[ReturnedLine],
    already_returned: Mapping[int, int] | None = None,
) -> Reversal | ReturnRefused:
    """What returning ``returning`` reverses of the sale's earn and burn (module docstring)."""
    before = already_returned or {}
    sold = {line.index: line for line in earn.lines}
    burned = {line.index: line for line in burn.lines} if burn is not None else {}
    asked: dict[int, int] = {}
    for item in returning:
        if item.quantity <= 0:
            return _refused(ReturnProblem.BAD_QUANTITY, item.index, item.quantity, sold, before)
        asked[item.index] = asked.get(item.index, 0) + item.quantity
    out = []
    for index in sorted(asked):
        quantity = asked[index]
        if index not in sold:
            return _refused(ReturnProblem.UNKNOWN_LINE, index, quantity, sold, before)
        units = sold[index].quantity
        done = before.get(index, 0)
        if done < 0 or done + quantity > units:
            return _refused(ReturnProblem.MORE_THAN_SOLD, index, quantity, sold, before)
        spent = burned.get(index)
        out.append(
            LineReversal(
                index=index,
                quantity=quantity,
                earn_taken_back=share(sold[index].points, units, done, quantity),
                burn_given_back=0 if spent is None else share(spent.points, units, done, quantity),
                discount_reversed=(
                    0 if spent is None else share(spent.discount, units, done, quantity)
                ),
            )
        )
    return Reversal(lines=tuple(out))


def _refused(
    problem: ReturnProblem,
    index: int,
    quantity: int,
    sold: Mapping[int, LineEarn],
    before: Mapping[int, int],
) -> ReturnRefused:
    line = sold.get(index)
    return ReturnRefused(
        problem=problem,
        index=index,
        quantity=quantity,
        sold=0 if line is None else line.quantity,
        already_returned=before.get(index, 0),
    )
