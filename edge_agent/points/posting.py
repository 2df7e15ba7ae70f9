"""Booking one ledger event at the till: the ``points.posted`` event and the posting row.

``book`` runs inside the caller's transaction (``event_log.append`` refuses to run outside
one), so the sale's rows, the event, its outbox row and the posting commit together or not at
all. The event's ``details`` are the contract's (``cloud_sync/contract/event_envelope.py``)::

    {"ledger": codec.encode(event), "lines": [{line, sku, band, campaign_id, side, points}],
     "rules_version": str|null, "variant": str|null}

A return's and a void's lines say, per line, the points reversed of each side of the sale
(``side`` names the sale's side: "earn" lines were taken back, "burn" lines given back); the
event's kind tells them from a checkout's. The envelope's ``amount`` is the money the event
moved: a burn's discount, or the discount a return or void reversed (0 for an earn).

Event ids are deterministic, so a resend of the same fact carries the same id and HQ's ledger
takes it once: ``pos:{store}:{till}:{transaction}:earn`` (``:burn``, ``:void``) and
``pos:{store}:{till}:return:{return id}``. Ids may contain ``:`` themselves, so each part is
percent-encoded (``%3A``), which keeps two sales from ever sharing an id; an id over the
codec's 128 characters is ``pos#`` and the SHA-256 of the readable one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from urllib.parse import quote

from edge_agent.cache.timestamps import to_us
from edge_agent.domain.points import codec
from edge_agent.domain.points.event import LedgerEvent
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from edge_agent.points import points_schema
from edge_agent.points.outcomes import PointsLine

CHANNEL = "points"


def event_key(store_id: str, till_id: str, *parts: str) -> str:
    readable = ":".join(["pos", *(quote(p, safe="") for p in (store_id, till_id, *parts))])
    if len(readable) <= codec.MAX_ID:
        return readable
    return "pos#" + hashlib.sha256(readable.encode()).hexdigest()


def wire_lines(lines: Sequence[PointsLine]) -> list[dict[str, object]]:
    return [
        {
            "line": x.line,
            "sku": x.sku,
            "band": x.band,
            "campaign_id": x.campaign_id,
            "side": x.side,
            "points": x.points,
        }
        for x in lines
    ]


def book(
    conn: sqlite3.Connection,
    *,
    box_id: str,
    event: LedgerEvent,
    member_id: str,
    attribution: Attribution,
    lines: Sequence[PointsLine],
    rules_version: str | None,
    variant: str | None,
    amount: int,
) -> int:
    """Append ``event`` as a ``points.posted`` event and record its posting; returns its seq."""
    ledger = codec.encode(event)
    envelope = event_log.append(
        conn,
        box_id=box_id,
        type=EventType.POINTS_POSTED,
        occurred_at=event.at,
        code=None,
        attribution=attribution,
        amount=amount,
        details={
            "ledger": ledger,
            "lines": wire_lines(lines),
            "rules_version": rules_version,
            "variant": variant,
        },
    )
    conn.execute(
        points_schema.INSERT_POSTING_SQL,
        (
            event.event_id,
            envelope.seq,
            member_id,
            event.programme,
            event.kind.value,
            event.member_net(),
            to_us(event.at),
            json.dumps(ledger, separators=(",", ":")),
        ),
    )
    return envelope.seq
