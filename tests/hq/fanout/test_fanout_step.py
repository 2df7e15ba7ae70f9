"""HQ's fan-out on both backends: stored redemptions and journalled changes become each
store's signed deltas, in order, once; a box's position is answered with what it lacks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import delta as deltas
from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract.delta import Change, Delta, Op
from cloud_sync.contract.event_envelope import EventEnvelope, EventType
from cloud_sync.contract.follow_position import FollowPosition
from cloud_sync.contract.hq_document import Kind
from cloud_sync.hq.fanout import delta_log, producer
from cloud_sync.hq.fanout.delta_log import Published
from cloud_sync.hq.fanout.producer import JournalEntry, JournalPage
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, Tx
from edge_agent.domain.coupon_token import raw_public_key
from edge_agent.sync.hq_trust import HqTrust
from tests.contract.streams import event
from tests.hq.ingest.builders import AT, BOX_A, BOX_B, OTHER_KEY, events_topic, payload, rechain

HQ_KEY = Ed25519PrivateKey.generate()
TRUST = HqTrust.pinned(raw_public_key(HQ_KEY.public_key()), ())
CODE = "SSK7HQ2P9XM"
S1, S2 = "store-001", "store-002"


class ListJournal:
    """The journal's reading side over a list (the central store's is tested beside it)."""

    def __init__(self, entries: Sequence[JournalEntry] = ()) -> None:
        self.entries = list(entries)

    def changes_after(self, after_id: int, *, limit: int) -> JournalPage:
        taken = [e for e in self.entries if e.id > after_id][:limit]
        return JournalPage(entries=taken, through=taken[-1].id if taken else after_id)

    def last_id(self) -> int | None:
        return max((e.id for e in self.entries), default=0)


def use(
    kind: EventType, box: str, seq: int, *, amount: int = 500, store: str = S1, **details: object
) -> EventEnvelope:
    e = event(seq, prev_hash=None, box=box, store=store)
    return replace(
        e,
        event_id=envelope.event_id(e.occurred_at, f"{box}{seq}".encode().ljust(10, b"-")[:10]),
        type=kind,
        code=CODE,
        amount=amount,
        attribution=replace(e.attribution, campaign_id="SPRING", transaction_id=f"T-{box}-{seq}"),
        details=dict(details),
    )


def step(store: EventStore, journal: ListJournal | None = None) -> list[Published]:
    return store.run(lambda tx: producer.step(tx, journal=journal, key=HQ_KEY, now=AT))


def opened(doc: Published) -> Delta:
    return deltas.decode(TRUST.open(doc.document, kind=Kind.DELTA, now=AT).body)


def say(store: EventStore, box: str, store_id: str, stream: str | None, mark: int) -> None:
    def record(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO box_positions VALUES (?, ?, ?, ?, 0) ON CONFLICT (box_id) DO UPDATE "
            "SET stream = excluded.stream, watermark = excluded.watermark",
            (box, store_id, stream, mark),
        )

    store.run(record)


def test_a_redemption_reaches_every_store_once_with_where_and_when(
    ingest: Ingest, store: EventStore
) -> None:
    say(store, "box-z", S2, None, 0)  # store-002 is known: one of its boxes said where it is
    ingest.handle(events_topic(BOX_A), payload(rechain([use(EventType.REDEEMED, BOX_A, 1)])), AT)
    made = step(store)
    assert sorted((p.store_id, p.seq) for p in made) == [(S1, 1), (S2, 1)]
    for p in made:
        d = opened(p)
        assert (d.store_id, d.seq) == (p.store_id, 1)
        redeemed, used = d.changes
        assert redeemed.op is Op.CODE_REDEEMED_ELSEWHERE
        assert (redeemed["code"], redeemed["store_id"], redeemed["box_id"]) == (CODE, S1, BOX_A)
        assert (redeemed["till_id"], redeemed["transaction_id"]) == ("till-1", "T-box-a-1")
        assert redeemed["uses"] == 1
        assert redeemed["at"] == event(1, prev_hash=None).occurred_at
        assert used.op is Op.CAMPAIGN_USED_ELSEWHERE
        assert (used["campaign_id"], used["redemptions"], used["discount"]) == ("SPRING", 1, 500)
    assert step(store) == []  # the queue is empty: nothing twice


def test_a_full_return_gives_the_use_back_and_a_partial_one_only_money(
    ingest: Ingest, store: EventStore
) -> None:
    events = rechain(
        [
            use(EventType.REDEEMED, BOX_A, 1),
            use(EventType.REVERSED, BOX_A, 2, amount=200, fully_reversed=False),
        ]
    )
    ingest.handle(events_topic(BOX_A), payload(events), AT)
    (made,) = step(store)
    redeemed, used = opened(made).changes
    assert redeemed["uses"] == 1
    assert (used["redemptions"], used["discount"]) == (1, 300)
    full = rechain(
        [
            use(EventType.REDEEMED, BOX_A, 1),
            use(EventType.REVERSED, BOX_A, 2, amount=200, fully_reversed=False),
            use(EventType.REVERSED, BOX_A, 3, amount=300, fully_reversed=True),
        ]
    )
    ingest.handle(events_topic(BOX_A), payload(full[2:]), AT)
    (made,) = step(store)
    assert made.seq == 2
    redeemed, used = opened(made).changes
    assert redeemed["uses"] == 0
    assert (used["redemptions"], used["discount"]) == (0, 0)


def test_a_redelivered_batch_is_not_fanned_out_again(ingest: Ingest, store: EventStore) -> None:
    batch = payload(rechain([use(EventType.REDEEMED, BOX_A, 1)]))
    ingest.handle(events_topic(BOX_A), batch, AT)
    assert len(step(store)) == 1
    ingest.handle(events_topic(BOX_A), batch, AT)
    assert step(store) == []


def test_two_boxes_are_two_totals(ingest: Ingest, store: EventStore) -> None:
    ingest.handle(events_topic(BOX_A), payload(rechain([use(EventType.REDEEMED, BOX_A, 1)])), AT)
    b = rechain([use(EventType.REDEEMED, BOX_B, 1), use(EventType.REDEEMED, BOX_B, 2)])
    ingest.handle(events_topic(BOX_B), payload(b), AT)
    (made,) = step(store)
    totals = {(c.op, c["box_id"]): c for c in opened(made).changes}
    assert totals[(Op.CODE_REDEEMED_ELSEWHERE, BOX_A)]["uses"] == 1
    assert totals[(Op.CODE_REDEEMED_ELSEWHERE, BOX_B)]["uses"] == 2
    assert totals[(Op.CAMPAIGN_USED_ELSEWHERE, BOX_B)]["discount"] == 1000


def revoked(n: int) -> Change:
    return Change(op=Op.CODE_REVOKED, fields={"code": f"SSREVOKED{n:05d}", "at": AT})


def test_journalled_changes_go_to_their_store_or_to_all_and_the_cursor_moves(
    ingest: Ingest, store: EventStore
) -> None:
    say(store, "box-z", S2, None, 0)
    say(store, "box-y", S1, None, 0)
    journal = ListJournal(
        [
            JournalEntry(id=3, store_id="*", change=revoked(1)),
            JournalEntry(id=7, store_id=S2, change=revoked(2)),
        ]
    )
    made = {p.store_id: opened(p) for p in step(store, journal)}
    assert [c["code"] for c in made[S1].changes] == ["SSREVOKED00001"]
    assert [c["code"] for c in made[S2].changes] == ["SSREVOKED00001", "SSREVOKED00002"]
    assert step(store, journal) == []
    journal.entries.append(JournalEntry(id=8, store_id=S1, change=revoked(3)))
    (again,) = step(store, journal)
    assert (again.store_id, again.seq) == (S1, 2)


def test_many_changes_are_cut_into_deltas_in_order(store: EventStore) -> None:
    say(store, "box-y", S1, None, 0)
    count = deltas.MAX_CHANGES * 2 + 5
    journal = ListJournal(
        [JournalEntry(id=i, store_id="*", change=revoked(i)) for i in range(1, count + 1)]
    )
    made = step(store, journal)
    assert [p.seq for p in made] == [1, 2, 3]
    codes = [c["code"] for p in made for c in opened(p).changes]
    assert codes == [f"SSREVOKED{i:05d}" for i in range(1, count + 1)]


def test_a_position_is_answered_with_what_the_box_lacks(store: EventStore) -> None:
    say(store, "box-y", S1, None, 0)
    journal = ListJournal()
    for i in range(1, 6):
        journal.entries.append(JournalEntry(id=i, store_id="*", change=revoked(i)))
        step(store, journal)
    head = store.run(lambda tx: delta_log.head(tx, S1))
    assert head is not None
    assert head.seq == 5

    def answer(stream: str | None, mark: int, limit: int = 100) -> delta_log.CatchUp:
        at = FollowPosition(store_id=S1, box_id="box-y", stream=stream, watermark=mark)
        return store.run(lambda tx: delta_log.catch_up(tx, at, limit=limit))

    assert [p.seq for p in answer(head.stream, 2).documents] == [3, 4, 5]
    assert [p.seq for p in answer(head.stream, 0, limit=2).documents] == [1, 2]
    assert answer(head.stream, 5) == delta_log.CatchUp()
    assert "follows no delta stream" in (answer(None, 0).needs_snapshot or "")
    assert "not" in (answer("0" * 32, 2).needs_snapshot or "")
    pruned = store.run(lambda tx: delta_log.prune(tx, before=AT + timedelta(days=1), keep=2))
    assert pruned == 3
    assert "no longer kept" in (answer(head.stream, 1).needs_snapshot or "")
    assert [p.seq for p in answer(head.stream, 3).documents] == [4, 5]
    # What a box is sent again is the very document first published.
    assert opened(answer(head.stream, 3).documents[0]).changes[0]["code"] == "SSREVOKED00004"


@pytest.mark.parametrize("box", [BOX_A])
def test_another_stores_box_is_a_store_of_its_own(
    ingest: Ingest, store: EventStore, box: str
) -> None:
    theirs = rechain([use(EventType.REDEEMED, "box-c", 1, store=S2)])
    ingest.handle(events_topic("box-c", store=S2), payload(theirs, key=OTHER_KEY, store=S2), AT)
    ingest.handle(events_topic(box), payload(rechain([use(EventType.REDEEMED, box, 1)])), AT)
    made = step(store)
    assert sorted(p.store_id for p in made) == [S1, S2]
    for p in made:
        assert {c["box_id"] for c in opened(p).changes} == {"box-c", box}


def test_the_fleet_view_says_how_far_behind_each_box_is(store: EventStore) -> None:
    journal = ListJournal([JournalEntry(id=i, store_id="*", change=revoked(i)) for i in (1, 2)])
    say(store, "box-y", S1, None, 0)
    step(store, journal)
    head = store.run(lambda tx: delta_log.head(tx, S1))
    assert head is not None
    say(store, "box-x", S1, head.stream, 0)
    rows = {r.box_id: r for r in views.fleet(store)}
    assert (rows["box-y"].needs_snapshot, rows["box-y"].deltas_behind) == (True, None)
    assert (rows["box-x"].needs_snapshot, rows["box-x"].deltas_behind) == (False, 1)
