"""Returns: give back all or part of a redeemed discount, in one transaction with its event.

A full reversal (or partial ones adding up to the whole discount) gives the use back: the code,
member, campaign and store counts drop by one and the code may be used again. A partial one
gives back money only (the campaign's money budget), since the coupon was still used.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from edge_agent.store import ledger, outcomes
from edge_agent.store.cache import CodeCache
from edge_agent.store.errors import RedemptionNotFoundError, RequestError, ReversalTooLargeError
from edge_agent.store.ledger import Attribution, EventType, to_us
from edge_agent.store.outcomes import ReverseOutcome

_REDEMPTION_SQL = (
    "SELECT id, campaign_id, member_id, amount, reversed_amount, fully_reversed, channel, "
    "variant FROM redemptions WHERE code = ? AND transaction_id = ?"
)


def reverse(
    cache: CodeCache,
    *,
    code: str,
    transaction_id: str,
    return_id: str,
    amount: int | None,
    attribution: Attribution,
    now: datetime,
) -> ReverseOutcome:
    if amount is not None and amount < 1:
        raise RequestError("a reversal amount must be at least 1 minor unit")
    if not return_id:
        raise RequestError("a reversal needs a return_id")
    operation = f"reverse:{return_id}"
    conn = cache.conn
    with cache.transaction():
        old = conn.execute(
            "SELECT response FROM requests WHERE transaction_id = ? AND code = ? AND operation = ?",
            (transaction_id, code, operation),
        ).fetchone()
        if old is not None:
            return outcomes.reverse_from_json(str(old[0]))
        row = conn.execute(_REDEMPTION_SQL, (code, transaction_id)).fetchone()
        if row is None:
            raise RedemptionNotFoundError(code=code, transaction_id=transaction_id)
        rid, campaign_id, member_id, total, reversed_so_far, fully, channel, variant = row
        remaining = 0 if fully else total - reversed_so_far
        wanted = remaining if amount is None else amount
        if fully or wanted > remaining:
            raise ReversalTooLargeError(requested=wanted, remaining=remaining)
        full = reversed_so_far + wanted >= total
        now_us = to_us(now)
        conn.execute(
            "UPDATE redemptions SET reversed_amount = reversed_amount + ?, fully_reversed = ? "
            "WHERE id = ?",
            (wanted, int(full), rid),
        )
        conn.execute(
            "INSERT INTO reversals VALUES (?, ?, ?, ?, ?, ?)",
            (rid, return_id, wanted, now_us, attribution.till_id, attribution.cashier_id),
        )
        restored = 1 if full else 0
        conn.execute(
            "UPDATE campaign_usage SET money = money - ?, uses = uses - ?, "
            "store_uses = store_uses - ? WHERE campaign_id = ?",
            (wanted, restored, restored, campaign_id),
        )
        if full:
            conn.execute(
                "UPDATE code_usage SET uses = uses - 1, last_redemption_id = (SELECT max(id) "
                "FROM redemptions WHERE code = ?1 AND fully_reversed = 0) WHERE code = ?1",
                (code,),
            )
            if member_id is not None:
                conn.execute(
                    "UPDATE member_code_usage SET uses = uses - 1 WHERE code = ? AND member_id = ?",
                    (code, member_id),
                )
        event = ledger.append(
            conn,
            box_id=cache.box_id,
            type=EventType.REVERSED,
            occurred_at=now,
            code=code,
            attribution=replace(
                attribution,
                transaction_id=transaction_id,
                member_id=member_id,
                campaign_id=campaign_id,
                variant=variant,
                channel=channel,
            ),
            amount=wanted,
            details={
                "return_id": return_id,
                "remaining": total - reversed_so_far - wanted,
                "fully_reversed": full,
            },
        )
        outcome = ReverseOutcome(
            code=code,
            transaction_id=transaction_id,
            return_id=return_id,
            amount=wanted,
            remaining=total - reversed_so_far - wanted,
            fully_reversed=full,
            reversed_at=now,
            event_id=event.event_id,
        )
        conn.execute(
            "INSERT INTO requests VALUES (?, ?, ?, ?, ?)",
            (transaction_id, code, operation, outcomes.reverse_to_json(outcome), now_us),
        )
    return outcome
