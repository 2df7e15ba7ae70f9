"""The ledger API's queries on both backends, against the reference ledger: a keyset walk
visits every entry of a view exactly once, newest first, and the balances equal the fold."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.ledger_api import balances, cursor, entries
from cloud_sync.hq.ledger_api.view import RangeError, View
from edge_agent.domain.points.accounts import Category, MemberAccount
from edge_agent.domain.points.event import Channel, EventKind, Side
from tests.hq.ledger.history import History, build, end_of_history
from tests.points.factories import T0, P

US = timedelta(microseconds=1)

FILTERS: list[dict[str, Any]] = [
    {},
    {"category": Category.PROMISED},
    {"channel": Channel.IN_STORE},
    {"till": "T1"},
    {"store": "S001", "till": "T1"},
    {"kind": EventKind.BURN},
    {"side": Side.CREDIT, "category": Category.REGULAR},
    {"channel": Channel.HQ},
]


@pytest.fixture
def history(store: EventStore) -> History:
    return build(store)


def _view(history: History, member: str, **filters: Any) -> View:
    end = end_of_history(history) + timedelta(hours=1)
    return View.of(programme=P, holder=member, now=end, start=T0, **filters)


def _expected(history: History, view: View) -> list[tuple[str, int]]:
    """(entry id, signed) of the view, newest first, from the reference's events."""
    rows = []
    for order, event in enumerate(history.booked):
        for entry in event.entries():
            p = entry.posting
            a = p.account
            if not isinstance(a, MemberAccount) or a.member != view.holder:
                continue
            o = event.origin
            if not (view.start <= event.at < view.end):
                continue
            wanted = [
                (view.category, a.category),
                (view.channel, o.channel),
                (view.till, o.till),
                (view.store, o.store),
                (view.kind, event.kind),
                (view.side, p.side),
            ]
            if all(want is None or want == got for want, got in wanted):
                rows.append(((event.at, order, entry.index), entry.entry_id, p.signed))
    rows.sort(reverse=True)
    return [(eid, signed) for _, eid, signed in rows]


def _walk(store: EventStore, view: View) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    after: cursor.Key | None = None
    while True:
        got = store.run(partial(entries.page, view=view, after=after))
        assert len(got.entries) <= entries.PAGE_SIZE
        seen += [(e.entry_id, e.signed) for e in got.entries]
        if got.next_cursor is None:
            return seen
        assert len(got.entries) == entries.PAGE_SIZE
        after = cursor.decode(got.next_cursor)


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_the_walk_visits_every_entry_once_newest_first(
    store: EventStore, history: History, filters: dict[str, Any]
) -> None:
    for member in ("ann", "bob"):
        view = _view(history, member, **filters)
        expected = _expected(history, view)
        assert _walk(store, view) == expected
    assert len(_expected(history, _view(history, "ann"))) > 3 * entries.PAGE_SIZE


def _fold(history: History, view: View, before: datetime) -> int:
    categories = list(Category) if view.category is None else [view.category]
    assert view.holder is not None
    return sum(
        history.ledger.balance(MemberAccount(P, view.holder, c), as_of=before - US)
        for c in categories
    )


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_closing_balances_equal_the_fold(
    store: EventStore, history: History, filters: dict[str, Any]
) -> None:
    # Ranges that start and end inside days, at midnight, and on an event's very instant.
    mid = history.booked[len(history.booked) // 2].at
    ranges = [
        (T0 + timedelta(days=3, hours=5), T0 + timedelta(days=9, hours=13)),
        (datetime(2025, 3, 4, tzinfo=T0.tzinfo), datetime(2025, 3, 12, tzinfo=T0.tzinfo)),
        (mid, mid + timedelta(days=2)),
        (mid - timedelta(days=1), mid),
    ]
    for start, end in ranges:
        view = View.of(programme=P, holder="ann", now=end, start=start, end=end, **filters)
        got = store.run(partial(balances.closing, view=view))
        assert got.closing_balance == _fold(history, view, end)
        assert got.opening_balance == _fold(history, view, start)
        assert got.view_net == sum(signed for _, signed in _expected(history, view))
        if not view.filters_entries:
            assert got.view_net == got.closing_balance - got.opening_balance


def test_current_balances_per_category(store: EventStore, history: History) -> None:
    for member in ("ann", "bob", "cy"):
        got = store.run(partial(balances.current, programme=P, holder=member))
        assert {b.category: b.balance for b in got} == {
            c.value: b for c, b in history.ledger.member_balances(P, member).items()
        }
        assert all(b.opened_at == T0 for b in got)
    assert store.run(lambda tx: balances.current(tx, programme=P, holder="nobody")) == []


def test_the_default_range_is_the_last_seven_days(store: EventStore, history: History) -> None:
    now = end_of_history(history) + US
    view = View.of(programme=P, holder="ann", now=now)
    assert (view.start, view.end) == (now - timedelta(days=7), now)
    got = store.run(lambda tx: entries.page(tx, view, size=1000)).entries
    assert got and all(now - timedelta(days=7) <= e.at < now for e in got)
    assert [(e.entry_id, e.signed) for e in got] == _expected(history, view)
    with pytest.raises(RangeError):
        View.of(programme=P, holder="ann", now=now, start=now)


def test_entries_say_what_the_ledger_shows(store: EventStore, history: History) -> None:
    view = _view(history, "ann", kind=EventKind.EARN, channel=Channel.IN_STORE)
    first = store.run(lambda tx: entries.page(tx, view)).entries[0]
    event = next(e for e in history.booked if e.event_id == first.event_id)
    posting = event.postings[int(first.entry_id.rpartition("#")[2])]
    assert first.entry_id.startswith(f"{event.event_id}#")
    assert (first.kind, first.at, first.side, first.points) == (
        event.kind, event.at, posting.side, posting.points,
    )  # fmt: skip
    assert (first.programme, first.holder, first.category) == (P, "ann", "regular")
    assert (first.store, first.till, first.channel) == (
        event.origin.store, event.origin.till, Channel.IN_STORE,
    )  # fmt: skip


def test_a_walk_in_booking_order_reads_every_entry_of_the_programme(
    store: EventStore, history: History
) -> None:
    view = View.of(programme=P, holder=None, now=end_of_history(history) + US, start=T0)
    got = list(entries.walk(store, view, chunk=7))
    assert [e.entry_id for e in got] == [x.entry_id for e in history.booked for x in e.entries()]
    assert sum(e.signed for e in got) == 0


def test_foreign_cursors_are_refused() -> None:
    key = cursor.Key(at=1_700_000_000_000_000, pos=12, idx=1)
    assert cursor.decode(cursor.encode(key)) == key
    for bad in ("", "x", "djEuMS4y", cursor.encode(key) + "A" * 100, "!!!!"):
        with pytest.raises(cursor.CursorError):
            cursor.decode(bad)


@given(st.text(max_size=120))
def test_any_text_is_a_cursor_or_a_typed_refusal(text: str) -> None:
    try:
        key = cursor.decode(text)
    except cursor.CursorError:
        return
    assert cursor.decode(cursor.encode(key)) == key


@given(
    st.builds(
        cursor.Key,
        at=st.integers(-(2**62), 2**62),
        pos=st.integers(1, 2**62),
        idx=st.integers(0, 10_000),
    )
)
def test_every_key_round_trips_through_its_cursor(key: cursor.Key) -> None:
    token = cursor.encode(key)
    assert len(token) <= cursor.MAX_LENGTH and cursor.decode(token) == key
