"""The proximity service: a presence decision made real, on the cache's thread, in one transaction.

Theory of operation
-------------------
The presence loop (``presence_loop.py``) decides *when* to ask: a consenting member entered a zone
or crossed a dwell mark that some rule is on, or tapped the entrance reader. ``consider`` then
runs in ONE ``BEGIN IMMEDIATE`` transaction on the thread that owns the ``CodeCache``:

1. The facts are read: the member's profile, their recent proximity offers (``proximity_offers``,
   held-out ones included, within ``policy.lookback``) and the cached promotions of the policy's
   campaigns; ``proximity_rules.decide`` (pure) returns one outcome per rule it considered.
2. Each ``Trigger`` becomes a coupon: a code minted offline in the store's namespace
   (``issuing/minter.py``, the receipt coupons' rules), signed into a QR payload any store
   verifies, written to ``codes`` bound to the member (so it validates at every till here at once,
   and at other stores once HQ fans it out), its ``offer.triggered`` event (HQ pushes it to the
   member's phone or wallet) and its ``proximity_offers`` row. No namespace: the outcome becomes
   a ``Suppressed(NO_NAMESPACE)``.
3. Each ``Suppressed`` is an ``offer.suppressed`` event with its reason; a holdout also gets a
   ``proximity_offers`` row, since the caps count it.

Every event's attribution: the store, no till or cashier (""), the member (None where consent
could not be confirmed: the rules name nobody then), campaign, variant, channel "proximity".
``check_in`` records a tap at an entrance reader as ``member.checked_in``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import from_us, to_us
from edge_agent.domain.code_format import display
from edge_agent.domain.coupon_token import CouponClaims
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from edge_agent.issuing.minter import Minter
from edge_agent.presence.proximity_rules import (
    PastTrigger,
    ProximityOutcome,
    ProximityPolicy,
    Suppressed,
    SuppressReason,
    Trigger,
    counts_toward_caps,
    decide,
)
from edge_agent.proximity import offer_schema

log = logging.getLogger(__name__)

Signer = Callable[[CouponClaims], str]
_PUT_CODE_SQL = "INSERT INTO codes VALUES (?, ?, ?, 'active', ?, ?, ?, ?, NULL)"


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceMoment:
    """What the presence loop asks about: a member at a zone's mark (0: just entered)."""

    member_id: str
    zone: str
    mark_s: float
    dwell_s: float
    visit_started_at: datetime
    now: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ProximityCoupon:
    code: str
    display: str
    qr_payload: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """One outcome as written: its event, and the coupon of a trigger."""

    outcome: ProximityOutcome
    event_id: str
    coupon: ProximityCoupon | None = None


class ProximityService:
    """Proximity offers on one store's cache. See the module docstring."""

    def __init__(
        self, cache: CodeCache, *, policy: ProximityPolicy, minter: Minter, sign: Signer
    ) -> None:
        self.cache = cache
        self.policy = policy
        self.minter = minter
        self._sign = sign

    def consider(self, moment: PresenceMoment) -> tuple[Recorded, ...]:
        """Decide and record the rules on (zone, mark) for the member, in one transaction."""
        if moment.now.tzinfo is None:
            raise ValueError("moment.now must be an aware datetime")
        if not any(
            r.zone == moment.zone and r.min_dwell_s == moment.mark_s for r in self.policy.rules
        ):
            return ()  # nothing to decide: no transaction on the till's thread
        with self.cache.transaction() as conn:
            outcomes = decide(
                self.policy,
                member_id=moment.member_id,
                member=self.cache.member(moment.member_id),
                zone=moment.zone,
                mark_s=moment.mark_s,
                dwell_s=moment.dwell_s,
                visit_started_at=moment.visit_started_at,
                recent=self.recent(moment.member_id, moment.now),
                campaigns=self.cache.promotions(self.policy.campaign_ids()),
                store_id=self.cache.store_id,
                now=moment.now,
            )
            return tuple(self._record(conn, outcome) for outcome in outcomes)

    def recent(self, member_id: str, now: datetime) -> tuple[PastTrigger, ...]:
        """The member's proximity offers (and holdouts) here within the policy's lookback."""
        since = to_us(now - self.policy.lookback)
        rows = self.cache.conn.execute(offer_schema.RECENT_SQL, (member_id, since))
        return tuple(PastTrigger(rule_id=str(rule), at=from_us(us)) for rule, us in rows)

    def check_in(
        self,
        *,
        member_id: str,
        reader: str,
        zone: str,
        how: str,
        first_of_visit: bool,
        now: datetime,
    ) -> str:
        """Record a member's tap at an entrance reader; returns the event id."""
        with self.cache.transaction() as conn:
            event = event_log.append(
                conn,
                box_id=self.cache.box_id,
                type=EventType.MEMBER_CHECKED_IN,
                occurred_at=now,
                code=None,
                attribution=self._attribution(member_id, None, None),
                details={
                    "reader": reader,
                    "zone": zone,
                    "how": how,
                    "first_of_visit": first_of_visit,
                },
            )
            return event.event_id

    def prune(self, now: datetime) -> int:
        """Housekeeping: forget offers whose coupon expired over a day ago and that every cap
        window has left."""
        with self.cache.transaction() as conn:
            return offer_schema.prune(
                conn,
                expired_before_s=int((now - timedelta(days=1)).timestamp()),
                issued_before_us=to_us(now - self.policy.lookback),
            )

    # -- steps --------------------------------------------------------------------------------

    def _attribution(
        self, member_id: str | None, campaign_id: str | None, variant: str | None
    ) -> Attribution:
        return Attribution(
            store_id=self.cache.store_id,
            till_id="",  # no till: the member was in a zone, not at a checkout
            cashier_id="",
            member_id=member_id,
            campaign_id=campaign_id,
            variant=variant,
            channel=offer_schema.CHANNEL,
        )

    def _record(self, conn: sqlite3.Connection, outcome: ProximityOutcome) -> Recorded:
        if isinstance(outcome, Trigger):
            problem = self.minter.problem()
            if problem is None:
                return self._grant(conn, outcome)
            log.warning("proximity offer %s not given: %s", outcome.rule_id, problem)
            outcome = Suppressed(
                reason=SuppressReason.NO_NAMESPACE,
                message=problem,
                at=outcome.at,
                member_id=outcome.member_id,
                rule_id=outcome.rule_id,
                zone=outcome.zone,
                dwell_s=outcome.dwell_s,
                offer=outcome.offer,
            )
        offer = outcome.offer
        event = event_log.append(
            conn,
            box_id=self.cache.box_id,
            type=EventType.OFFER_SUPPRESSED,
            occurred_at=outcome.at,
            code=None,
            attribution=self._attribution(
                outcome.member_id,
                None if offer is None else offer.campaign_id,
                None if offer is None else offer.variant,
            ),
            details=outcome.details(),
        )
        if counts_toward_caps(outcome) and offer is not None and outcome.member_id is not None:
            conn.execute(
                offer_schema.INSERT_SQL,
                (event.event_id, outcome.member_id, outcome.rule_id or "", offer.campaign_id,
                 offer.variant, None, to_us(outcome.at), int(offer.expires_at.timestamp())),
            )  # fmt: skip
        return Recorded(outcome=outcome, event_id=event.event_id)

    def _grant(self, conn: sqlite3.Connection, trigger: Trigger) -> Recorded:
        offer = trigger.offer
        code = self.minter.mint(conn)
        qr_payload = self._sign(
            CouponClaims(
                code=code,
                campaign_id=offer.campaign_id,
                member_id=trigger.member_id,
                store_id=self.cache.store_id,
                issued_at=offer.issued_at,
                expires_at=offer.expires_at,
            )
        )
        coupon = ProximityCoupon(
            code=code, display=display(code, self.minter.fmt), qr_payload=qr_payload
        )
        expires_s = int(offer.expires_at.timestamp())
        conn.execute(
            _PUT_CODE_SQL,
            (code, offer.campaign_id, trigger.member_id, offer_schema.CHANNEL, offer.variant,
             int(offer.issued_at.timestamp()), expires_s),
        )  # fmt: skip
        event = event_log.append(
            conn,
            box_id=self.cache.box_id,
            type=EventType.OFFER_TRIGGERED,
            occurred_at=trigger.at,
            code=code,
            attribution=self._attribution(trigger.member_id, offer.campaign_id, offer.variant),
            # The phone or wallet shows the QR at any till; HQ passes it on, never logs it.
            details=trigger.details() | {"display": coupon.display, "qr_payload": qr_payload},
        )
        conn.execute(
            offer_schema.INSERT_SQL,
            (event.event_id, trigger.member_id, trigger.rule_id, offer.campaign_id, offer.variant,
             code, to_us(trigger.at), expires_s),
        )  # fmt: skip
        return Recorded(outcome=trigger, event_id=event.event_id, coupon=coupon)
