"""The event store's `storeside-hq` views, run as an operator runs them, on a store that
ingest filled: tables and --json of the same rows, filters, refusals in one line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract import presence, topics
from cloud_sync.contract.event_envelope import EventType
from cloud_sync.contract.presence import BoxState, State
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.ingest.keyring import Keyring
from tests.contract.streams import event
from tests.hq.conftest import run_hq
from tests.hq.ingest.builders import (
    AT,
    BOX_A,
    BOX_B,
    KEY,
    STORE,
    box_stream,
    events_topic,
    payload,
    rechain,
)
from tests.sync.test_batch_signing import registered


def filled(path: Path) -> str:
    """An event store with box-a's 6 events (the last 2 parked behind a hole), box-b's
    redemption of box-a's code, box-a online, and one refused payload."""
    store = open_event_store(str(path))
    ingest = Ingest(store=store, keyring=Keyring(lambda: [registered(KEY)]))
    a = box_stream(6)
    ingest.handle(events_topic(BOX_A), payload(a[:3]), AT)
    ingest.handle(events_topic(BOX_A), payload(a[4:]), AT)
    e = event(1, prev_hash=None, box=BOX_B)
    b = replace(
        e,
        event_id=envelope.event_id(AT, b"box-b-0001"),
        details={"use_limit": 1},
        type=EventType.REDEEMED,
    )
    ingest.handle(events_topic(BOX_B), payload(rechain([b])), AT)
    online = State(store_id=STORE, box_id=BOX_A, state=BoxState.ONLINE, session=2)
    ingest.handle(topics.topic(STORE, BOX_A, Channel.STATE), presence.encode_state(online), AT)
    ingest.handle(events_topic(BOX_A), b"{broken", AT)
    store.close()
    return str(path)


def test_fleet_shows_each_box_with_its_stream_and_holes(tmp_path: Path) -> None:
    db = filled(tmp_path / "events.db")
    table = run_hq("fleet", "--db", db)
    assert table.returncode == 0, table.stderr
    header, line_a, line_b = table.stdout.splitlines()
    assert header.split("\t")[:3] == ["store", "box", "state"]
    cells = line_a.split("\t")
    assert (cells[1], cells[2], cells[6], cells[8], cells[9]) == (BOX_A, "online", "3", "1", "4-4")
    assert line_b.split("\t")[2] == "unknown"
    rows = json.loads(run_hq("fleet", "--db", db, "--json").stdout)
    assert [(r["box_id"], r["stored_through"], r["missing"]) for r in rows] == [
        (BOX_A, 3, [{"first": 4, "last": 4}]),
        (BOX_B, 1, []),
    ]


def test_events_filter_by_box_code_type_and_time(tmp_path: Path) -> None:
    db = filled(tmp_path / "events.db")

    def seqs(*filters: str) -> list[tuple[str, int]]:
        done = run_hq("events", "--db", db, "--json", *filters)
        assert done.returncode == 0, done.stderr
        return [(r["box_id"], r["seq"]) for r in json.loads(done.stdout)]

    assert seqs("--box", BOX_A) == [(BOX_A, 1), (BOX_A, 2), (BOX_A, 3)]
    assert seqs("--box", BOX_B, "--type", "code.redeemed") == [(BOX_B, 1)]
    second = event(2, prev_hash=None).occurred_at.isoformat()
    assert seqs("--since", second, "--until", event(3, prev_hash=None).occurred_at.isoformat()) == [
        (BOX_A, 2)
    ]
    assert seqs("--code", "NOSUCHCODE") == []
    table = run_hq("events", "--db", db, "--store", STORE).stdout.splitlines()
    assert len(table) == 5 and table[0].startswith("occurred_at\tstore\tbox")


def test_conflicts_and_quarantine_list_what_ingest_refused(tmp_path: Path) -> None:
    db = filled(tmp_path / "events.db")
    conflicts = json.loads(run_hq("conflicts", "--db", db, "--json").stdout)
    # box-a's stored events and box-b's redeem one code; box-b's says it allows one use.
    assert [c["kind"] for c in conflicts] == ["double_redemption"]
    assert {u["box_id"] for u in conflicts[0]["detail"]["redemptions"]} == {BOX_A, BOX_B}
    assert "4 uses, limit 1" in run_hq("conflicts", "--db", db).stdout
    (refused,) = json.loads(run_hq("quarantine", "--db", db, "--json").stdout)
    assert (refused["reason"], refused["box_id"], refused["times"]) == ("malformed", BOX_A, 1)


def test_views_refuse_what_is_no_event_store_in_one_line(tmp_path: Path) -> None:
    other = tmp_path / "hq.db"
    assert run_hq("--db", str(other), "init").returncode == 0
    done = run_hq("fleet", "--db", str(other))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "not an HQ event store" in done.stderr
    bad = run_hq("resend", "--box", BOX_A, "--from", "9", "--to", "5")
    assert bad.returncode == 2 and "--from 9 is after --to 5" in bad.stderr
