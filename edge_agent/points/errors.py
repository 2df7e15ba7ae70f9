"""Requests about points that cannot be carried out at all (refusals are answers, not these)::

RequestError (edge_agent.errors)
├── PointsDisabledError     points are off on this box (config points.enabled)  503
├── UnknownMemberError      a balance asked of a member the cache does not know  404
└── SaleNotFoundError       a void or return of a sale that booked no points     404
"""

from __future__ import annotations

from edge_agent.errors import RequestError


class PointsDisabledError(RequestError):
    def __init__(self) -> None:
        super().__init__("points are off on this box (config points.enabled is false)")


class UnknownMemberError(RequestError):
    def __init__(self, member_id: str) -> None:
        super().__init__(f"member {member_id!r} is not in this box's members table")
        self.member_id = member_id


class SaleNotFoundError(RequestError):
    def __init__(self, *, till_id: str, transaction_id: str) -> None:
        super().__init__(
            f"no points sale {transaction_id!r} of till {till_id!r} on this box: only a sale "
            "checked out here with points can be voided or returned"
        )
        self.till_id = till_id
        self.transaction_id = transaction_id
