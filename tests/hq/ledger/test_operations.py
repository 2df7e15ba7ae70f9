"""HQ's own ledger events through ``storeside-hq points`` and the functions under it, on
both backends: every kind booked under its deterministic id, a rerun a no-op, a refusal
exit 2 with nothing booked, merges (a negative victim too), and the whole ledger as the
reference folds it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cloud_sync.hq import cli
from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.ledger import operations
from cloud_sync.hq.ledger.book import decode_text
from edge_agent.domain.points.accounts import Category, MemberAccount, liability
from edge_agent.domain.points.admission import Admitted, Replayed
from edge_agent.domain.points.ledger import Ledger
from tests.hq.ingest.builders import AT
from tests.hq.ledger.postings import PROGRAMME, acct, assert_matches, balance_at

WHEN = AT.isoformat()


def points(location: str, *args: str) -> int:
    return cli.main(["points", args[0], "--db", location, *args[1:]])


def refold(store: EventStore) -> Ledger:
    """The booked events, in booking order, applied to the reference: each must be admitted."""
    ledger = Ledger()
    rows = store.run(lambda tx: tx.query("SELECT body FROM ledger_events ORDER BY pos"))
    for (body,) in rows:
        assert isinstance(ledger.apply(decode_text(str(body))), Admitted)
    return ledger


def test_every_hq_kind_books_once_and_refusals_book_nothing(
    location: str, store: EventStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert points(location, "open", "ann") == 0
    assert points(location, "open", "ann") == 0
    assert capsys.readouterr().out.splitlines() == [
        "booked\topening:main:ann:regular",
        "already booked\topening:main:ann:regular",
    ]
    migration = tmp_path / "balances.csv"
    migration.write_text("member_id,points\nbob,300\ncarl,-20\nann,50\n")
    for _ in range(2):
        assert points(location, "import", str(migration), "--at", WHEN) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["balances: 3 booked, 0 already booked", "balances: 0 booked, 3 already booked"]
    members = tmp_path / "members.csv"
    members.write_text("member_id\nann\nbob\ndan\nann\n")
    award = ["award", "--campaign", "SPRING", "--award", "a1", "--points", "10", "--members"]
    assert points(location, *award, str(members), "--at", WHEN) == 0
    assert points(location, *award, str(members)) == 0  # a rerun later: the same award
    assert "0 booked now, 1 already booked" in capsys.readouterr().out.splitlines()[-1]
    promised = ["award", "--campaign", "WELCOME", "--award", "p1", "--points", "40"]
    assert points(location, *promised, "--members", str(members), "--category", "promised") == 0
    assert points(location, "transfer", "--id", "t1", "bob", "ann", "100", "--at", WHEN) == 0
    later = (AT + timedelta(days=1)).isoformat()
    assert points(location, "transfer", "--id", "t1", "bob", "ann", "100", "--at", later) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "already booked\ttransfer:main:t1"
    assert points(location, "transfer", "--id", "t1", "bob", "ann", "101") == 2  # other content
    assert points(location, "transfer", "--id", "t2", "dan", "ann", "11") == 2  # dan holds 10
    assert "11" in capsys.readouterr().err and balance_at(store, acct("dan")) == 10
    assert points(location, "referral", "--id", "r1", "ann", "25", "--campaign", "FRIENDS") == 0
    assert points(location, "referral-return", "--id", "r1", "ann", "25") == 0
    assert points(location, "convert", "--id", "c1", "ann", "30") == 0
    assert points(location, "convert", "--id", "c2", "ann", "11") == 2  # 10 promised left
    assert (
        points(location, "refund", "--id", "rf1", "ann", "--returned", "5", "--restored", "2") == 0
    )
    assert points(location, "merge", "carl", "dan") == 0  # carl owes 20: the debt moves
    assert points(location, "merge", "bob", "ann") == 0
    assert points(location, "merge", "bob", "ann") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "already booked\tmerge:main:bob"
    assert points(location, "open", "eve", "--category", "trigger_based") == 0
    expected = {
        "ann": 0 + 50 + 10 + 100 + 25 - 25 + 30 - 5 + 2 + (300 + 10 - 100),
        "bob": 0,
        "carl": 0,
        "dan": 10 - 20,
    }
    for member, balance in expected.items():
        assert balance_at(store, acct(member)) == balance, member
    assert balance_at(store, acct("ann", Category.PROMISED)) == 10 + 40  # bob's, merged
    assert balance_at(store, MemberAccount(PROGRAMME, "bob", Category.PROMISED)) == 0
    reference = refold(store)
    assert_matches(store, reference, [AT - timedelta(days=1), AT, AT + timedelta(days=2)])
    assert reference.balance(liability(PROGRAMME)) == -sum(
        b
        for a in reference.accounts()
        if isinstance(a, MemberAccount)
        for b in [reference.balance(a)]
    )


def test_merge_of_a_negative_victim_flips_the_signs_and_keeps_two_ledgers(
    store: EventStore,
) -> None:
    def book() -> None:
        store.run(lambda tx: operations.import_balance(tx, acct("vic"), -40, at=AT, now=AT))
        store.run(lambda tx: operations.import_balance(tx, acct("sue"), 100, at=AT, now=AT))

    book()
    merged = store.run(
        lambda tx: operations.merge(
            tx, programme=PROGRAMME, victim="vic", survivor="sue", at=AT, now=AT
        )
    )
    assert isinstance(merged, Admitted)
    victim, survivor = merged.event.postings
    assert (victim.account, victim.side.value, victim.points) == (acct("vic"), "credit", 40)
    assert (survivor.account, survivor.side.value, survivor.points) == (acct("sue"), "debit", 40)
    assert (balance_at(store, acct("vic")), balance_at(store, acct("sue"))) == (0, 60)
    again = store.run(
        lambda tx: operations.merge(
            tx, programme=PROGRAMME, victim="vic", survivor="sue", at=AT, now=AT
        )
    )
    assert isinstance(again, Replayed)
    entries = store.run(
        lambda tx: tx.query(
            "SELECT holder, COUNT(*) FROM ledger_entries GROUP BY holder ORDER BY holder"
        )
    )
    assert [tuple(r) for r in entries] == [("", 2), ("sue", 2), ("vic", 2)]  # separate ledgers
    book()  # the imports again: already booked
    assert balance_at(store, acct("sue")) == 60


def test_a_large_award_is_one_event_and_transaction_per_chunk(
    location: str, store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "BULK_CHUNK", 2)
    members = tmp_path / "members.csv"
    members.write_text("member_id\n" + "".join(f"m{i}\n" for i in (4, 1, 3, 0, 2, 1)))
    award = ["award", "--campaign", "SPRING", "--award", "a1", "--points", "3", "--members"]
    assert points(location, *award, str(members), "--at", WHEN) == 0
    assert points(location, *award, str(members)) == 0
    rows = store.run(
        lambda tx: tx.query(
            "SELECT e.event_id, COUNT(*) FROM ledger_events e JOIN ledger_entries n "
            "ON n.pos = e.pos WHERE e.kind = 'bulk_award' GROUP BY e.event_id ORDER BY 1"
        )
    )
    assert [tuple(r) for r in rows] == [
        ("bulk:main:SPRING:a1:0", 3),  # m0, m1 and the liability
        ("bulk:main:SPRING:a1:1", 3),
        ("bulk:main:SPRING:a1:2", 2),
    ]
    assert [balance_at(store, acct(f"m{i}")) for i in range(5)] == [3] * 5
