"""A restart of the delivery worker loses nothing, on both backends. The guarantee is
at-least-once with one idempotency key: a worker killed (SIGKILL) while a request is in flight
leaves that one offer to be sent again when its lease ends, so the receiver sees that event id
twice (the same body bytes) and every other once; a worker stopped cleanly (SIGTERM, here its
stop event) finishes the request in hand first and nothing is sent twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.member_push import status
from cloud_sync.hq.member_push.webhook import Webhook
from cloud_sync.hq.member_push.worker import PushWorker
from tests.hq.member_push import receiver as receivers
from tests.hq.member_push.presence_events import (
    FAR,
    SECRET,
    Clock,
    ingest_all,
    queued,
    renumbered,
    triggered,
)
from tests.hq.member_push.receiver import Receiver, Reply

LEASE_S = 3.0


def wall() -> datetime:
    return datetime.now(UTC)


def test_a_killed_worker_loses_nothing_and_resends_only_the_offer_in_flight(
    ingest: Ingest, store: EventStore, location: str, secret_path: Path, tmp_path: Path
) -> None:
    sealed = ingest_all(ingest, renumbered([triggered(n, expires=FAR) for n in range(1, 6)]))
    ids = [s.event.event_id for s in sealed]
    with receivers.running(SECRET, wall) as receiver:
        receiver.plan.extend([Reply(), Reply(), Reply(hold=True)])  # the third never answers
        log = (tmp_path / "push.log").open("w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "cloud_sync.hq.cli", "push", "run", "--db", location,
             "--webhook", receiver.url, "--secret-file", str(secret_path),
             "--timeout-s", "1", "--lease-s", str(LEASE_S), "--idle-s", "0.05"],
            stdout=log, stderr=log, text=True,
        )  # fmt: skip
        try:
            receiver.wait_for(3, timeout_s=30)
            worker.send_signal(signal.SIGKILL)  # mid-request: the third is in flight
            assert worker.wait(10) == -signal.SIGKILL
        finally:
            if worker.poll() is None:
                worker.kill()
            log.close()
        receiver.release.set()
        in_flight = receiver.idempotency_keys()[2]
        summary = status.summary(store, now=wall())
        assert (summary.delivered, summary.pending, summary.in_flight) == (2, 3, 1)

        # The restart, as it finds the queue once the killed worker's lease has ended.
        later = Clock(wall() + timedelta(seconds=LEASE_S + 1))
        webhook = Webhook(url=receiver.url, secret=SECRET, timeout_s=1)
        restarted = PushWorker(store=store, sender=webhook, clock=later)
        assert restarted.drain() == 3
    assert queued(store) == sorted((i, "delivered", 2 if i == in_flight else 1) for i in ids)
    seen = Counter(receiver.idempotency_keys())
    assert seen == {i: 2 if i == in_flight else 1 for i in ids}
    twice = [r.body for r in receiver.received if r.idempotency_key == in_flight]
    assert twice[0] == twice[1]
    assert [r.refused_because for r in receiver.received] == [None] * 6


def test_a_clean_stop_finishes_the_request_in_hand_and_sends_nothing_twice(
    ingest: Ingest, store: EventStore, receiver: Receiver, webhook: Webhook, clock: Clock
) -> None:
    sealed = ingest_all(ingest, renumbered([triggered(n) for n in range(1, 6)]))
    receiver.plan.extend([Reply(), Reply(hold=True)])
    stop = threading.Event()
    first = PushWorker(store=store, sender=webhook, clock=clock)
    thread = threading.Thread(target=first.run, args=(stop,))
    thread.start()
    receiver.wait_for(2)
    stop.set()  # SIGTERM's effect, while the second request waits for its answer
    receiver.release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert first.tally.delivered == 2  # the one in hand was answered and recorded
    assert [s for _, s, _ in queued(store)].count("delivered") == 2

    second = PushWorker(store=store, sender=webhook, clock=clock)  # no lease to wait out
    assert second.drain() == 3
    assert Counter(receiver.idempotency_keys()) == {s.event.event_id: 1 for s in sealed}
