"""Presence events as a box writes them (``edge_agent/presence/proximity_rules.py``'s
``Trigger`` / ``Suppressed`` details, the integrator's attribution), chained and signed into
batches for HQ's ingest; and a fake clock for the push worker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract.chain import Sealed
from cloud_sync.contract.event_envelope import Attribution, EventEnvelope, EventType
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore
from tests.contract.streams import event
from tests.hq.ingest.builders import AT, BOX_A, STORE, events_topic, payload, rechain

QR_PREFIX = "SSQR1."  # what a signed QR text looks like to the tests: found if it leaks
SECRET = b"test-secret-made-by-the-test-0123456789"
LATER = AT + timedelta(days=7)
FAR = datetime(2099, 1, 1, tzinfo=UTC)  # an expiry for tests the real clock drives


def _base(
    seq: int, kind: EventType, *, box: str, store: str, member: str | None, at: datetime | None
) -> EventEnvelope:
    e = event(seq, prev_hash=None, box=box, store=store)
    when = at or AT + timedelta(seconds=seq)
    return replace(
        e,
        event_id=envelope.event_id(when, f"{box}{seq}".encode().ljust(10, b"-")[:10]),
        type=kind,
        occurred_at=when,
        code=None,
        amount=0,
        attribution=Attribution(
            store_id=store, till_id="", cashier_id="", member_id=member, channel="proximity"
        ),
    )


def offer_details(
    *, rule: str, zone: str, expires_at: datetime, issued_at: datetime, campaign: str
) -> dict[str, Any]:
    return {
        "rule_id": rule,
        "zone": zone,
        "dwell_s": 42.5,
        "segment": "loyal",
        "cohort": campaign,
        "benefit": "10% off",
        "default_sizing_bp": 1000,
        "issued_at": issued_at.isoformat(),
        "expires_at": expires_at.isoformat(),
    }


def triggered(
    seq: int,
    *,
    box: str = BOX_A,
    store: str = STORE,
    member: str | None = "M1001",
    campaign: str = "proximity-loyal",
    rule: str = "coffee-dwell",
    expires: datetime = LATER,
    at: datetime | None = None,
    **changes: Any,  # details to set or replace
) -> EventEnvelope:
    e = _base(seq, EventType.OFFER_TRIGGERED, box=box, store=store, member=member, at=at)
    details = offer_details(
        rule=rule,
        zone="coffee",
        expires_at=expires,
        issued_at=e.occurred_at.replace(microsecond=0),
        campaign=campaign,
    )
    details |= {
        "holdout_share_bp": 500,
        "in_holdout": False,
        "qr_payload": f"{QR_PREFIX}{box}.{seq}.c2lnbmVkLXRva2Vu",
        "display": f"SSK7-HQ2P-{seq:03d}",
    }
    details |= changes
    return replace(
        e,
        code=f"SSK7HQ2P{seq:03d}",
        attribution=replace(e.attribution, campaign_id=campaign, variant="A"),
        details=details,
    )


def suppressed(
    seq: int,
    reason: str,
    *,
    box: str = BOX_A,
    store: str = STORE,
    member: str | None = "M1001",
    rule: str | None = "coffee-dwell",
    campaign: str | None = None,
    at: datetime | None = None,
) -> EventEnvelope:
    anonymous = reason in ("disabled", "no_consent", "unknown_member")
    e = _base(
        seq,
        EventType.OFFER_SUPPRESSED,
        box=box,
        store=store,
        member=None if anonymous else member,
        at=at,
    )
    details: dict[str, Any] = {"reason": reason, "message": f"suppressed: {reason}"}
    if not anonymous and rule is not None:
        details |= {"rule_id": rule, "zone": "coffee", "dwell_s": 42.5}
    if reason == "holdout" and campaign is not None and rule is not None:
        details |= offer_details(
            rule=rule, zone="coffee", expires_at=LATER, issued_at=e.occurred_at, campaign=campaign
        ) | {"holdout_share_bp": 500, "in_holdout": True}
    if reason == "campaign_unavailable" and campaign is not None:
        details["campaign_id"] = campaign
    if reason in ("cap_visit", "cap_day"):
        details |= {"scope": "programme", "count": 1, "limit": 1}
    attribution = replace(e.attribution, campaign_id=campaign if reason == "holdout" else None)
    return replace(e, attribution=attribution, details=details)


def checked_in(
    seq: int,
    *,
    box: str = BOX_A,
    store: str = STORE,
    member: str = "M1001",
    how: str = "card",
    at: datetime | None = None,
) -> EventEnvelope:
    e = _base(seq, EventType.MEMBER_CHECKED_IN, box=box, store=store, member=member, at=at)
    return replace(e, details={"reader": "entrance-1", "zone": "entrance", "how": how})


def renumbered(events: Sequence[EventEnvelope]) -> list[EventEnvelope]:
    """``events`` as seq 1..n of one box, each keeping its own id."""
    return [replace(e, seq=i) for i, e in enumerate(events, start=1)]


def ingest_all(
    ingest: Ingest, events: Sequence[EventEnvelope], *, box: str = BOX_A
) -> list[Sealed]:
    """Store ``events`` (one box's stream from seq 1) through HQ's real ingest, one batch."""
    sealed = rechain(events)
    outcome = ingest.handle(events_topic(box), payload(sealed), AT)
    assert outcome.quarantined == (), outcome
    assert outcome.stored == len(sealed), outcome
    return sealed


def queued(store: EventStore) -> list[tuple[str, str, int]]:
    """The push queue's rows: (event_id, state, attempts), in event id order."""
    rows = store.run(
        lambda tx: tx.query("SELECT event_id, state, attempts FROM member_push ORDER BY event_id")
    )
    return [(str(e), str(s), int(a)) for e, s, a in rows]


class Clock:
    """The worker's clock, stepped by the test."""

    def __init__(self, start: datetime = AT) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
