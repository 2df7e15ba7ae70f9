"""The proximity results report from stored events, on both backends: per campaign and rule,
triggered, held out, suppressed by reason and delivered; check-ins per store; a window is
``[since, until)`` of the boxes' times, read in pages; the CLI prints the same."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cloud_sync.hq.cli import main
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.member_push.retry_policy import RetryPolicy
from cloud_sync.hq.member_push.webhook import Webhook
from cloud_sync.hq.member_push.worker import PushWorker
from cloud_sync.hq.proximity_results import report
from cloud_sync.hq.proximity_results.report import RuleResult, StoreCheckIns
from tests.hq.ingest.builders import AT, BOX_B, OTHER_KEY, events_topic, payload, rechain
from tests.hq.member_push.presence_events import (
    Clock,
    checked_in,
    ingest_all,
    renumbered,
    suppressed,
    triggered,
)
from tests.hq.member_push.receiver import Receiver, Reply

DAY = timedelta(days=1)


def store_a_day(ingest: Ingest) -> None:
    ingest_all(
        ingest,
        renumbered(
            [
                triggered(1, member="M1"),
                triggered(2, member="M2"),
                triggered(3, member="M3", campaign="proximity-new", rule="door-enter"),
                suppressed(4, "holdout", member="M4", campaign="proximity-loyal"),
                suppressed(5, "cap_day", member="M1"),
                suppressed(6, "cap_visit", member="M1"),
                suppressed(7, "quiet_hours", member="M5", rule="door-enter"),
                suppressed(8, "campaign_unavailable", member="M6", campaign="proximity-lapsed"),
                suppressed(9, "no_consent"),
                suppressed(10, "unknown_member"),
                checked_in(11, member="M1", how="card"),
                checked_in(12, member="M1", how="token"),
                checked_in(13, member="M2", how="token"),
                # The next day: outside the window below.
                triggered(14, member="M7", at=AT + DAY),
                checked_in(15, member="M7", at=AT + DAY),
            ]
        ),
    )
    # Another store's box (its own key): its check-in counts under its store.
    other = rechain([checked_in(1, box=BOX_B, store="store-002", member="M9")])
    outcome = ingest.handle(
        events_topic(BOX_B, "store-002"), payload(other, key=OTHER_KEY, store="store-002"), AT
    )
    assert outcome.stored == 1


def test_a_window_of_results_per_campaign_and_rule_and_check_ins_per_store(
    ingest: Ingest, store: EventStore, receiver: Receiver, webhook: Webhook, clock: Clock
) -> None:
    store_a_day(ingest)
    receiver.plan.extend([Reply(), Reply(status=410)])  # M1's delivered, M2's refused
    PushWorker(store=store, sender=webhook, clock=clock, policy=RetryPolicy()).drain()
    results = report.read(store, since=AT, until=AT + DAY)
    assert results.rules == (
        RuleResult(
            campaign_id="proximity-lapsed",
            rule_id="coffee-dwell",
            suppressed={"campaign_unavailable": 1},
        ),
        RuleResult(
            campaign_id="proximity-loyal",
            rule_id="coffee-dwell",
            triggered=2,
            held_out=1,
            delivered=1,
            push_failed=1,
        ),
        RuleResult(campaign_id="proximity-new", rule_id="door-enter", triggered=1, delivered=1),
        RuleResult(
            campaign_id=None, rule_id="coffee-dwell", suppressed={"cap_day": 1, "cap_visit": 1}
        ),
        RuleResult(campaign_id=None, rule_id="door-enter", suppressed={"quiet_hours": 1}),
        RuleResult(
            campaign_id=None, rule_id=None, suppressed={"no_consent": 1, "unknown_member": 1}
        ),
    )
    assert results.check_ins == (
        StoreCheckIns(store_id="store-001", check_ins=3, members=2, by_how={"card": 1, "token": 2}),
        StoreCheckIns(store_id="store-002", check_ins=1, members=1, by_how={"card": 1}),
    )
    one = report.read(store, since=AT, until=AT + DAY, store_id="store-002")
    assert (one.rules, [c.store_id for c in one.check_ins]) == ((), ["store-002"])
    nextday = report.read(store, since=AT + DAY, until=AT + 2 * DAY)
    assert [(r.campaign_id, r.triggered) for r in nextday.rules] == [("proximity-loyal", 1)]
    with pytest.raises(ValueError, match="empty window"):
        report.read(store, since=AT, until=AT)


def test_a_window_longer_than_a_page_counts_every_event(
    ingest: Ingest, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same occurred_at for several events: the keyset (time, box, seq) must not skip ties.
    events = [
        checked_in(n, member=f"M{n % 4}", at=AT + timedelta(seconds=n // 3)) for n in range(1, 12)
    ]
    ingest_all(ingest, renumbered(events))
    monkeypatch.setattr(report, "PAGE", 2)
    [taps] = report.read(store, since=AT, until=AT + DAY).check_ins
    assert (taps.check_ins, taps.members) == (11, 4)


def test_the_cli_prints_the_report_and_its_json(
    ingest: Ingest, location: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store_a_day(ingest)
    window = ["--since", AT.isoformat(), "--until", (AT + DAY).isoformat()]
    assert main(["proximity-results", "--db", location, *window]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"proximity results, every store, {AT.isoformat()} to {(AT + DAY).isoformat()}"
    assert "proximity-loyal\tcoffee-dwell\t2\t1\t0\t0\t-" in out
    assert "-\tcoffee-dwell\t0\t0\t0\t0\tcap_day=1 cap_visit=1" in out
    assert "store-001\t3\t2\tcard=1 token=2" in out
    assert (
        main(["proximity-results", "--db", location, *window, "--store", "store-001", "--json"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["store_id"] == "store-001" and len(doc["rules"]) == 6
    assert doc["check_ins"] == [
        {"store_id": "store-001", "check_ins": 3, "members": 2, "by_how": {"card": 1, "token": 2}}
    ]
    assert (
        main(
            [
                "proximity-results",
                "--db",
                location,
                "--since",
                AT.isoformat(),
                "--until",
                AT.isoformat(),
            ]
        )
        == 2
    )
    assert "is not before --until" in capsys.readouterr().err
