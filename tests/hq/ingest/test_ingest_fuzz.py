"""Hypothesis against the ingest core: whatever arrives on whatever topic, ``handle`` never
raises and always ends in a typed outcome (applied, presence, or quarantined with a reason
one of the decoders, the signature check or ingest itself defines). Runs on SQLite, in a
file of its own per run (the backends share every statement, and the fuzz is about the core).
Failures print Hypothesis's seed and the shrunk example."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sync.contract import decode_errors, topics
from cloud_sync.contract.event_envelope import Attribution
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.batch_verifier import SignatureFault
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.ingest.keyring import Keyring
from cloud_sync.hq.ingest.quarantine import Refusal
from tests.contract.streams import event
from tests.hq.ingest.builders import (
    AT,
    BOX_A,
    KEY,
    STORE,
    box_stream,
    payload,
    rechain,
)
from tests.sync.test_batch_signing import registered


def _reasons(base: type) -> set[str]:
    found, todo = set(), [base]
    while todo:
        cls = todo.pop()
        found.add(cls.reason)
        todo.extend(cls.__subclasses__())
    return found


KNOWN = (
    _reasons(topics.TopicError)
    | _reasons(decode_errors.DecodeError)
    | {f.value for f in SignatureFault}
    | {r.value for r in Refusal}
)
GOOD = payload(box_stream(3))
TOPIC_NAMES = st.one_of(
    st.sampled_from([topics.topic(STORE, BOX_A, c) for c in Channel]),
    st.text(max_size=40),
    st.builds(
        lambda s, b, c: f"storeside/v1/{s}/{b}/{c}",
        st.text(max_size=8),
        st.text(max_size=8),
        st.text(max_size=8),
    ),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def odd_events(draw: st.DrawFn) -> bytes:
    """A properly signed batch whose events carry arbitrary strings and integers."""
    text = st.text(max_size=12)
    e = event(1, prev_hash=None, box=BOX_A)
    e = replace(
        e,
        code=draw(st.none() | text),
        amount=draw(st.integers(-(2**70), 2**70)),
        details=draw(st.dictionaries(text, st.integers() | text | st.booleans(), max_size=3)),
        attribution=Attribution(
            store_id=STORE,
            till_id=draw(text),
            cashier_id=draw(text),
            member_id=draw(st.none() | text),
        ),
    )
    return payload(rechain([e]))


PAYLOADS = st.one_of(st.binary(max_size=300), mutated(), odd_events(), st.just(GOOD))


@contextmanager
def fresh_ingest() -> Iterator[Ingest]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_event_store(str(Path(tmp) / "fuzz.db"))
        try:
            yield Ingest(store=store, keyring=Keyring(lambda: [registered(KEY)]))
        finally:
            store.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TOPIC_NAMES, PAYLOADS), min_size=1, max_size=4))
def test_any_message_ends_in_a_typed_outcome(messages: list[tuple[str, bytes]]) -> None:
    with fresh_ingest() as ingest:
        for topic, data in messages:
            out = ingest.handle(topic, data, AT)
            assert set(out.quarantined) <= KNOWN
            if not out.quarantined:  # then it was applied: a batch acked, or presence
                assert (out.channel is Channel.EVENTS and out.ack is not None) or (
                    out.channel in (Channel.STATE, Channel.HEALTH)
                )
