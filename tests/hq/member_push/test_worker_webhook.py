"""The delivery worker against a real HTTP receiver (``receiver.py``), on both event store
backends: 5xx then 2xx is retried after its backoff and delivered, 4xx fails for good with the
receiver's reason, a slow receiver is a timeout and retried, what cannot be pushed fails
without a request, and neither the secret nor the QR payload reaches a log or the record.
The worker's clock is stepped (``Clock``): nothing here waits for a backoff."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest

from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from cloud_sync.hq.member_push import push_queue, status
from cloud_sync.hq.member_push.retry_policy import RetryPolicy
from cloud_sync.hq.member_push.webhook import Webhook
from cloud_sync.hq.member_push.worker import PushWorker
from tests.agent_process import free_port
from tests.hq.ingest.builders import AT
from tests.hq.member_push.presence_events import (
    QR_PREFIX,
    SECRET,
    Clock,
    ingest_all,
    queued,
    renumbered,
    triggered,
)
from tests.hq.member_push.receiver import Receiver, Reply

POLICY = RetryPolicy(base=timedelta(seconds=2), cap=timedelta(seconds=60), max_attempts=3)


def worker(store: EventStore, webhook: Webhook, clock: Clock) -> PushWorker:
    return PushWorker(store=store, sender=webhook, policy=POLICY, clock=clock)


def test_a_5xx_is_retried_after_its_backoff_then_delivered(
    ingest: Ingest, store: EventStore, receiver: Receiver, webhook: Webhook, clock: Clock
) -> None:
    [sealed] = ingest_all(ingest, [triggered(1)])
    event_id = sealed.event.event_id
    receiver.plan.extend([Reply(status=503, body=b"maintenance")])
    w = worker(store, webhook, clock)
    assert w.drain() == 1
    record = status.record(store, event_id)
    assert record is not None
    assert (record.state, record.attempts, record.last_status) == ("pending", 1, 503)
    assert record.last_error == "HTTP 503: maintenance"
    assert record.due_at == AT + timedelta(seconds=2)
    clock.advance(seconds=1.9)
    assert w.drain() == 0  # not due yet: nothing sent
    clock.advance(seconds=0.1)
    assert w.drain() == 1
    record = status.record(store, event_id)
    assert record is not None
    assert (record.state, record.attempts, record.last_status, record.last_error) == (
        "delivered", 2, 200, None,
    )  # fmt: skip
    first, second = receiver.received
    assert [first.idempotency_key, second.idempotency_key] == [event_id, event_id]
    assert [first.attempt, second.attempt] == ["1", "2"]
    assert first.body == second.body  # the same bytes, signed afresh
    assert [first.refused_because, second.refused_because] == [None, None]
    assert first.doc["event_id"] == event_id and first.doc["member_id"] == "M1001"
    clock.advance(days=1)
    assert w.drain() == 0  # delivered is final
    assert len(receiver.received) == 2
    assert (w.tally.delivered, w.tally.retried, w.tally.failed) == (1, 1, 0)


def test_a_4xx_fails_for_good_with_the_receivers_reason_and_can_be_requeued(
    ingest: Ingest, store: EventStore, receiver: Receiver, webhook: Webhook, clock: Clock
) -> None:
    [sealed] = ingest_all(ingest, [triggered(1)])
    event_id, qr = sealed.event.event_id, sealed.event.details["qr_payload"]
    # A receiver that echoes what it got: the QR payload must not end in HQ's record.
    receiver.plan.append(
        Reply(status=400, body=f'{{"error":"unknown member","got":"{qr}"}}'.encode())
    )
    w = worker(store, webhook, clock)
    assert w.drain() == 1
    clock.advance(hours=1)
    assert w.drain() == 0  # never again by itself
    record = status.record(store, event_id)
    assert record is not None and record.state == "failed" and record.last_status == 400
    assert record.last_error == 'refused: HTTP 400: {"error":"unknown member","got":"[redacted]"}'
    summary = status.summary(store, now=clock.now)
    assert (summary.pending, summary.delivered, summary.failed) == (0, 0, 1)
    assert [f.event_id for f in summary.last_failures] == [event_id]

    assert store.run(lambda tx: push_queue.requeue(tx, [event_id, "nope"], now=clock.now)) == 1
    assert w.drain() == 1
    assert queued(store) == [(event_id, "delivered", 1)]  # attempts count afresh
    assert len(receiver.received) == 2


def test_a_slow_receiver_is_a_timeout_and_the_offer_goes_again(
    ingest: Ingest, store: EventStore, receiver: Receiver, webhook: Webhook, clock: Clock
) -> None:
    [sealed] = ingest_all(ingest, [triggered(1)])
    receiver.plan.append(Reply(delay_s=webhook.timeout_s * 3))
    w = worker(store, webhook, clock)
    assert w.drain() == 1
    record = status.record(store, sealed.event.event_id)
    assert record is not None and record.state == "pending"
    assert (record.last_status, record.last_error) == (None, "timed out after 0.5 s")
    clock.advance(seconds=2)
    assert w.drain() == 1
    assert queued(store) == [(sealed.event.event_id, "delivered", 2)]
    # The receiver saw it twice (the first it answered too late): the same idempotency key.
    assert receiver.idempotency_keys() == [sealed.event.event_id] * 2


def test_no_receiver_is_retried_until_the_attempts_run_out(
    ingest: Ingest, store: EventStore, clock: Clock
) -> None:
    [sealed] = ingest_all(ingest, [triggered(1)])
    nobody = Webhook(url=f"http://127.0.0.1:{free_port()}/offers", secret=SECRET, timeout_s=0.5)
    w = worker(store, nobody, clock)
    for _ in range(POLICY.max_attempts):
        assert w.drain() == 1
        clock.advance(minutes=1)
    record = status.record(store, sealed.event.event_id)
    assert record is not None and record.state == "failed" and record.attempts == 3
    assert record.last_error is not None
    assert record.last_error.startswith("gave up after 3 attempts: connection failed:")


def test_a_redirect_is_not_followed_and_retry_after_is_honoured(
    ingest: Ingest, store: EventStore, receiver: Receiver, webhook: Webhook, clock: Clock
) -> None:
    moved, busy = ingest_all(ingest, renumbered([triggered(1), triggered(2, member="M2")]))
    receiver.plan.extend(
        [
            Reply(status=308, headers={"Location": receiver.url + "/v2"}),
            Reply(status=429, headers={"Retry-After": "30"}),
        ]
    )
    w = worker(store, webhook, clock)
    assert w.drain() == 2
    assert len(receiver.received) == 2  # the redirect's target was never asked
    gone = status.record(store, moved.event.event_id)
    assert gone is not None and (gone.state, gone.last_status) == ("failed", 308)
    later = status.record(store, busy.event.event_id)
    assert later is not None and later.due_at == AT + timedelta(seconds=30)


def test_what_cannot_be_pushed_fails_without_a_request(
    ingest: Ingest, store: EventStore, receiver: Receiver, webhook: Webhook, clock: Clock
) -> None:
    events = renumbered(
        [
            triggered(1, member=None),
            triggered(2, qr_payload=None),
            triggered(3, expires=AT + timedelta(minutes=1)),
        ]
    )
    ingest_all(ingest, events)
    clock.advance(minutes=2)  # the third has expired by now
    w = worker(store, webhook, clock)
    assert w.drain() == 3
    assert receiver.received == []
    reasons = [status.record(store, e.event_id) for e in events]
    assert [r.last_error for r in reasons if r is not None] == [
        "unpushable: no member_id: nobody to push it to",
        "unpushable: details.qr_payload is missing or not a non-empty string",
        f"expired at {events[2].details['expires_at']} before delivery",
    ]


def test_logs_and_records_never_hold_the_secret_or_the_qr_payload(
    ingest: Ingest,
    receiver: Receiver,
    webhook: Webhook,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = ingest.store
    ingest_all(ingest, renumbered([triggered(n) for n in range(1, 5)]))
    # A debugging receiver that answers with its secret and the request it got.
    said = b"secret " + SECRET + b" got "
    receiver.plan.extend(
        [Reply(status=500, body=said, echo=True), Reply(status=400, body=said, echo=True)]
    )
    w = worker(store, webhook, clock)
    w.drain()
    clock.advance(minutes=5)
    w.drain()
    assert sorted(s for _, s, _ in queued(store)) == ["delivered"] * 3 + ["failed"]
    errors = store.run(lambda tx: tx.query("SELECT last_error FROM member_push"))
    assert "failed: refused: HTTP 400: secret [redacted] got " in caplog.text
    assert "[redacted]" in caplog.text.split("HTTP 500")[1]
    kept = caplog.text + repr(errors) + repr(webhook)
    assert QR_PREFIX not in kept
    assert SECRET.decode() not in kept


def test_two_workers_deliver_each_offer_once(
    ingest: Ingest, location: str, receiver: Receiver, webhook: Webhook, clock: Clock
) -> None:
    sealed = ingest_all(ingest, renumbered([triggered(n, member=f"M{n}") for n in range(1, 31)]))
    stores = [open_event_store(location) for _ in range(2)]
    workers = [worker(s, webhook, clock) for s in stores]
    try:
        threads = [threading.Thread(target=w.drain) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        for s in stores:
            s.close()
    assert sorted(k or "" for k in receiver.idempotency_keys()) == sorted(
        s.event.event_id for s in sealed
    )
    assert sum(w.tally.delivered for w in workers) == 30
    assert all(r.refused_because is None for r in receiver.received)
