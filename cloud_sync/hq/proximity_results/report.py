"""Proximity results over a time window, from the stored events: what the rules did, per
campaign and rule, and the check-ins per store.

Theory of operation
-------------------
Every proximity outcome is an event (``edge_agent/presence/proximity_rules.py``):
``offer.triggered`` (a coupon bound to the member), ``offer.suppressed`` with a ``reason``
(``holdout`` is the control group: the offer they would have had, not given) and
``member.checked_in`` (a tap at the entrance). ``fold`` counts them, pure; ``read`` feeds it
the window's events from the event store (``occurred_at`` in ``[since, until)``, the boxes'
clocks), with each offer's push state (``member_push``), so the report can say how many of
the triggered offers reached the member's phone.

A row is one (campaign, rule): ``triggered``, ``held_out`` (the holdout suppressions, the
comparison group of the same rule and campaign), ``suppressed`` per other reason, and of the
triggered, ``delivered`` and ``push_failed``. The campaign of an outcome is its attribution's
``campaign_id``, else the one its details name (``campaign_id`` of a
``campaign_unavailable``, the ``cohort`` of an offer); an outcome decided before a campaign
was (a cap, quiet hours) has none, and one decided before a rule was (``disabled``,
``no_consent``, ``unknown_member``: named after nobody, by design) has neither: those rows
show ``None``. Rows are sorted by campaign then rule, ``None`` last.

Check-ins are counted per store: taps, distinct members, and per ``how`` (``card``,
``token``). A window is read in pages (``PAGE`` events, keyset order), in one transaction, so
a month of a fleet's presence events costs the counters' memory, not the events'.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from cloud_sync.contract.event_envelope import EventType
from cloud_sync.hq.ingest.event_store import EventStore, Row, Tx, to_micros
from cloud_sync.hq.member_push.push_queue import PushState

PAGE: Final = 5_000
HOLDOUT: Final = "holdout"
_READ: Final = (
    "SELECT e.occurred_at, e.box_id, e.seq, e.type, e.store_id, e.member_id, e.body, p.state "
    "FROM events AS e LEFT JOIN member_push AS p ON p.box_id = e.box_id AND p.seq = e.seq "
    # Word for word the WHERE of the partial index events_presence_by_time (schema.py).
    "WHERE e.type IN ('offer.triggered', 'offer.suppressed', 'member.checked_in') "
    "AND e.occurred_at >= ? AND e.occurred_at < ? "
    "AND (e.occurred_at, e.box_id, e.seq) > (?, ?, ?)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleResult:
    campaign_id: str | None
    rule_id: str | None
    triggered: int = 0
    held_out: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)  # reason -> count, holdout apart
    delivered: int = 0  # of the triggered: pushed to the member, 2xx
    push_failed: int = 0  # of the triggered: the push failed for good

    @property
    def suppressed_total(self) -> int:
        return sum(self.suppressed.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreCheckIns:
    store_id: str
    check_ins: int
    members: int  # distinct
    by_how: dict[str, int]  # card / token


@dataclass(frozen=True, slots=True, kw_only=True)
class ProximityResults:
    since: datetime
    until: datetime
    store_id: str | None  # None: every store
    rules: tuple[RuleResult, ...]
    check_ins: tuple[StoreCheckIns, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceEvent:
    """What ``fold`` needs of one stored event."""

    type: str
    store_id: str
    member_id: str | None
    body: str  # the stored text
    push_state: str | None = None  # offer.triggered's member_push state


@dataclass(slots=True)
class _Tally:
    triggered: int = 0
    held_out: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    delivered: int = 0
    push_failed: int = 0


def fold(
    events: Iterable[PresenceEvent],
    *,
    since: datetime,
    until: datetime,
    store_id: str | None = None,
) -> ProximityResults:
    """The results of ``events`` (all in the window; other types are ignored)."""
    rules: dict[tuple[str | None, str | None], _Tally] = {}
    taps: dict[str, Counter[str]] = {}
    members: dict[str, set[str]] = {}
    for e in events:
        doc = json.loads(e.body)
        details = doc.get("details") if isinstance(doc, dict) else None
        details = details if isinstance(details, dict) else {}
        if e.type == EventType.MEMBER_CHECKED_IN.value:
            taps.setdefault(e.store_id, Counter())[_text(details.get("how")) or "unknown"] += 1
            if e.member_id:
                members.setdefault(e.store_id, set()).add(e.member_id)
            continue
        campaign = (
            _text(doc.get("campaign_id"))
            or _text(details.get("campaign_id"))
            or _text(details.get("cohort"))
        )
        tally = rules.setdefault((campaign, _text(details.get("rule_id"))), _Tally())
        if e.type == EventType.OFFER_TRIGGERED.value:
            tally.triggered += 1
            tally.delivered += e.push_state == PushState.DELIVERED.value
            tally.push_failed += e.push_state == PushState.FAILED.value
        elif e.type == EventType.OFFER_SUPPRESSED.value:
            reason = _text(details.get("reason")) or "unknown"
            if reason == HOLDOUT:
                tally.held_out += 1
            else:
                tally.suppressed[reason] += 1
    return ProximityResults(
        since=since,
        until=until,
        store_id=store_id,
        rules=tuple(
            RuleResult(
                campaign_id=campaign,
                rule_id=rule,
                triggered=t.triggered,
                held_out=t.held_out,
                suppressed=dict(sorted(t.suppressed.items())),
                delivered=t.delivered,
                push_failed=t.push_failed,
            )
            for (campaign, rule), t in sorted(rules.items(), key=lambda kv: _order(kv[0]))
        ),
        check_ins=tuple(
            StoreCheckIns(
                store_id=store,
                check_ins=sum(how.values()),
                members=len(members.get(store, ())),
                by_how=dict(sorted(how.items())),
            )
            for store, how in sorted(taps.items())
        ),
    )


def read(
    store: EventStore, *, since: datetime, until: datetime, store_id: str | None = None
) -> ProximityResults:
    """The results of the window ``[since, until)``, of one store or (None) every store."""
    if since >= until:
        raise ValueError("an empty window: since must be before until")

    def work(tx: Tx) -> ProximityResults:
        return fold(_events(tx, since, until, store_id), since=since, until=until,
                    store_id=store_id)  # fmt: skip

    return store.run(work)


def _events(
    tx: Tx, since: datetime, until: datetime, store_id: str | None
) -> Iterable[PresenceEvent]:
    sql = _READ + ("" if store_id is None else " AND e.store_id = ?")
    sql += " ORDER BY e.occurred_at, e.box_id, e.seq LIMIT ?"
    extra: tuple[object, ...] = () if store_id is None else (store_id,)
    after: tuple[object, ...] = (to_micros(since) - 1, "", 0)
    while True:
        rows: list[Row] = tx.query(sql, (to_micros(since), to_micros(until), *after, *extra, PAGE))
        for _at, _box, _seq, kind, store, member, body, state in rows:
            yield PresenceEvent(
                type=str(kind),
                store_id=str(store),
                member_id=None if member is None else str(member),
                body=str(body),
                push_state=None if state is None else str(state),
            )
        if len(rows) < PAGE:
            return
        after = tuple(rows[-1][:3])


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _order(key: tuple[str | None, str | None]) -> tuple[bool, str, bool, str]:
    campaign, rule = key
    return (campaign is None, campaign or "", rule is None, rule or "")
