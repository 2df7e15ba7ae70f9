"""Releasing reservations: a void on cancel, and housekeeping of holds past their time.

A hold past its ``until`` already stops counting (lookups ignore it); deleting it is only
housekeeping, so ``expire_holds`` writes no event. A void of a live hold is a state change HQ
hears about (``code.voided``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from edge_agent.cache import idempotency
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import to_us
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from edge_agent.redemption import outcomes
from edge_agent.redemption.outcomes import VoidOutcome


def void(
    cache: CodeCache,
    *,
    transaction_id: str,
    codes: list[str] | None,
    attribution: Attribution,
    now: datetime,
) -> tuple[VoidOutcome, ...]:
    """Release the holds of the attributed till's sale ``transaction_id`` on ``codes`` (None:
    every code it holds). Another till's sale of the same number is not touched."""
    conn = cache.conn
    now_us = to_us(now)
    till = attribution.till_id
    result: list[VoidOutcome] = []
    with cache.transaction():
        if codes is None:
            # Live holds, and the codes an earlier void of this sale released: a repeated
            # void-all answers as the first did.
            codes = [
                str(c)
                for (c,) in conn.execute(
                    "SELECT code FROM reservations WHERE till_id = ?1 AND transaction_id = ?2 "
                    "AND until_us > ?3 UNION SELECT code FROM requests WHERE till_id = ?1 "
                    "AND transaction_id = ?2 AND operation = 'void' ORDER BY code",
                    (till, transaction_id, now_us),
                )
            ]
        for code in codes:
            old = idempotency.stored_answer(
                conn,
                till_id=till,
                transaction_id=transaction_id,
                code=code,
                operation="void",
                fingerprint=None,  # the key is the whole request
            )
            if old is not None:
                result.append(outcomes.void_from_json(old))
                continue
            hold = conn.execute(
                "DELETE FROM reservations WHERE code = ? AND till_id = ? AND transaction_id = ? "
                "RETURNING until_us, member_id",
                (code, till, transaction_id),
            ).fetchone()
            if hold is None or hold[0] <= now_us:
                # Nothing live to release (never held, expired, or consumed by a commit).
                result.append(VoidOutcome(code=code, transaction_id=transaction_id, released=False))
                continue
            facts = cache.lookup(code, hold[1], now)
            record = None if facts is None else facts.record
            event = event_log.append(
                conn,
                box_id=cache.box_id,
                type=EventType.VOIDED,
                occurred_at=now,
                code=code,
                attribution=replace(
                    attribution,
                    transaction_id=transaction_id,
                    member_id=hold[1],
                    campaign_id=None if record is None else record.campaign_id,
                    variant=None if record is None else record.variant,
                    channel=None if record is None else record.channel,
                ),
            )
            outcome = VoidOutcome(
                code=code,
                transaction_id=transaction_id,
                released=True,
                voided_at=now,
                event_id=event.event_id,
            )
            idempotency.store_answer(
                conn,
                till_id=till,
                transaction_id=transaction_id,
                code=code,
                operation="void",
                fingerprint="",
                response=outcomes.void_to_json(outcome),
                created_us=now_us,
            )
            result.append(outcome)
    return tuple(result)


def expire_holds(cache: CodeCache, now: datetime) -> int:
    """Delete holds whose time is up; returns how many. Call it off the hot path."""
    with cache.transaction() as conn:
        return int(
            conn.execute("DELETE FROM reservations WHERE until_us <= ?", (to_us(now),)).rowcount
        )
