"""Two ingest workers on one PostgreSQL store at once, as a shared subscription makes them:
consecutive batches of one box handled at the same moment by two threads, each with its own
connection, must end exactly as handling them one after the other does; and groups of the
same boxes, listed in opposite orders, never deadlock."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

import pytest

from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract.event_envelope import EventType
from cloud_sync.hq.ingest import postgres_backend, views
from cloud_sync.hq.ingest.core import Delivery, Ingest
from cloud_sync.hq.ingest.event_store import EventStore, Tx, open_event_store
from cloud_sync.hq.ingest.keyring import Keyring
from tests.contract.streams import event
from tests.hq.ingest import pg
from tests.hq.ingest.builders import (
    AT,
    BOX_A,
    BOX_B,
    KEY,
    box_stream,
    events_topic,
    payload,
    payloads,
    rechain,
)
from tests.sync.test_batch_signing import registered

ROUNDS = 30


def worker(location: str) -> Ingest:
    return Ingest(store=open_event_store(location), keyring=Keyring(lambda: [registered(KEY)]))


def in_pairs(workers: Sequence[Ingest], jobs: Sequence[tuple[str, bytes]]) -> list[BaseException]:
    """Hand ``jobs`` two at a time to the two workers, both released by one barrier."""
    return in_lockstep(
        [
            [partial(w.handle, topic, data, AT) for topic, data in jobs[i::2]]
            for i, w in enumerate(workers)
        ]
    )


def in_lockstep(steps: Sequence[Sequence[Callable[[], object]]]) -> list[BaseException]:
    """Run each thread's steps, the n-th steps of both released together by one barrier."""
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            for step in steps[index]:
                barrier.wait(timeout=10)
                step()
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return failures


def rows(store: EventStore) -> list[object]:
    def read(tx: Tx) -> list[object]:
        return [
            tx.query("SELECT box_id, seq, event_id, body, hash FROM events ORDER BY box_id, seq"),
            tx.query("SELECT box_id, stored_through, head_hash FROM streams ORDER BY box_id"),
            tx.query("SELECT count(*) FROM parked"),
            tx.query("SELECT reason FROM quarantine"),
        ]

    return store.run(read)


def serially(location: str, jobs: Sequence[tuple[str, bytes]]) -> list[object]:
    one = worker(location)
    for topic, data in jobs:
        one.handle(topic, data, AT)
    return rows(one.store)


def concurrently(location: str, jobs: Sequence[tuple[str, bytes]]) -> list[object]:
    workers = [worker(location), worker(location)]
    assert in_pairs(workers, jobs) == []
    return rows(workers[0].store)


def check_same(pg_database: str, make: Callable[[], list[tuple[str, bytes]]]) -> list[object]:
    jobs = make()
    serial = serially(pg.fresh_schema(pg_database), jobs)
    both = concurrently(pg.fresh_schema(pg_database), jobs)
    assert both == serial
    return both


def test_consecutive_batches_of_one_box_on_two_workers_end_as_serial(pg_database: str) -> None:
    sealed = box_stream(ROUNDS * 4)
    jobs = [(events_topic(), p) for p in payloads(sealed, 2)]
    events, streams, parked, quarantined = check_same(pg_database, lambda: jobs)
    assert len(events) == ROUNDS * 4  # type: ignore[arg-type]
    assert streams == [(BOX_A, ROUNDS * 4, envelope.event_hash(sealed[-1].text))]
    assert (parked, quarantined) == ([(0,)], [])


def test_redemptions_of_one_code_from_two_boxes_at_once_are_a_conflict(
    pg_database: str,
) -> None:
    def redemption(box: str, seq: int) -> envelope.EventEnvelope:
        e = event(seq, prev_hash=None, box=box)
        return replace(
            e,
            event_id=envelope.event_id(e.occurred_at, f"{box}:{seq}".encode().ljust(10, b".")),
            type=EventType.REDEEMED,
            code=f"CODE{seq}",
            details={"use_limit": 1},
        )

    # Round k: box A's and box B's k-th redemption, of the same code, handled at once.
    a = rechain([redemption(BOX_A, k) for k in range(1, ROUNDS + 1)])
    b = rechain([redemption(BOX_B, k) for k in range(1, ROUNDS + 1)])
    jobs = [
        job
        for k in range(ROUNDS)
        for job in ((events_topic(BOX_A), payload([a[k]])), (events_topic(BOX_B), payload([b[k]])))
    ]
    location = pg.fresh_schema(pg_database)
    workers = [worker(location), worker(location)]
    assert in_pairs(workers, jobs) == []
    found = views.conflicts(workers[0].store)
    assert sorted(c.code or "" for c in found) == sorted(f"CODE{k}" for k in range(1, ROUNDS + 1))
    assert all(len(c.detail["redemptions"]) == 2 for c in found)


def test_groups_of_the_same_boxes_in_opposite_orders_never_deadlock(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One attempt per transaction: a deadlock PostgreSQL broke fails here, not retried. Each
    round, each worker gets one batch of every box, dealt at random as a shared subscription
    deals (so many arrive early and park), one worker's group listing the boxes forwards
    and the other's backwards; every box's first event redeems one code (a conflict)."""
    monkeypatch.setattr(postgres_backend, "RETRIES", 1)
    seed = random.randrange(2**32)
    print(f"dealing seed {seed}")
    rng = random.Random(seed)
    boxes = [f"box-c{n}" for n in range(6)]
    per_box = {}
    for box in boxes:
        redeemed = []
        for k in range(1, ROUNDS + 1):
            e = event(k, prev_hash=None, box=box)
            unique = envelope.event_id(e.occurred_at, f"{box}:{k}".encode().ljust(10, b"."))
            redeemed.append(replace(e, event_id=unique, type=EventType.REDEEMED, code=f"C{box}{k}"))
        redeemed[0] = replace(redeemed[0], code="SHARED", details={"use_limit": 1})
        per_box[box] = [
            Delivery(topic=events_topic(box), payload=p, received_at=AT)
            for p in payloads(rechain(redeemed), 3)
        ]
    dealt: list[list[list[Delivery]]] = [[], []]
    for r in range(len(per_box[boxes[0]]) // 2):
        groups: list[list[Delivery]] = [[], []]
        for box in boxes:
            pair = per_box[box][2 * r : 2 * r + 2]
            rng.shuffle(pair)
            groups[0].append(pair[0])
            groups[1].append(pair[1])
        dealt[0].append(groups[0])
        dealt[1].append(groups[1][::-1])
    location = pg.fresh_schema(pg_database)
    workers = [worker(location), worker(location)]
    failures = in_lockstep(
        [[partial(w.handle_many, g) for g in mine] for w, mine in zip(workers, dealt, strict=True)]
    )
    assert failures == [], f"seed {seed}"
    events, streams, parked, quarantined = rows(workers[0].store)
    assert len(events) == len(boxes) * ROUNDS  # type: ignore[arg-type]
    assert [row[:2] for row in streams] == [(b, ROUNDS) for b in boxes]  # type: ignore[attr-defined]
    assert (parked, quarantined) == ([(0,)], [])
    assert [c.code for c in views.conflicts(workers[0].store)] == ["SHARED"]
