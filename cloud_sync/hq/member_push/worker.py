"""The delivery worker: claim a due offer, POST it, record what the receiver said. Repeat.

Theory of operation
-------------------
One offer at a time, each in three steps: claim it (one transaction: ``push_queue.claim``
counts the attempt and leases the row), send it (no transaction open: a slow receiver holds
no lock), record the verdict (one transaction: ``retry_policy.judge``'s ``Delivered``,
``RetryAt`` or ``GiveUp``). An offer that cannot become a message (``offer_message``'s
``Unpushable``) or has expired fails without a request. Every attempt is one log line with the
event id, the attempt, the store and what happened; never the body, the QR payload or the
secret (the receiver's own words are an ``excerpt`` with the QR payload blanked).

The delivery guarantee is **at least once, with the same idempotency key**: an offer is
marked delivered only after a 2xx, so nothing is lost; the receiver sees an event id twice
only when the worker stopped between sending and recording (killed, the machine lost, the
database unreachable for the record), or the request outlived its lease: the row falls due
again when the lease ends and is sent again, the same body bytes under a fresh signature.
A receiver that deduplicates by ``Idempotency-Key`` (the body's ``event_id``) so shows each
offer once; ``docs/member-push-webhook.md`` tells its developers so. A stop asked for
(``stop`` set: SIGTERM) is honoured between offers, never mid-request, so a clean stop sends
nothing twice. The lease must outlast a request (``commands.py`` keeps it over three
timeouts); several workers may run on one event store, each taking its own rows.

Time comes from ``clock`` (the signature's timestamp, the schedule, expiry), so tests step
it instead of waiting; the idle wait is ``stop.wait``.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from cloud_sync.hq.ingest.errors import StoreUnavailableError
from cloud_sync.hq.ingest.event_store import EventStore, Tx
from cloud_sync.hq.member_push import offer_message, push_queue
from cloud_sync.hq.member_push.offer_message import Unpushable
from cloud_sync.hq.member_push.push_queue import Claimed
from cloud_sync.hq.member_push.retry_policy import (
    Answer,
    Delivered,
    GiveUp,
    NoAnswer,
    RetryAt,
    RetryPolicy,
    Verdict,
    judge,
)
from cloud_sync.hq.member_push.webhook import Outgoing

log = logging.getLogger("storeside.hq.member_push")
DEFAULT_LEASE: Final = timedelta(seconds=60)
STORE_RETRY_S: Final = 5.0  # after the event store could not be reached


class Sender(Protocol):
    """What the worker needs of the webhook (``webhook.Webhook``)."""

    def post(self, outgoing: Outgoing, *, now: datetime) -> Answer | NoAnswer: ...


@dataclass(slots=True, kw_only=True)
class Tally:
    """What a run of the worker did, offer by offer."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    lost_claims: int = 0  # a lease ran out and another worker had the row

    @property
    def attempted(self) -> int:
        return self.delivered + self.retried + self.failed + self.lost_claims


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PushWorker:
    def __init__(
        self,
        *,
        store: EventStore,
        sender: Sender,
        policy: RetryPolicy | None = None,
        lease: timedelta = DEFAULT_LEASE,
        idle_s: float = 0.5,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.sender = sender
        self.policy = policy or RetryPolicy()
        self.lease = lease
        self.idle_s = idle_s
        self.clock = clock
        self.tally = Tally()

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; an unreachable event store is waited out."""
        log.info("pushing offers to %r", self.sender)
        while not stop.is_set():
            try:
                busy = self.drain(stop)
            except StoreUnavailableError as exc:
                log.warning("event store unavailable, retrying in %g s: %s", STORE_RETRY_S, exc)
                stop.wait(STORE_RETRY_S)
                continue
            if not busy:
                stop.wait(self.idle_s)

    def drain(self, stop: threading.Event | None = None) -> int:
        """Attempt every offer due now, one by one, until none is (or ``stop``); how many."""
        done = 0
        while (stop is None or not stop.is_set()) and self.attempt_one():
            done += 1
        return done

    def attempt_one(self) -> bool:
        """Claim one due offer and attempt it; False if none was due."""
        now = self.clock()
        token = secrets.token_hex(8)
        item = self.store.run(
            lambda tx: push_queue.claim(tx, now=now, lease=self.lease, token=token)
        )
        if item is None:
            return False
        message = offer_message.from_event(item.body)
        if isinstance(message, Unpushable):
            verdict: Verdict = GiveUp(status=None, reason=f"unpushable: {message.reason}")
        elif now >= message.expires():
            verdict = GiveUp(status=None, reason=f"expired at {message.expires_at} before delivery")
        else:
            outgoing = Outgoing(
                event_id=item.event_id,
                body=offer_message.encode(message),
                attempt=item.attempt,
                hide=(message.qr_payload,),
            )
            result = self.sender.post(outgoing, now=now)
            verdict = judge(
                result,
                attempt=item.attempt,
                policy=self.policy,
                now=self.clock(),
                expires_at=message.expires(),
            )
        store_id = None if isinstance(message, Unpushable) else message.store_id
        self._record(item, verdict, store_id)
        return True

    def _record(self, item: Claimed, verdict: Verdict, store_id: str | None) -> None:
        at = self.clock()

        def write(tx: Tx) -> bool:
            if isinstance(verdict, Delivered):
                return push_queue.delivered(tx, item.event_id, status=verdict.status, now=at)
            if isinstance(verdict, RetryAt):
                return push_queue.retry(
                    tx,
                    item,
                    due_at=verdict.due_at,
                    status=verdict.status,
                    error=verdict.reason,
                    now=at,
                )
            return push_queue.fail(tx, item, status=verdict.status, error=verdict.reason, now=at)

        kept = self.store.run(write)
        what = f"offer {item.event_id} (store {store_id or '-'}) attempt {item.attempt}"
        if not kept:
            self.tally.lost_claims += 1
            log.warning("%s: outcome not recorded, another worker had taken it", what)
        elif isinstance(verdict, Delivered):
            self.tally.delivered += 1
            log.info("%s: delivered (HTTP %d)", what, verdict.status)
        elif isinstance(verdict, RetryAt):
            self.tally.retried += 1
            log.info("%s: again at %s: %s", what, verdict.due_at.isoformat(), verdict.reason)
        else:
            self.tally.failed += 1
            log.warning("%s: failed: %s", what, verdict.reason)
