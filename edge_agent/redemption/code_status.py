"""A code's status and history for staff, and linking a physical code to a member."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import from_us, to_us
from edge_agent.errors import LinkConflictError, UnknownCodeError
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from edge_agent.redemption.outcomes import (
    CodeStatusView,
    HistoryEntry,
    LinkOutcome,
    RedemptionView,
    ReversalView,
)


def link(
    cache: CodeCache,
    *,
    code: str,
    member_id: str,
    mode: str,
    attribution: Attribution,
    now: datetime,
) -> LinkOutcome:
    """Link ``code`` to ``member_id``; repeating the same link is a no-op (created=False)."""
    conn = cache.conn
    with cache.transaction():
        row = conn.execute(
            "SELECT c.campaign_id, c.member_id, c.linked_member_id, c.variant, c.channel, "
            "l.member_id, l.mode, l.linked_us FROM codes AS c "
            "LEFT JOIN code_links AS l ON l.code = c.code WHERE c.code = ?",
            (code,),
        ).fetchone()
        if row is None:
            raise UnknownCodeError(code)
        campaign_id, bound, hq_linked, variant, channel, local, local_mode, local_us = row
        holder = local or hq_linked or bound
        if holder is not None and holder != member_id:
            raise LinkConflictError(code=code, member_id=member_id, holder=str(holder))
        if local is not None:
            return LinkOutcome(
                code=code,
                member_id=member_id,
                mode=str(local_mode),
                linked_at=from_us(int(local_us)),
                created=False,
            )
        conn.execute(
            "INSERT INTO code_links VALUES (?, ?, ?, ?)", (code, member_id, mode, to_us(now))
        )
        event_log.append(
            conn,
            box_id=cache.box_id,
            type=EventType.LINKED,
            occurred_at=now,
            code=code,
            attribution=replace(
                attribution,
                member_id=member_id,
                campaign_id=campaign_id,
                variant=variant,
                channel=channel,
            ),
            details={"mode": mode},
        )
    return LinkOutcome(code=code, member_id=member_id, mode=mode, linked_at=now, created=True)


def status(cache: CodeCache, code: str, now: datetime) -> CodeStatusView:
    facts = cache.lookup(code, None, now)
    if facts is None:
        raise UnknownCodeError(code)
    conn = cache.conn
    reversals: dict[int, list[ReversalView]] = {}
    for rid, return_id, amount, at_us, till in conn.execute(
        "SELECT v.redemption_id, v.return_id, v.amount, v.reversed_us, v.till_id "
        "FROM reversals AS v JOIN redemptions AS r ON r.id = v.redemption_id "
        "WHERE r.code = ? ORDER BY v.reversed_us",
        (code,),
    ):
        reversals.setdefault(rid, []).append(
            ReversalView(
                return_id=return_id, amount=amount, reversed_at=from_us(at_us), till_id=till
            )
        )
    redemptions = tuple(
        RedemptionView(
            transaction_id=txn,
            member_id=member,
            amount=amount,
            reversed_amount=rev,
            fully_reversed=bool(full),
            redeemed_at=from_us(at_us),
            store_id=store,
            till_id=till,
            cashier_id=cashier,
            reversals=tuple(reversals.get(rid, ())),
        )
        for rid, txn, member, amount, rev, full, at_us, store, till, cashier in conn.execute(
            "SELECT id, transaction_id, member_id, amount, reversed_amount, fully_reversed, "
            "redeemed_us, store_id, till_id, cashier_id FROM redemptions WHERE code = ? "
            "ORDER BY id",
            (code,),
        )
    )
    history = []
    for seq, event_id, type_, at_us, body in conn.execute(
        "SELECT seq, event_id, type, occurred_us, body FROM events WHERE code = ? ORDER BY seq",
        (code,),
    ):
        doc = json.loads(body)
        history.append(
            HistoryEntry(
                seq=seq,
                event_id=event_id,
                type=type_,
                occurred_at=from_us(at_us),
                transaction_id=doc.get("transaction_id"),
                till_id=doc["till_id"],
                amount=doc.get("amount", 0),
            )
        )
    return CodeStatusView(
        record=facts.record,
        uses=facts.usage.code_uses,
        holds=facts.usage.reservations,
        redemptions=redemptions,
        history=tuple(history),
    )
