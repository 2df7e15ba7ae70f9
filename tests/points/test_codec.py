"""The ledger event codec: every event round-trips, and anything else gets a typed answer.

What travels from a till to HQ (``points.posted``'s ``details.ledger``) and what HQ stores is
this object, so a decoder that raised anything but ``LedgerCodecError`` on a mangled message
would stop an intake queue; one that accepted an unbalanced event would corrupt the ledger.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.domain.points import codec, kinds
from edge_agent.domain.points.accounts import Category, MemberAccount
from edge_agent.domain.points.codec import (
    BadLedgerValueError,
    LedgerCodecError,
    MissingLedgerFieldError,
    UnknownLedgerFieldError,
    WrongLedgerTypeError,
)
from edge_agent.domain.points.event import Channel, LedgerEvent, Origin
from tests.points.factories import HQ, T0, TILL, P, acct

ids = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20)
amounts = st.integers(1, 2**40)
origins = st.builds(
    Origin,
    channel=st.sampled_from(Channel),
    store=st.none() | ids,
    till=st.none() | ids,
)
accounts = st.builds(MemberAccount, st.just(P), ids, st.sampled_from(Category))
times = st.integers(0, 10**9).map(lambda s: T0 + timedelta(seconds=s))


@st.composite
def events(draw: st.DrawFn) -> LedgerEvent:
    kind = draw(st.sampled_from(["earn", "burn", "transfer", "refund", "bulk", "opening"]))
    common: dict[str, Any] = {"event_id": draw(ids), "at": draw(times), "origin": draw(origins)}
    if kind == "earn":
        return kinds.earn(**common, account=draw(accounts), points=draw(amounts),
                          campaign=draw(st.none() | ids))  # fmt: skip
    if kind == "burn":
        return kinds.burn(**common, account=draw(accounts), points=draw(amounts))
    if kind == "transfer":
        sender, recipient = draw(st.lists(accounts, min_size=2, max_size=2, unique=True))
        return kinds.transfer(**common, sender=sender, recipient=recipient, points=draw(amounts))
    if kind == "refund":
        returned, restored = draw(amounts), draw(st.integers(0, 500))
        return kinds.refund_return(**common, account=draw(accounts), returned=returned,
                                   restored=restored)  # fmt: skip
    if kind == "bulk":
        members = draw(st.lists(accounts, min_size=1, max_size=5, unique=True))
        return kinds.bulk_award(**common, accounts=members, points=draw(amounts))
    return kinds.opening(**common, account=draw(accounts), points=draw(st.integers(-500, 500)))


@given(events())
def test_every_event_round_trips_through_json(event: LedgerEvent) -> None:
    doc = codec.encode(event)
    text = json.dumps(doc)
    assert codec.decode(json.loads(text)) == event
    assert codec.encode(codec.decode(doc)) == doc


def _doc() -> dict[str, Any]:
    event = kinds.earn(event_id="e1", at=T0, origin=TILL, account=acct("ann"), points=50)
    return codec.encode(event)


@pytest.mark.parametrize(
    ("mangle", "error", "field"),
    [
        (lambda d: d.pop("kind"), MissingLedgerFieldError, "kind"),
        (lambda d: d.update(extra=1), UnknownLedgerFieldError, "extra"),
        (lambda d: d.update(at="yesterday"), BadLedgerValueError, "at"),
        (lambda d: d.update(at="2025-03-01T09:00:00"), BadLedgerValueError, "at"),
        (lambda d: d.update(kind="gift"), BadLedgerValueError, "kind"),
        (lambda d: d["postings"][0].update(points=True), WrongLedgerTypeError,
         "postings[0].points"),
        (lambda d: d["postings"][0].update(points=-5), BadLedgerValueError, "postings[0].points"),
        (lambda d: d["postings"][1].update(points=49), BadLedgerValueError, "postings"),
        (lambda d: d.update(postings=[]), BadLedgerValueError, "postings"),
        (lambda d: d["postings"][0].update(side="up"), BadLedgerValueError, "postings[0].side"),
        (lambda d: d["postings"][0]["account"].pop("member"), MissingLedgerFieldError,
         "postings[0].account.member"),
        (lambda d: d["origin"].update(channel="fax"), BadLedgerValueError, "origin"),
        (lambda d: d.update(event_id=""), BadLedgerValueError, "event_id"),
        (lambda d: d.update(programme=7), WrongLedgerTypeError, "programme"),
    ],
)  # fmt: skip
def test_each_fault_is_named(mangle: Any, error: type[LedgerCodecError], field: str) -> None:
    doc = _doc()
    mangle(doc)
    with pytest.raises(error) as caught:
        codec.decode(doc)
    assert caught.value.field == field
    assert caught.value.reason in {"missing_field", "unknown_field", "wrong_type", "bad_value"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(st.data())
def test_any_field_replaced_gets_a_typed_answer(data: st.DataObject) -> None:
    doc = _doc()
    path = data.draw(st.sampled_from(["top", "origin", "posting", "account"]))
    target = {
        "top": doc,
        "origin": doc["origin"],
        "posting": doc["postings"][0],
        "account": doc["postings"][0]["account"],
    }[path]
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(json_values)
    try:
        codec.decode(doc)
    except LedgerCodecError:
        pass  # a typed refusal; an accepted document must still be a balanced event
    else:
        assert sum(p.signed for p in codec.decode(doc).postings) == 0


@given(json_values)
def test_any_json_value_gets_a_typed_answer(value: object) -> None:
    with pytest.raises(LedgerCodecError):
        codec.decode(value)


def test_a_programme_account_round_trips() -> None:
    event = kinds.earn(event_id="e2", at=T0, origin=HQ, account=acct("bob"), points=3)
    doc = codec.encode(event)
    assert doc["postings"][1]["account"] == {"programme_account": "liability"}
    assert codec.decode(doc) == event
