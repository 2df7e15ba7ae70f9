"""The hash chain: a box's stream verifies, and every way of breaking it is named at the first
event that no longer follows."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract.chain import ChainFault, ChainLink, Sealed, verify_chain
from tests.contract.streams import BOX, stream


def test_a_stream_verifies_and_its_head_is_the_last_link() -> None:
    events = stream(5)
    verdict = verify_chain(events, anchor=ChainLink.start(BOX))
    assert verdict.ok and verdict.broken is None
    assert verdict.head == ChainLink(
        box_id=BOX, seq=5, hash=envelope.event_hash(events[-1].text), chained=True
    )
    assert events[0].event.prev_hash == envelope.GENESIS_HASH


def test_nothing_verifies_to_the_anchor() -> None:
    anchor = ChainLink.start(BOX)
    assert verify_chain([], anchor=anchor).head == anchor


@settings(max_examples=100)
@given(st.integers(min_value=1, max_value=12), st.data())
def test_verifying_in_runs_is_verifying_at_once(count: int, data: st.DataObject) -> None:
    events = stream(count)
    cut = data.draw(st.integers(min_value=0, max_value=count))
    first = verify_chain(events[:cut], anchor=ChainLink.start(BOX))
    second = verify_chain(events[cut:], anchor=first.head)
    assert second.ok and second.head == verify_chain(events, anchor=ChainLink.start(BOX)).head


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=6), st.integers(min_value=1, max_value=6))
def test_version_one_history_then_the_chain_links_on_its_last_event(
    unchained: int, chained: int
) -> None:
    events = stream(unchained + chained, unchained=unchained)
    verdict = verify_chain(events, anchor=ChainLink.start(BOX))
    assert verdict.ok and verdict.head.chained
    if unchained:
        first_chained = events[unchained].event
        assert first_chained.prev_hash == envelope.event_hash(events[unchained - 1].text)


def test_a_version_one_event_after_the_chain_is_a_downgrade() -> None:
    events = stream(3)
    old = Sealed.seal(replace(stream(4, unchained=4)[3].event))  # seq 4, no prev_hash
    verdict = verify_chain([*events, old], anchor=ChainLink.start(BOX))
    assert verdict.broken is not None and verdict.broken.fault is ChainFault.DOWNGRADE
    assert verdict.broken.seq == 4 and verdict.head.seq == 3


def test_the_first_event_must_link_to_genesis() -> None:
    first = stream(1)[0]
    forged = Sealed.seal(replace(first.event, prev_hash="1" * 64))
    verdict = verify_chain([forged], anchor=ChainLink.start(BOX))
    assert verdict.broken is not None and verdict.broken.fault is ChainFault.HASH_MISMATCH
    assert "genesis" in verdict.broken.detail


MUTATIONS = ("drop", "swap", "repeat", "alter", "other_box", "relink")


@settings(max_examples=300)
@given(st.integers(min_value=2, max_value=10), st.sampled_from(MUTATIONS), st.data())
def test_every_tampering_is_named_at_the_first_event_that_no_longer_follows(
    count: int, mutation: str, data: st.DataObject
) -> None:
    events = stream(count)
    i = data.draw(st.integers(min_value=0, max_value=count - 2))
    tampered = list(events)
    if mutation == "drop":  # event i+1 never arrives
        del tampered[i]
        expected = (ChainFault.SEQ_GAP, i + 2)
    elif mutation == "swap":
        tampered[i], tampered[i + 1] = tampered[i + 1], tampered[i]
        expected = (ChainFault.SEQ_GAP, i + 2)
    elif mutation == "repeat":
        tampered.insert(i + 1, tampered[i])
        expected = (ChainFault.SEQ_NOT_NEXT, i + 1)
    elif mutation == "alter":  # an event rewritten after the next one linked to it
        tampered[i] = Sealed.seal(replace(events[i].event, amount=events[i].event.amount + 1))
        expected = (ChainFault.HASH_MISMATCH, i + 2)
    elif mutation == "other_box":
        tampered[i] = Sealed.seal(replace(events[i].event, box_id="box-002"))
        expected = (ChainFault.OTHER_BOX, i + 1)
    else:  # relinked: a forged event whose prev_hash is right, its successor's no longer is
        forged = replace(events[i + 1].event, amount=0)
        tampered[i + 1] = Sealed.seal(forged)
        expected = (ChainFault.HASH_MISMATCH, i + 3) if i + 2 < count else None
    verdict = verify_chain(tampered, anchor=ChainLink.start(BOX))
    if expected is None:  # the forged last event links correctly: only the next one tells
        assert verdict.ok
        return
    assert verdict.broken is not None
    assert (verdict.broken.fault, verdict.broken.seq) == expected
    if mutation not in ("alter", "relink"):  # the head is the last genuine event verified
        genuine = verify_chain(events[: verdict.head.seq], anchor=ChainLink.start(BOX))
        assert verdict.head == genuine.head


GENUINE = stream(6)
POOL = GENUINE + stream(3, box="box-002")  # box A's genuine events, and another box's


@settings(max_examples=400)
@given(st.lists(st.integers(min_value=0, max_value=len(POOL) - 1), max_size=8))
def test_only_a_genuine_prefix_of_the_stream_verifies(picks: list[int]) -> None:
    events = [POOL[i] for i in picks]
    verdict = verify_chain(events, anchor=ChainLink.start(BOX))  # total: never raises
    assert verdict.ok == (events == GENUINE[: len(events)])
    if not verdict.ok:
        assert verdict.broken is not None and verdict.head.seq < len(events)
