"""Receipt coupon issues through HQ on both backends: ingest queues each stored issue or
holdout that names a member, and one fan-out step makes it one ``member.issued_elsewhere`` for
every known store, once; a snapshot cut then carries the window's issues."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from cloud_sync.contract.event_envelope import EventEnvelope, EventType
from cloud_sync.contract.snapshot_format import ISSUES_ELSEWHERE_COLUMNS
from cloud_sync.hq.fanout import delta_log, member_issues
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, to_micros
from tests.hq.fanout.test_fanout_step import S1, S2, opened, say, step, use
from tests.hq.ingest.builders import AT, BOX_A, events_topic, payload, rechain


def issue(kind: EventType, seq: int, *, member: str | None = "M1001") -> EventEnvelope:
    e = use(kind, BOX_A, seq, amount=0)
    return replace(
        e,
        code="SSK7HQ2P9XM" if kind is EventType.COUPON_ISSUED else None,
        attribution=replace(e.attribution, member_id=member, channel="receipt"),
        details={"in_holdout": kind is EventType.COUPON_WITHHELD},
    )


def queued(store: EventStore) -> int:
    return int(store.run(lambda tx: tx.query("SELECT count(*) FROM issue_queue"))[0][0])


def test_an_issue_reaches_every_store_once_and_one_without_a_member_none(
    ingest: Ingest, store: EventStore
) -> None:
    say(store, "box-z", S2, None, 0)
    events = rechain(
        [
            issue(EventType.COUPON_ISSUED, 1),
            issue(EventType.COUPON_WITHHELD, 2),  # held out: counts toward caps too
            issue(EventType.COUPON_ISSUED, 3, member=None),  # anonymous: no cap to count
            use(EventType.REDEEMED, BOX_A, 4),  # not an issue
        ]
    )
    batch = payload(events)
    ingest.handle(events_topic(BOX_A), batch, AT)
    assert queued(store) == 2  # queued in the transaction that stored them
    made = step(store)
    assert sorted(p.store_id for p in made) == [S1, S2]  # the issuing store's other boxes too
    for p in made:
        issues = [c for c in opened(p).changes if c.op.value == "member.issued_elsewhere"]
        assert [(c["member_id"], c["store_id"], c["box_id"]) for c in issues] == [
            ("M1001", S1, BOX_A),
            ("M1001", S1, BOX_A),
        ]
        assert [c["transaction_id"] for c in issues] == [f"T-{BOX_A}-1", f"T-{BOX_A}-2"]
        assert [c["at"] for c in issues] == [e.event.occurred_at for e in events[:2]]
        assert {c["till_id"] for c in issues} == {"till-1"}
    assert queued(store) == 0
    assert step(store) == []  # nothing twice
    ingest.handle(events_topic(BOX_A), batch, AT)  # a redelivery stores nothing, queues nothing
    assert queued(store) == 0
    assert step(store) == []


def test_a_snapshot_cut_carries_the_windows_issues_and_prune_forgets_older(
    ingest: Ingest, store: EventStore
) -> None:
    events = rechain([issue(EventType.COUPON_ISSUED, 1), issue(EventType.COUPON_WITHHELD, 2)])
    ingest.handle(events_topic(BOX_A), payload(events), AT)
    step(store)
    at = [to_micros(e.event.occurred_at) for e in events]
    cut = events[1].event.occurred_at  # the issues' own day (AT is a year later)
    point = store.run(lambda tx: delta_log.follow_point(tx, S2, now=cut))
    assert len(ISSUES_ELSEWHERE_COLUMNS) == len(point.issues[0])  # as the snapshot's rows
    assert list(point.issues) == [
        (BOX_A, "till-1", f"T-{BOX_A}-1", "M1001", at[0]),
        (BOX_A, "till-1", f"T-{BOX_A}-2", "M1001", at[1]),
    ]
    # The first issue leaves the window a microsecond before the second.
    later = events[0].event.occurred_at + member_issues.WINDOW + timedelta(microseconds=1)
    point = store.run(lambda tx: delta_log.follow_point(tx, S2, now=later))
    assert [row[2] for row in point.issues] == [f"T-{BOX_A}-2"]
    assert store.run(lambda tx: member_issues.prune(tx, now=later)) == 1
    assert store.run(lambda tx: member_issues.prune(tx, now=later)) == 0
