"""A group of messages in one transaction (``Ingest.handle_many``) ends exactly as the same
messages one transaction each, in the same order: the same rows in every table, the same
outcome per message, and each box's ack the last one it would have got. Hypothesis draws the
messages (repeats included) from a pool that has a bit of everything, and how they are cut
into groups, on both backends, each run in stores of its own. Failures print the seed and
the shrunk example."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sync.contract import presence, topics
from cloud_sync.contract.ack import Ack
from cloud_sync.contract.presence import BoxState, State
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.ingest.core import Delivery, Ingest, Outcome
from cloud_sync.hq.ingest.event_store import Tx, open_event_store
from cloud_sync.hq.ingest.keyring import Keyring
from tests.hq.ingest import pg
from tests.hq.ingest.builders import (
    AT,
    BOX_A,
    BOX_B,
    KEY,
    OTHER_KEY,
    events_topic,
    payload,
    rechain,
)
from tests.hq.ingest.test_fleet_facts import redemption
from tests.sync.test_batch_signing import registered

TABLES = ("streams", "events", "parked", "quarantine", "chain_breaks", "conflicts", "presence")
SURROGATE_ID = ("quarantine", "conflicts")  # tables whose first column is a row id
SHARED_CODE = "SSKDBL2P9XM"  # redeemed once by each box, with a use limit of 1

# Box A: 9 events, its 2nd a redemption of the shared code; a second version of 4-6.
_A = [redemption(BOX_A, seq, use_limit=None) for seq in range(1, 10)]
_A[1] = redemption(BOX_A, 2, use_limit=1, code=SHARED_CODE)
A = rechain(_A)
A_OTHER = rechain(_A[:3] + [replace(e, amount=e.amount + 1) for e in _A[3:6]])
# Box B: 4 events, its 1st the shared code's other redemption.
B = rechain(
    [redemption(BOX_B, 1, use_limit=1, code=SHARED_CODE)]
    + [redemption(BOX_B, seq, use_limit=None) for seq in range(2, 5)]
)
STRANGER = Ed25519PrivateKey.generate()


def _state(state: BoxState, session: int) -> tuple[str, bytes]:
    message = State(store_id="store-001", box_id=BOX_A, state=state, session=session)
    return topics.topic("store-001", BOX_A, Channel.STATE), presence.encode_state(message)


POOL: tuple[tuple[str, bytes], ...] = (
    (events_topic(BOX_A), payload(A[0:3])),
    (events_topic(BOX_A), payload(A[3:6])),
    (events_topic(BOX_A), payload(A[6:9])),  # parked until 4-6 are stored
    (events_topic(BOX_A), payload(A[4:8])),  # overlapping: duplicates, then new
    (events_topic(BOX_A), payload(A_OTHER[3:6])),  # a conflict, or the version stored first
    (events_topic(BOX_B), payload(B[0:2])),
    (events_topic(BOX_B), payload(B[2:4])),
    (events_topic(BOX_B), payload(B[2:4], key=STRANGER)),  # forged: unknown_key
    # Box A claimed by store-002 (its key): refused, or box A's store if it comes first.
    (events_topic(BOX_A, "store-002"), payload(A[0:3], key=OTHER_KEY, store="store-002")),
    (events_topic(BOX_A), b"{broken"),
    ("not/a/storeside/topic", b"x"),
    _state(BoxState.ONLINE, 1),
    _state(BoxState.OFFLINE, 1),
    _state(BoxState.ONLINE, 2),
)


def _fresh(backend: str, tmp_path: Path, pg_url: str | None) -> Ingest:
    if backend == "sqlite":
        location = str(tmp_path / f"events-{secrets.token_hex(4)}.db")
    else:
        assert pg_url is not None
        location = pg.fresh_schema(pg_url)
    keys = [registered(KEY), registered(OTHER_KEY, store="store-002")]
    return Ingest(store=open_event_store(location), keyring=Keyring(lambda: keys))


def _tables(ingest: Ingest) -> list[object]:
    def read(tx: Tx) -> list[object]:
        tables = []
        for table in TABLES:
            rows = tx.query(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
            if table in SURROGATE_ID:
                # The id says in which order rows were made, and a group records refusals
                # and checks redemptions after all its batches: compared without it.
                rows = sorted(row[1:] for row in rows)
            tables.append(rows)
        return tables

    return ingest.store.run(read)


def _last_acks(outcomes: Sequence[Outcome]) -> dict[tuple[str, str], Ack]:
    return {(o.ack.store_id, o.ack.box_id): o.ack for o in outcomes if o.ack is not None}


def _told(outcome: Outcome) -> Outcome:
    """An outcome without its ack: within a group, each box's is its last."""
    return replace(outcome, ack=None)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_group_ends_as_its_messages_one_by_one(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, data: st.DataObject
) -> None:
    pg_url = request.getfixturevalue("pg_database") if backend == "postgresql" else None
    picks = data.draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=14), label="messages")
    deliveries = [Delivery(topic=t, payload=p, received_at=AT) for t, p in picks]
    sizes = data.draw(
        st.lists(st.integers(1, len(deliveries)), min_size=1, max_size=len(deliveries)),
        label="group sizes",
    )

    one_by_one = _fresh(backend, tmp_path, pg_url)
    alone = [one_by_one.handle(d.topic, d.payload, d.received_at) for d in deliveries]

    grouped = _fresh(backend, tmp_path, pg_url)
    together: list[Outcome] = []
    start = 0
    for size in sizes:
        if start < len(deliveries):
            group = deliveries[start : start + size]
            outcomes = grouped.handle_many(group)
            assert len(outcomes) == len(group)
            together += outcomes
            start += size
    together += grouped.handle_many(deliveries[start:])

    assert _tables(grouped) == _tables(one_by_one)
    assert [_told(o) for o in together] == [_told(o) for o in alone]
    assert _last_acks(together) == _last_acks(alone)
    one_by_one.store.close()
    grouped.store.close()


def test_a_group_of_two_boxes_out_of_order_is_stored_whole_and_answered_once_per_box(
    tmp_path: Path,
) -> None:
    ingest = _fresh("sqlite", tmp_path, None)
    group = [
        (events_topic(BOX_A), payload(A[6:9])),  # parks...
        (events_topic(BOX_B), payload(B[0:2])),
        (events_topic(BOX_A), payload(A[0:3])),
        (events_topic(BOX_A), payload(A[3:6])),  # ... and is drained here
        (events_topic(BOX_A), payload(A[3:6])),  # a redelivery
        (events_topic(BOX_B), payload(B[2:4], key=STRANGER)),
    ]
    out = ingest.handle_many([Delivery(topic=t, payload=p, received_at=AT) for t, p in group])
    assert [(o.stored, o.duplicates, o.parked, o.quarantined) for o in out] == [
        (0, 0, True, ()),
        (2, 0, False, ()),
        (3, 0, False, ()),
        (6, 0, False, ()),
        (0, 3, False, ()),
        (0, 0, False, ("unknown_key",)),
    ]
    assert sum(o.conflicts for o in out) == 1  # the shared code, told once
    acks = _last_acks(out)
    assert {box: (a.stored_through, a.missing) for (_, box), a in acks.items()} == {
        BOX_A: (9, ()),
        BOX_B: (2, ()),
    }
    a_acks = {o.ack for o in out if o.ack is not None and o.ack.box_id == BOX_A}
    assert a_acks == {acks[("store-001", BOX_A)]}  # every message of box A: its last ack
    ingest.store.close()
