"""The offer as the member's app or wallet backend receives it: built from the stored event.

Theory of operation
-------------------
A box's ``offer.triggered`` event (``edge_agent/presence/proximity_rules.py``: ``Trigger``
and its ``details``) carries more than a phone needs: the member's segment, the holdout
cohort and share, the default sizing are HQ's marketing facts, never sent to a third party.
``from_event`` keeps what showing the offer takes (the code, its human-readable form, the
signed QR text any till scans, the benefit in words, when it was issued and expires) and
where and why it was earned (store, zone, rule, campaign, variant), for the app's copy and
for attribution. One dataclass is the message; ``encode`` is its canonical JSON
(``wire_json.CANONICAL``: sorted keys, no whitespace), the exact bytes the signature covers.

An event that cannot make a message (no member, no code, no QR payload, an expiry that is
not a time: a box that sent ``offer.triggered`` without them has a bug) is ``Unpushable``
with the first reason found, which the worker records as the offer's failure: nothing is
dropped unseen, nothing raises. The checks run in the order of ``REQUIRED``.

The receiver's documentation, with every field, is ``docs/member-push-webhook.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cloud_sync.contract import event_envelope, wire_json
from cloud_sync.contract.decode_errors import DecodeError
from cloud_sync.contract.event_envelope import EventType

SCHEMA_VERSION: Final = 1
KIND: Final = "offer.triggered"
# The details the message cannot do without, in the order they are checked.
REQUIRED: Final = ("qr_payload", "display", "benefit", "issued_at", "expires_at")


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferMessage:
    """The webhook's body (see ``docs/member-push-webhook.md``)."""

    schema_version: int
    type: str
    event_id: str  # the idempotency key: the same offer always has the same one
    occurred_at: str  # ISO 8601, UTC
    member_id: str
    store_id: str
    campaign_id: str | None
    variant: str | None
    code: str  # canonical form, as the till accepts it typed
    display: str  # the code as printed for people
    qr_payload: str  # the signed QR text: show it as a QR code, any till of the chain scans it
    benefit: str  # the offer in words ("10% off coffee")
    issued_at: str
    expires_at: str
    zone: str | None
    rule_id: str | None

    def expires(self) -> datetime:
        """``expires_at`` as a time (``from_event`` checked that it is one)."""
        return datetime.fromisoformat(self.expires_at).astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unpushable:
    reason: str


def from_event(text: str) -> OfferMessage | Unpushable:
    """The message for a stored event's text, or why there is none."""
    try:
        event = event_envelope.decode(text)
    except DecodeError as exc:  # stored by ingest, so it decodes; a guard, not a path
        return Unpushable(reason=f"the stored event does not decode: {exc}")
    if event.type is not EventType.OFFER_TRIGGERED:
        return Unpushable(reason=f"a {event.type.value} event is not an offer")
    a, details = event.attribution, event.details
    if not a.member_id:
        return Unpushable(reason="no member_id: nobody to push it to")
    if not event.code:
        return Unpushable(reason="no code")
    for name in REQUIRED:
        value = details.get(name)
        if not isinstance(value, str) or not value:
            return Unpushable(reason=f"details.{name} is missing or not a non-empty string")
    for name in ("issued_at", "expires_at"):
        try:
            at = datetime.fromisoformat(details[name])
        except ValueError:
            return Unpushable(reason=f"details.{name} is not an ISO 8601 time")
        if at.tzinfo is None:
            return Unpushable(reason=f"details.{name} has no UTC offset")
    return OfferMessage(
        schema_version=SCHEMA_VERSION,
        type=KIND,
        event_id=event.event_id,
        occurred_at=event.occurred_at.astimezone(UTC).isoformat(),
        member_id=a.member_id,
        store_id=a.store_id,
        campaign_id=a.campaign_id,
        variant=a.variant,
        code=event.code,
        display=details["display"],
        qr_payload=details["qr_payload"],
        benefit=details["benefit"],
        issued_at=details["issued_at"],
        expires_at=details["expires_at"],
        zone=_optional(details.get("zone")),
        rule_id=_optional(details.get("rule_id")),
    )


def encode(message: OfferMessage) -> bytes:
    """The canonical JSON bytes of ``message``: what is sent and signed."""
    return wire_json.CANONICAL.encode(dataclasses.asdict(message)).encode("utf-8")


def _optional(value: object) -> str | None:
    return value if isinstance(value, str) else None
