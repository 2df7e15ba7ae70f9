"""What ingest concludes across boxes and over time, on both backends: double redemptions
between stores, presence by session, health and lag in the fleet view."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract import presence, topics
from cloud_sync.contract.event_envelope import EventType
from cloud_sync.contract.presence import BoxState, Health, State
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore
from tests.contract.streams import event
from tests.hq.ingest.builders import (
    AT,
    BOX_A,
    BOX_B,
    STORE,
    box_stream,
    events_topic,
    payload,
    rechain,
)

CODE = "SSK7HQ2P9XM"


def redemption(
    box: str, seq: int, *, use_limit: int | None, code: str = CODE
) -> envelope.EventEnvelope:
    e = event(seq, prev_hash=None, box=box)
    return replace(
        e,
        event_id=envelope.event_id(e.occurred_at, f"{box}{seq}".encode().ljust(10, b"-")[:10]),
        type=EventType.REDEEMED,
        code=code,
        attribution=replace(e.attribution, till_id=f"till-{box}", member_id=f"m-{box}"),
        details={} if use_limit is None else {"use_limit": use_limit},
    )


def test_one_code_over_its_limit_from_two_boxes_is_a_conflict_with_both_attributions(
    ingest: Ingest, store: EventStore
) -> None:
    a = rechain([redemption(BOX_A, 1, use_limit=1)])
    assert ingest.handle(events_topic(BOX_A), payload(a), AT).conflicts == 0
    b = rechain([redemption(BOX_B, 1, use_limit=1)])
    assert ingest.handle(events_topic(BOX_B), payload(b), AT).conflicts == 1
    (conflict,) = views.conflicts(store)
    assert (conflict.kind, conflict.code, conflict.detail["use_limit"]) == (
        "double_redemption",
        CODE,
        1,
    )
    uses = conflict.detail["redemptions"]
    assert {(u["box_id"], u["till_id"], u["member_id"], u["seq"]) for u in uses} == {
        (BOX_A, "till-box-a", "m-box-a", 1),
        (BOX_B, "till-box-b", "m-box-b", 1),
    }
    assert all(u["store_id"] == STORE and u["cashier_id"] == "c-1" for u in uses)
    assert {u["event_id"] for u in uses} == {a[0].event.event_id, b[0].event.event_id}


def test_within_the_limit_or_from_one_box_or_without_a_limit_is_no_conflict(
    ingest: Ingest, store: EventStore
) -> None:
    a = [
        redemption(BOX_A, 1, use_limit=2),  # a limit of 2, used once by each box: allowed
        redemption(BOX_A, 2, use_limit=1, code="X1"),  # one box over the limit on its own:
        redemption(BOX_A, 3, use_limit=1, code="X1"),  # the box's own record, not two stores
        redemption(BOX_A, 4, use_limit=None, code="F1"),  # no per-code limit: nothing to
    ]
    b = [
        redemption(BOX_B, 1, use_limit=2),
        redemption(BOX_B, 2, use_limit=None, code="F1"),  # exceed, from any number of boxes
    ]
    assert ingest.handle(events_topic(BOX_A), payload(rechain(a)), AT).stored == 4
    assert ingest.handle(events_topic(BOX_B), payload(rechain(b)), AT).stored == 2
    assert views.conflicts(store) == []


def test_a_will_of_an_old_session_does_not_take_a_box_offline(
    ingest: Ingest, store: EventStore
) -> None:
    topic = topics.topic(STORE, BOX_A, Channel.STATE)

    def state(kind: BoxState, session: int) -> bool:
        data = presence.encode_state(
            State(store_id=STORE, box_id=BOX_A, state=kind, session=session)
        )
        return ingest.handle(topic, data, AT).presence_changed

    assert state(BoxState.ONLINE, 5)
    assert not state(BoxState.OFFLINE, 4)  # the will of the session before, late
    assert views.fleet(store)[0].state == "online"
    assert state(BoxState.OFFLINE, 5)  # the session ends
    assert not state(BoxState.ONLINE, 5)  # an online of an ended session is stale
    assert not state(BoxState.OFFLINE, 5)  # the same will again
    assert state(BoxState.ONLINE, 6)
    row = views.fleet(store)[0]
    assert (row.state, row.session) == ("online", 6)


def health(*, session: int, next_seq: int, at_minutes: int, depth: int) -> Health:
    at = AT + timedelta(minutes=at_minutes)
    return Health(
        store_id=STORE,
        box_id=BOX_A,
        session=session,
        at=at,
        agent_version="0.1.0",
        cache_version="v1",
        printer_state="ok",
        outbox_depth=depth,
        oldest_unsent_at=at - timedelta(minutes=1),
        next_seq=next_seq,
        acked_through=0,
        last_ack_at=None,
        oldest_retained_seq=1,
        clock_offset_ms=0,
    )


def test_the_fleet_view_shows_the_latest_health_and_the_lag(
    ingest: Ingest, store: EventStore
) -> None:
    ingest.handle(events_topic(BOX_A), payload(box_stream(4)), AT)
    topic = topics.topic(STORE, BOX_A, Channel.HEALTH)
    newer = health(session=2, next_seq=11, at_minutes=5, depth=6)
    assert ingest.handle(topic, presence.encode_health(newer), AT).presence_changed
    older = health(session=2, next_seq=3, at_minutes=1, depth=2)
    assert not ingest.handle(topic, presence.encode_health(older), AT).presence_changed
    (row,) = views.fleet(store)
    assert (row.stored_through, row.outbox_depth, row.lag) == (4, 6, 6)
    assert row.oldest_unsent_at == newer.oldest_unsent_at
    assert row.state is None  # no state message yet
