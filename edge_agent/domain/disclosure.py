"""Disclosure mode: what a customer-facing channel may learn about a code it has not proven.

A code is *proven* when the identified member is the one it is bound or linked to: the customer
has shown they own it, so telling them everything about it tells them nothing new. Any other code
may be a guess, and a guesser must not learn whether it exists, whose it is, where it was used or
what it needs. So on a customer channel an unproven code is only ever reported as NOT_FOUND,
EXPIRED or CODE_LIMIT_REACHED, with the same fixed messages and no details or retry time.

* A code bound or linked to *someone* (not the identified member, or no member identified) is
  always NOT_FOUND, whatever really stopped it: "expired" or "used up" would confirm that a
  guessed member code exists.
* A generic code (no owner) is public anyway (influencer, paper voucher): it may be reported as
  expired or limit reached when that is the gist of the real reason, else as not found.
* Acceptances pass unchanged: the customer is getting the discount.
"""

from __future__ import annotations

from edge_agent.domain.decision import Decision, Reason, Refused
from edge_agent.domain.messages import CUSTOMER

# The real reason -> what an unproven generic code is reported as.
PUBLIC_REASON: dict[Reason, Reason] = {
    Reason.MALFORMED: Reason.NOT_FOUND,
    Reason.NOT_FOUND: Reason.NOT_FOUND,
    Reason.NOT_STARTED: Reason.NOT_FOUND,
    Reason.EXPIRED: Reason.EXPIRED,
    Reason.REVOKED: Reason.EXPIRED,
    Reason.ALREADY_REDEEMED: Reason.CODE_LIMIT_REACHED,
    Reason.RESERVED_ELSEWHERE: Reason.CODE_LIMIT_REACHED,
    Reason.MEMBER_REQUIRED: Reason.NOT_FOUND,
    Reason.WRONG_MEMBER: Reason.NOT_FOUND,
    Reason.CODE_LIMIT_REACHED: Reason.CODE_LIMIT_REACHED,
    Reason.MEMBER_LIMIT_REACHED: Reason.CODE_LIMIT_REACHED,
    Reason.VELOCITY_LIMIT: Reason.CODE_LIMIT_REACHED,
    Reason.CAMPAIGN_BUDGET_EXHAUSTED: Reason.CODE_LIMIT_REACHED,
    Reason.STORE_ALLOCATION_EXHAUSTED: Reason.CODE_LIMIT_REACHED,
    Reason.WRONG_STORE: Reason.NOT_FOUND,
    Reason.MIN_SPEND_NOT_MET: Reason.NOT_FOUND,
    Reason.MIN_QTY_NOT_MET: Reason.NOT_FOUND,
    Reason.NO_ELIGIBLE_ITEMS: Reason.NOT_FOUND,
    Reason.DISCOUNT_ROUNDS_TO_ZERO: Reason.NOT_FOUND,
    Reason.SEGMENT_NOT_ELIGIBLE: Reason.NOT_FOUND,
    Reason.NOT_COMBINABLE: Reason.NOT_FOUND,
    Reason.ALREADY_IN_BASKET: Reason.CODE_LIMIT_REACHED,
    Reason.CACHE_STALE: Reason.NOT_FOUND,
    Reason.ONLINE_CHECK_REQUIRED: Reason.NOT_FOUND,
    Reason.TILL_THROTTLED: Reason.NOT_FOUND,
    Reason.INVALID_TOKEN: Reason.NOT_FOUND,
    Reason.INVALID_SIGNATURE: Reason.NOT_FOUND,
    Reason.UNKNOWN_ISSUER: Reason.NOT_FOUND,
}

DISCLOSED_REASONS = frozenset({Reason.NOT_FOUND, Reason.EXPIRED, Reason.CODE_LIMIT_REACHED})

# One fixed refusal text per public reason, on both message fields: the audience is the customer.
_SAFE_TEXT: dict[Reason, str] = {reason: CUSTOMER[reason] for reason in DISCLOSED_REASONS}


def public_reason(reason: Reason, *, owned_by_other: bool) -> Reason:
    """What an unproven code's refusal for ``reason`` is reported as."""
    return Reason.NOT_FOUND if owned_by_other else PUBLIC_REASON[reason]


def disclose(decision: Decision, *, owned_by_other: bool) -> Decision:
    """The customer-safe view of ``decision`` for a code the customer has not proven."""
    if not isinstance(decision, Refused):
        return decision
    reason = public_reason(decision.reason, owned_by_other=owned_by_other)
    text = _SAFE_TEXT[reason]
    return Refused(
        code=decision.code,
        reason=reason,
        cashier_message=text,
        customer_message=text,
    )
