"""The ingest core on both backends: every way a box's batches can arrive, and every way a
payload can be wrong, ends in the stream the box wrote plus typed quarantine rows."""

from __future__ import annotations

from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import batch as batches
from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract import topics
from cloud_sync.contract.ack import Ack, SeqRange
from cloud_sync.contract.chain import Sealed
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.ingest import stream, views
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, Tx
from cloud_sync.hq.ingest.quarantine import Refusal
from tests.contract.streams import event
from tests.hq.ingest.builders import (
    AT,
    BOX_A,
    BOX_B,
    OTHER_KEY,
    STORE,
    box_stream,
    events_topic,
    payload,
    payloads,
    rechain,
)

TOPIC = events_topic()


def reasons(store: EventStore) -> list[str]:
    return sorted(q.reason for q in views.quarantined(store))


def dump(store: EventStore) -> list[object]:
    """Every table's rows, to prove a message changed nothing."""

    def read(tx: Tx) -> list[object]:
        tables = ("streams", "events", "parked", "quarantine", "chain_breaks", "conflicts")
        return [sorted(tx.query(f"SELECT * FROM {t}"), key=repr) for t in tables]

    return store.run(read)


def test_a_stream_in_order_is_stored_once_with_its_exact_text(
    ingest: Ingest, store: EventStore
) -> None:
    sealed = box_stream(10)
    acks = [ingest.handle(TOPIC, p, AT).ack for p in payloads(sealed, 4)]
    assert acks[-1] == Ack(store_id=STORE, box_id=BOX_A, stored_through=10)
    assert [a.stored_through for a in acks if a is not None] == [4, 8, 10]
    rows = views.events(store)
    assert [r.body for r in rows] == [s.text for s in sealed]
    assert rows[0].till_id == "till-1" and rows[0].amount == 101
    assert reasons(store) == []


def test_a_redelivered_batch_is_a_noop_that_answers_the_same_ack(
    ingest: Ingest, store: EventStore
) -> None:
    first, second = payloads(box_stream(8), 4)
    ingest.handle(TOPIC, first, AT)
    done = ingest.handle(TOPIC, second, AT)
    before = dump(store)
    again = ingest.handle(TOPIC, second, AT)
    assert (again.stored, again.duplicates, again.ack) == (0, 4, done.ack)
    assert dump(store) == before


def test_batches_ahead_of_a_hole_wait_parked_until_it_fills(
    ingest: Ingest, store: EventStore
) -> None:
    one, two, three = payloads(box_stream(12), 4)
    early = ingest.handle(TOPIC, three, AT)
    assert early.parked and early.ack == Ack(
        store_id=STORE, box_id=BOX_A, stored_through=0, missing=(SeqRange(first=1, last=8),)
    )
    assert ingest.handle(TOPIC, three, AT).ack == early.ack  # parked twice is parked once
    middle = ingest.handle(TOPIC, two, AT)
    assert middle.ack is not None and middle.ack.missing == (SeqRange(first=1, last=4),)
    filled = ingest.handle(TOPIC, one, AT)
    assert filled.stored == 12
    assert filled.ack == Ack(store_id=STORE, box_id=BOX_A, stored_through=12)
    assert views.event_count(store) == 12
    assert views.fleet(store)[0].parked == 0


def test_overlapping_resends_store_only_what_is_new(ingest: Ingest, store: EventStore) -> None:
    sealed = box_stream(10)
    ingest.handle(TOPIC, payload(sealed[:6]), AT)
    later = ingest.handle(TOPIC, payload(sealed[3:]), AT)
    assert (later.duplicates, later.stored) == (3, 4)
    assert [r.seq for r in views.events(store)] == list(range(1, 11))


def test_a_second_text_for_a_stored_seq_is_quarantined_never_stored_over(
    ingest: Ingest, store: EventStore
) -> None:
    sealed = box_stream(5)
    ingest.handle(TOPIC, payload(sealed), AT)
    other = rechain([*(s.event for s in sealed[:4]), replace(sealed[4].event, amount=999)])
    out = ingest.handle(TOPIC, payload(other[4:]), AT)
    assert out.quarantined == (Refusal.CONFLICTING_EVENT,)
    assert out.ack is not None and out.ack.stored_through == 5
    assert views.events(store)[-1].body == sealed[4].text
    (conflict,) = views.conflicts(store)
    assert (conflict.kind, conflict.box_id, conflict.seq) == ("conflicting_event", BOX_A, 5)


def test_a_chain_break_stores_the_run_before_it_and_quarantines_the_rest(
    ingest: Ingest, store: EventStore
) -> None:
    sealed = box_stream(6)
    # Event 4 rewritten after event 5 was chained to the original: 5 no longer links on.
    tampered = [*sealed[:3], Sealed.seal(replace(sealed[3].event, amount=1)), *sealed[4:]]
    out = ingest.handle(TOPIC, payload(tampered), AT)
    assert (out.stored, out.quarantined) == (4, (Refusal.CHAIN_BREAK,))
    (broken,) = views.chain_breaks(store)
    assert (broken.seq, broken.fault) == (5, "hash_mismatch")
    assert out.ack is not None and out.ack.stored_through == 4


def test_signatures_from_unknown_foreign_or_forged_keys_are_refused(
    ingest: Ingest, store: EventStore
) -> None:
    sealed = box_stream(3)
    stranger = Ed25519PrivateKey.generate()
    assert ingest.handle(TOPIC, payload(sealed, key=stranger), AT).quarantined == ("unknown_key",)
    # store-002's key is registered, for store-002: it cannot sign for store-001's box.
    assert ingest.handle(TOPIC, payload(sealed, key=OTHER_KEY), AT).quarantined == ("other_store",)
    honest = batches.decode(payload(sealed))
    forged = batches.SignedBatch(
        batch=honest.batch, signature=OTHER_KEY.sign(batches.signing_bytes(honest.batch))
    )
    out = ingest.handle(TOPIC, batches.encode(forged), AT)
    assert (out.quarantined, out.ack) == (("bad_signature",), None)
    assert views.event_count(store) == 0


def test_what_is_no_batch_is_quarantined_by_the_decoders_reason(
    ingest: Ingest, store: EventStore
) -> None:
    good = payload(box_stream(2))
    cases = {
        b"x" * (batches.MAX_BATCH_BYTES + 1): ("oversize", TOPIC),
        b"{not json": ("malformed", TOPIC),
        good.replace(b'"schema_version":1', b'"schema_version":9'): ("unknown_version", TOPIC),
        good: ("topic_mismatch", events_topic(BOX_B)),
    }
    for data, (reason, topic) in cases.items():
        assert ingest.handle(topic, data, AT).quarantined == (reason,)
    assert ingest.handle("other/tree", good, AT).quarantined == ("foreign_topic",)
    assert ingest.handle("storeside/v1/s/b/nope", good, AT).quarantined == ("unknown_channel",)
    ack_topic = topics.topic(STORE, BOX_A, Channel.ACK)
    assert ingest.handle(ack_topic, good, AT).quarantined == (Refusal.UNEXPECTED_CHANNEL,)
    oversize = next(q for q in views.quarantined(store) if q.reason == "oversize")
    assert oversize.payload_size == batches.MAX_BATCH_BYTES + 1
    assert views.event_count(store) == 0


def test_a_bad_payload_sent_again_is_counted_not_stored_twice(
    ingest: Ingest, store: EventStore
) -> None:
    for _ in range(3):
        ingest.handle(TOPIC, b"{not json", AT)
    (row,) = views.quarantined(store)
    assert row.times == 3


def test_an_event_id_held_for_another_event_stops_the_run(
    ingest: Ingest, store: EventStore
) -> None:
    a = box_stream(3)
    ingest.handle(TOPIC, payload(a), AT)
    own = replace(event(1, prev_hash=None, box=BOX_B), event_id=envelope.event_id(AT, b"b" * 10))
    copied = rechain([own, replace(a[1].event, box_id=BOX_B)])  # box-a's event id for seq 2
    out = ingest.handle(events_topic(BOX_B), payload(copied), AT)
    assert (out.stored, out.quarantined) == (1, (Refusal.DUPLICATE_EVENT_ID,))
    assert out.ack is not None and out.ack.stored_through == 1


def test_values_no_column_can_hold_are_refused_whole(ingest: Ingest, store: EventStore) -> None:
    e = event(1, prev_hash=None, box=BOX_A)
    nul = rechain([replace(e, attribution=replace(e.attribution, till_id="t\x00"))])
    assert ingest.handle(TOPIC, payload(nul), AT).quarantined == (Refusal.UNSTORABLE_EVENT,)
    assert views.event_count(store) == 0


def test_parking_is_bounded_per_box(ingest: Ingest, store: EventStore) -> None:
    sealed = box_stream(stream.MAX_PARKED + 3)
    outs = [ingest.handle(TOPIC, payload([s]), AT) for s in sealed[2:]]
    assert all(o.parked for o in outs[: stream.MAX_PARKED])
    assert outs[-1].quarantined == (Refusal.PARKED_FULL,)
    ingest.handle(TOPIC, payload(sealed[:2]), AT)
    assert views.fleet(store)[0].stored_through == stream.MAX_PARKED + 2


def test_a_box_known_under_one_store_cannot_stream_as_another(
    ingest: Ingest, store: EventStore
) -> None:
    ingest.handle(TOPIC, payload(box_stream(2)), AT)
    # store-002's key signs a batch of box-a as store-002: a valid signature, a wrong stream.
    moved = box_stream(3, store="store-002")
    out = ingest.handle(
        events_topic(store="store-002"), payload(moved, key=OTHER_KEY, store="store-002"), AT
    )
    assert (out.quarantined, out.ack) == ((Refusal.OTHER_STORE_STREAM,), None)
    assert views.event_count(store) == 2
