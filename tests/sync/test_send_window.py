"""The send window and the drain's token bucket: pure, so checked exhaustively here."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract.ack import Ack, SeqRange
from cloud_sync.contract.send_window import SendWindow, TokenBucket


def ack(through: int, *missing: tuple[int, int]) -> Ack:
    ranges = tuple(SeqRange(first=a, last=b) for a, b in missing)
    return Ack(store_id="s", box_id="b", stored_through=through, missing=ranges)


def test_the_window_bounds_what_is_in_flight() -> None:
    w = SendWindow(acked=0, max_in_flight=2)
    assert w.next_send() == 1
    w.sent(1, 10, now=0)
    w.sent(11, 20, now=0)
    assert w.next_send() is None  # full
    assert w.on_ack(ack(10))
    assert w.next_send() == 21 and [b.first for b in w.in_flight] == [11]


def test_acks_are_cumulative_and_never_go_back() -> None:
    w = SendWindow(acked=5, max_in_flight=4)
    assert w.cursor == 6
    w.sent(6, 9, now=0)
    assert w.on_ack(ack(9)) and not w.on_ack(ack(7)) and not w.on_ack(ack(9))
    assert w.acked == 9 and w.cursor == 10


def test_a_missing_range_not_in_flight_rewinds_to_it() -> None:
    w = SendWindow(acked=0, max_in_flight=4)
    for first in (1, 11, 21):
        w.sent(first, first + 9, now=0)
    w.on_ack(ack(0, (1, 10)))  # HQ holds 11..30 parked; 1..10 is in flight: wait
    assert w.cursor == 31
    w.on_ack(ack(10, (11, 20)))  # 11..20 is in flight too (just acked past 10)
    assert w.cursor == 31
    w2 = SendWindow(acked=0, max_in_flight=4)
    w2.sent(1, 10, now=0)
    w2.sent(11, 20, now=0)
    w2.on_ack(ack(10))
    w2.in_flight.clear()  # say 11..20 was written off
    w2.on_ack(ack(10, (11, 20)))
    assert w2.cursor == 11


def test_a_silent_hq_rewinds_to_the_last_ack_after_the_timeout() -> None:
    w = SendWindow(acked=3, max_in_flight=4)
    w.sent(4, 8, now=10.0)
    assert not w.expired(now=12.0, timeout_s=5)
    assert w.expired(now=15.0, timeout_s=5)
    assert w.cursor == 4 and w.in_flight == []


def test_sending_out_of_order_is_a_bug() -> None:
    w = SendWindow(acked=0, max_in_flight=1)
    with pytest.raises(ValueError):
        w.sent(2, 3, now=0)
    with pytest.raises(ValueError):
        SendWindow(acked=0, max_in_flight=0)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from("sar"), st.integers(1, 30)), max_size=60))
def test_the_cursor_never_falls_behind_the_ack(steps: list[tuple[str, int]]) -> None:
    w = SendWindow(acked=0, max_in_flight=3)
    top = 0  # the highest seq sent so far; HQ can only ack what it got
    for kind, n in steps:
        if kind == "s" and w.next_send() is not None:
            w.sent(w.cursor, w.cursor + n - 1, now=0)
            top = max(top, w.cursor - 1)
        elif kind == "a":
            w.on_ack(ack(min(top, w.acked + n)))
        elif kind == "r":
            w.rewind()
        assert w.cursor > w.acked
        assert len(w.in_flight) <= 3
        assert all(b.last > w.acked and b.last < w.cursor for b in w.in_flight)


def test_the_bucket_paces_a_drain() -> None:
    b = TokenBucket(rate=100.0)
    assert b.wait_s(50, now=0.0) == pytest.approx(0.5)  # starts empty: no burst at start
    assert b.wait_s(50, now=0.5) == 0
    b.take(50, now=0.5)
    assert b.wait_s(50, now=0.5) == pytest.approx(0.5)
    assert b.wait_s(500, now=10.0) == 0  # a batch over the burst waits for one second's worth
    b.take(500, now=10.0)
    assert b.wait_s(1, now=10.0) > 4  # and pays the debt back before the next


def test_an_overtaken_ack_does_not_rewind() -> None:
    w = SendWindow(acked=0, max_in_flight=4)
    for first in (1, 11, 21):
        w.sent(first, first + 9, now=0)
    w.on_ack(ack(20))
    w.in_flight.clear()  # even with nothing left in flight to cover the hole it names
    assert not w.on_ack(ack(5, (6, 10)))  # an older worker's ack, delivered late
    assert w.cursor == 31 and w.acked == 20
