"""The webhook's body from a stored ``offer.triggered`` (pure): what the phone needs and
nothing of HQ's marketing facts; an event that cannot make one is a reason, never an
exception (fuzzed over the details a box could send)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract.chain import Sealed
from cloud_sync.contract.event_envelope import EventEnvelope
from cloud_sync.hq.member_push import offer_message
from cloud_sync.hq.member_push.offer_message import OfferMessage, Unpushable
from tests.hq.member_push.presence_events import checked_in, triggered


def text(event: EventEnvelope) -> str:
    return Sealed.seal(replace(event, prev_hash=envelope.GENESIS_HASH)).text


def test_the_message_carries_what_showing_the_offer_takes_and_no_segment() -> None:
    event = triggered(3)
    message = offer_message.from_event(text(event))
    assert isinstance(message, OfferMessage)
    body = offer_message.encode(message)
    doc = json.loads(body)
    assert doc == {
        "schema_version": 1,
        "type": "offer.triggered",
        "event_id": event.event_id,
        "occurred_at": event.occurred_at.isoformat(),
        "member_id": "M1001",
        "store_id": "store-001",
        "campaign_id": "proximity-loyal",
        "variant": "A",
        "code": "SSK7HQ2P003",
        "display": "SSK7-HQ2P-003",
        "qr_payload": event.details["qr_payload"],
        "benefit": "10% off",
        "issued_at": event.details["issued_at"],
        "expires_at": event.details["expires_at"],
        "zone": "coffee",
        "rule_id": "coffee-dwell",
    }
    # Canonical: sorted keys, no whitespace, so the bytes signed are one text per offer.
    assert body == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert offer_message.encode(offer_message.from_event(text(event))) == body  # type: ignore[arg-type]
    for private in ("segment", "cohort", "holdout_share_bp", "in_holdout", "default_sizing_bp"):
        assert private not in doc


def test_what_cannot_be_pushed_says_why() -> None:
    cases: dict[str, EventEnvelope] = {
        "no member_id": triggered(1, member=None),
        "no code": replace(triggered(1), code=None),
        "details.qr_payload is missing": triggered(1, qr_payload=None),
        "details.display is missing": triggered(1, display=""),
        "details.benefit is missing": triggered(1, benefit=7),
        "details.expires_at is not an ISO 8601 time": triggered(1, expires_at="next week"),
        "details.issued_at has no UTC offset": triggered(1, issued_at="2026-03-01T12:00:00"),
        "a member.checked_in event is not an offer": checked_in(1),
    }
    for why, event in cases.items():
        result = offer_message.from_event(text(event))
        assert isinstance(result, Unpushable) and why in result.reason, (why, result)
    broken = offer_message.from_event("{not json")
    assert isinstance(broken, Unpushable) and "does not decode" in broken.reason


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    details=st.dictionaries(
        st.sampled_from([*offer_message.REQUIRED, "zone", "rule_id", "other"]), _JSON, max_size=8
    ),
    member=st.none() | st.text(max_size=8),
    code=st.none() | st.text(max_size=8),
)
def test_any_details_make_a_message_or_a_reason(
    details: dict[str, Any], member: str | None, code: str | None
) -> None:
    base = triggered(1)
    event = replace(
        base,
        code=code,
        attribution=replace(base.attribution, member_id=member),
        details=details,
    )
    result = offer_message.from_event(text(event))
    if isinstance(result, OfferMessage):
        assert result.qr_payload and result.member_id and result.code
        result.expires()  # a time
        json.loads(offer_message.encode(result))
    else:
        assert result.reason
