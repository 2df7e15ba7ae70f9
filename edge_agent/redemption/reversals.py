"""Returns: give back all or part of a redeemed discount, in one transaction with its event.

The rules (how much, and whether the use goes back too) are ``domain/reversal.py``'s; this
module reads the redemption, applies the plan to the counters and writes the event and the
stored answer together.

A return is often taken at another till than the sale (the service desk): it names the sale by
that sale's till and transaction id, and is itself keyed by the returning till's return id, so
a retry of the return is safe and reusing its id for another sale or amount is refused (409).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from edge_agent.cache import idempotency
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import to_us
from edge_agent.domain.reversal import TooLarge, plan_reversal
from edge_agent.errors import RedemptionNotFoundError, RequestError, ReversalTooLargeError
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from edge_agent.redemption import outcomes
from edge_agent.redemption.outcomes import ReverseOutcome

_REDEMPTION_SQL = (
    "SELECT id, campaign_id, member_id, amount, reversed_amount, fully_reversed, channel, "
    "variant FROM redemptions WHERE code = ? AND till_id = ? AND transaction_id = ?"
)


def reverse(
    cache: CodeCache,
    *,
    code: str,
    transaction_id: str,
    sale_till_id: str,
    return_id: str,
    amount: int | None,
    attribution: Attribution,
    now: datetime,
) -> ReverseOutcome:
    """Reverse on sale (``sale_till_id``, ``transaction_id``) for the return ``return_id`` of
    the returning till (``attribution.till_id``), which keys the stored answer."""
    if amount is not None and amount < 1:
        raise RequestError("a reversal amount must be at least 1 minor unit")
    if not return_id:
        raise RequestError("a reversal needs a return_id")
    conn = cache.conn
    till = attribution.till_id
    # A retry must name the same sale and the same amount; the return id is the key.
    digest = idempotency.fingerprint(
        {"sale_till_id": sale_till_id, "transaction_id": transaction_id, "amount": amount}
    )
    key = {"till_id": till, "transaction_id": return_id, "code": code, "operation": "reverse"}
    with cache.transaction():
        old = idempotency.stored_answer(conn, **key, fingerprint=digest)
        if old is not None:
            return outcomes.reverse_from_json(old)
        row = conn.execute(_REDEMPTION_SQL, (code, sale_till_id, transaction_id)).fetchone()
        if row is None:
            raise RedemptionNotFoundError(
                code=code, transaction_id=transaction_id, till_id=sale_till_id
            )
        rid, campaign_id, member_id, total, reversed_so_far, fully, channel, variant = row
        plan = plan_reversal(
            total=total,
            reversed_so_far=reversed_so_far,
            fully_reversed=bool(fully),
            requested=amount,
        )
        if isinstance(plan, TooLarge):
            raise ReversalTooLargeError(requested=plan.requested, remaining=plan.remaining)
        wanted, full = plan.amount, plan.full
        now_us = to_us(now)
        conn.execute(
            "UPDATE redemptions SET reversed_amount = reversed_amount + ?, fully_reversed = ? "
            "WHERE id = ?",
            (wanted, int(full), rid),
        )
        conn.execute(
            "INSERT INTO reversals VALUES (?, ?, ?, ?, ?, ?)",
            (rid, till, return_id, wanted, now_us, attribution.cashier_id),
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
        event = event_log.append(
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
                "sale_till_id": sale_till_id,
                "remaining": plan.remaining,
                "fully_reversed": full,
            },
        )
        outcome = ReverseOutcome(
            code=code,
            transaction_id=transaction_id,
            sale_till_id=sale_till_id,
            return_id=return_id,
            amount=wanted,
            remaining=plan.remaining,
            fully_reversed=full,
            reversed_at=now,
            event_id=event.event_id,
        )
        idempotency.store_answer(
            conn,
            **key,
            fingerprint=digest,
            response=outcomes.reverse_to_json(outcome),
            created_us=now_us,
        )
    return outcome
