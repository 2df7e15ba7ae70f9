"""``event_rescue.plan`` on a chain of real events: what links is kept, what is lost is never
invented, what follows a loss is sealed again, and an altered text is never sent."""

from __future__ import annotations

from datetime import timedelta

from cloud_sync.contract.chain import ChainLink, Sealed, verify_chain
from cloud_sync.contract.event_envelope import GENESIS_HASH, Attribution, EventType, event_hash
from edge_agent.cache import event_rescue
from edge_agent.events.event_log import build_event
from tests.cache.factories import NOW, STORE

BOX = "box-1"


def chain(count: int) -> list[Sealed]:
    out: list[Sealed] = []
    head = GENESIS_HASH
    for seq in range(1, count + 1):
        event = build_event(
            box_id=BOX,
            seq=seq,
            type=EventType.REDEEMED,
            occurred_at=NOW + timedelta(seconds=seq),
            code=None,
            attribution=Attribution(store_id=STORE, till_id="t1", cashier_id="c1"),
            amount=100 * seq,
            random_bytes=bytes([seq]) * 10,
            prev_hash=head,
        )
        out.append(Sealed.seal(event))
        head = event_hash(out[-1].text)
    return out


def found(texts: dict[int, list[str]], *, acked: int = 0, next_seq: int = 11) -> event_rescue.Found:
    return event_rescue.Found(
        box_id=BOX, acked_through=acked, next_seq=next_seq, chain_head=None,
        anchor_text=None, texts=texts, unreadable_reads=0,
    )  # fmt: skip


def altered(sealed: Sealed) -> str:
    return sealed.text.replace(f'"amount":{sealed.event.amount}', '"amount":999999')


def test_an_altered_text_is_lost_not_sent_and_what_follows_is_sealed_again() -> None:
    events = chain(10)
    texts = {e.event.seq: [e.text] for e in events}
    assert texts[4][0] != altered(events[3])
    texts[4] = [altered(events[3])]  # decodes and links to 3, but 5 does not link to it
    texts[7] = [altered(events[6])]  # after the loss: 8's link does not vouch for it
    texts.pop(9)  # unreadable in both tables
    plan = event_rescue.plan(found(texts), box_id=None)
    assert plan.lost == ((4, 4), (7, 7), (9, 9))
    sent = [s.event.event_id for s in plan.events]
    assert events[6].event.event_id not in sent and events[8].event.event_id not in sent
    assert all(s.event.amount != 999999 for s in plan.events)
    assert verify_chain(plan.events, anchor=ChainLink.start(BOX)).ok
    assert [s.event.seq for s in plan.events] == list(range(1, len(plan.events) + 1))


def test_a_complete_rescue_keeps_every_text_as_written() -> None:
    events = chain(10)
    plan = event_rescue.plan(
        found({e.event.seq: [e.text] for e in events[3:]}, acked=3), box_id=BOX
    )
    assert [s.text for s in plan.events] == [e.text for e in events[3:]]
    assert (plan.kept, plan.resequenced, plan.lost) == (7, 0, ())
    assert plan.head == ChainLink.after(events[-1])
