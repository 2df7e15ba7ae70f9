"""Which next-visit coupon a checkout earns, if any: a pure decision (no I/O, ``now`` is an input).

Theory of operation
-------------------
The default policy is DOMAIN.md section 3's segment table: each RFM segment (champion, loyal,
at_risk, hibernating, one_timer) maps to a campaign whose ``Promotion`` (shipped by HQ) defines the
benefit; config may change every part of it. ``decide`` walks these steps and stops at the first
that says no, so every "no coupon" carries exactly one stable reason the POS can show:

1. ``DISABLED``: receipt coupons are off.
2. ``NOT_A_MEMBER``: nobody identified and no anonymous offer is configured.
   ``UNKNOWN_MEMBER``: a member id the cache does not know (not synced yet), so no segment.
   ``NO_OFFER_FOR_SEGMENT``: the member's segment has no (enabled) offer.
3. ``BASKET_BELOW_MINIMUM``: the purchase is under the programme's minimum.
4. ``VELOCITY_LIMIT`` then ``FREQUENCY_CAPPED`` (members only): at most ``velocity_max`` issues
   in ``velocity_window`` (abuse, DOMAIN.md section 4) and ``frequency_max`` in
   ``frequency_window`` (fatigue, section 3), counted over the whole receipt programme. Each
   refusal says when the member may get one again.
5. ``CAMPAIGN_UNAVAILABLE``: none of the segment's campaigns can be issued now (not in the cache,
   withdrawn, not started, ending too soon, another store's, not for this segment or member).
   Each campaign passed over is reported as a ``Skip`` so the caller can log why.
6. Choice: the segment's ``campaign_id`` first, then its ``nudge_campaign_ids``. When nudge
   campaigns are configured, the first usable campaign restricted to categories the customer did
   not buy today wins: the category nudge for loyal members and the "second category" for
   one-timers. Otherwise the first usable campaign.
7. ``HOLDOUT``: a deterministic share of the cohort (``holdout.py``) gets nothing; the decision
   still carries the full offer they would have had, so lift can be measured.

The cohort of a segment's offer is its primary ``campaign_id``: holdout and A/B variant are keyed
by (member, that campaign), so a member stays in or out of the control group whichever nudge
alternative a given basket selects. Anonymous customers are keyed by transaction id.

Expiry is ``now + validity`` (DOMAIN.md: 7-30 days, default 14), never after the campaign ends,
floored to the whole second (the codes table and the QR token keep seconds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from edge_agent.domain import holdout
from edge_agent.domain.basket import Basket
from edge_agent.domain.discount import format_money
from edge_agent.domain.messages import iso, when
from edge_agent.domain.offer_text import discount_words, render_text
from edge_agent.domain.promotion import Member, Promotion
from edge_agent.domain.stacking import describe, summary


class NoCouponReason(StrEnum):
    """Why a checkout got no coupon. A stable public contract: the POS switches on it."""

    DISABLED = "DISABLED"
    NOT_A_MEMBER = "NOT_A_MEMBER"
    UNKNOWN_MEMBER = "UNKNOWN_MEMBER"
    NO_OFFER_FOR_SEGMENT = "NO_OFFER_FOR_SEGMENT"
    BASKET_BELOW_MINIMUM = "BASKET_BELOW_MINIMUM"
    VELOCITY_LIMIT = "VELOCITY_LIMIT"
    FREQUENCY_CAPPED = "FREQUENCY_CAPPED"
    CAMPAIGN_UNAVAILABLE = "CAMPAIGN_UNAVAILABLE"
    HOLDOUT = "HOLDOUT"
    # The box has no minting namespace from HQ (or one that fails the config's cross-check):
    # it never mints in a namespace the registry did not assign to this store.
    NO_NAMESPACE = "NO_NAMESPACE"


SEGMENTS = ("champion", "loyal", "at_risk", "hibernating", "one_timer")
ANONYMOUS = "anonymous"  # the pseudo-segment of an offer for customers who did not identify
DEFAULT_CAMPAIGN_IDS: Mapping[str, str] = {s: "receipt-" + s.replace("_", "-") for s in SEGMENTS}


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferRule:
    """One segment's offer (``config/receipt_offers.py`` builds these)."""

    segment: str
    campaign_id: str
    text: str  # template over offer_text.TEMPLATE_FIELDS
    validity: timedelta = timedelta(days=14)
    nudge_campaign_ids: tuple[str, ...] = ()
    variants: tuple[tuple[str, int], ...] = (("A", 1),)  # (name, weight): the A/B split
    reminder_before_expiry: timedelta | None = None  # HQ's messaging reminds the member then

    @property
    def cohort(self) -> str:
        return self.campaign_id

    @property
    def candidates(self) -> tuple[str, ...]:
        return (self.campaign_id, *self.nudge_campaign_ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferPolicy:
    holdout_key: bytes  # shared by every store of the chain (see holdout.py)
    rules: tuple[OfferRule, ...] = ()
    anonymous: OfferRule | None = None
    enabled: bool = True
    holdout_bp: int = 500  # 5%
    frequency_max: int = 1
    frequency_window: timedelta = timedelta(days=30)
    velocity_max: int = 2
    velocity_window: timedelta = timedelta(days=1)
    min_basket_total: int = 1  # minor units
    min_validity: timedelta = timedelta(days=1)  # skip a campaign that ends sooner than this

    def rule_for(self, segment: str) -> OfferRule | None:
        for rule in self.rules:
            if rule.segment == segment:
                return rule
        return None

    def campaign_ids(self) -> frozenset[str]:
        """Every campaign the policy may issue: what the caller loads from its cache."""
        rules = (*self.rules, *(() if self.anonymous is None else (self.anonymous,)))
        return frozenset(cid for rule in rules for cid in rule.candidates)

    @property
    def lookback(self) -> timedelta:
        """How far back a member's issue times matter."""
        return max(self.frequency_window, self.velocity_window)


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip:
    campaign_id: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """A coupon as decided: everything but the code, which the store mints."""

    campaign_id: str
    campaign_name: str
    segment: str
    cohort: str
    variant: str
    member_id: str | None
    text: str  # for the receipt
    discount: str  # the benefit and its conditions, in words
    stacking_terms: str  # "Stacks with tier discount, not with ... or store sale."
    issued_at: datetime  # whole seconds
    expires_at: datetime  # whole seconds
    remind_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    offer: Offer
    holdout_bp: int
    skipped: tuple[Skip, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Withhold:
    """The holdout: no coupon, but ``offer`` is what the member would have had."""

    offer: Offer
    holdout_bp: int
    skipped: tuple[Skip, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NoCoupon:
    reason: NoCouponReason
    message: str  # for the POS: "No coupon this time: ..."
    details: dict[str, object] = field(default_factory=dict)  # JSON-ready
    retry_after: datetime | None = None  # when a coupon may be issued again, if known
    skipped: tuple[Skip, ...] = ()


OfferDecision = Grant | Withhold | NoCoupon


def _no(
    reason: NoCouponReason,
    why: str,
    details: dict[str, object] | None = None,
    *,
    retry_after: datetime | None = None,
    skipped: tuple[Skip, ...] = (),
) -> NoCoupon:
    return NoCoupon(
        reason=reason,
        message=f"No coupon this time: {why}",
        details=dict(details or {}),
        retry_after=retry_after,
        skipped=skipped,
    )


def _floor_second(at: datetime) -> datetime:
    return at.replace(microsecond=0)


def _cap(
    reason: NoCouponReason,
    what: str,
    recent: Sequence[datetime],
    *,
    limit: int,
    window: timedelta,
    now: datetime,
) -> NoCoupon | None:
    inside = sorted((t for t in recent if t > now - window), reverse=True)
    if len(inside) < limit:
        return None
    # Another issue is allowed once the oldest of the newest ``limit`` leaves the window.
    retry_after = inside[limit - 1] + window
    return _no(
        reason,
        f"this member already had {len(inside)} receipt coupon(s) in the last {_span(window)} "
        f"({what}: {limit}); the next can be issued from {when(retry_after)}.",
        {
            "count": len(inside),
            "limit": limit,
            "window_s": int(window.total_seconds()),
            "last_issued_at": iso(inside[0]),
            "retry_after": iso(retry_after),
        },
        retry_after=retry_after,
    )


def _span(window: timedelta) -> str:
    if window % timedelta(days=1) == timedelta(0):
        days = window // timedelta(days=1)
        return "24 hours" if days == 1 else f"{days} days"
    return f"{int(window.total_seconds() // 3600)} hours"


def check_caps(policy: OfferPolicy, recent: Sequence[datetime], now: datetime) -> NoCoupon | None:
    """The velocity limit, then the frequency cap, over a member's recent issue times."""
    return _cap(
        NoCouponReason.VELOCITY_LIMIT,
        "velocity limit",
        recent,
        limit=policy.velocity_max,
        window=policy.velocity_window,
        now=now,
    ) or _cap(
        NoCouponReason.FREQUENCY_CAPPED,
        "frequency cap",
        recent,
        limit=policy.frequency_max,
        window=policy.frequency_window,
        now=now,
    )


def unavailable_because(
    promotion: Promotion,
    *,
    member: Member | None,
    store_id: str,
    now: datetime,
    min_validity: timedelta,
) -> str | None:
    """Why a coupon of ``promotion`` cannot be issued now (it would be refused at the till)."""
    if not promotion.active:
        return "withdrawn by HQ"
    if now < promotion.starts_at:
        return f"not started (starts {iso(promotion.starts_at)})"
    if promotion.ends_at - now < min_validity:
        return f"ends too soon ({iso(promotion.ends_at)})"
    if promotion.allowed_stores and store_id not in promotion.allowed_stores:
        return f"not valid in store {store_id}"
    if promotion.requires_member and member is None:
        return "needs a member and the customer is anonymous"
    if promotion.eligible_segments and (
        member is None or member.segment not in promotion.eligible_segments
    ):
        return "not for this customer's segment"
    return None


def _choose(
    rule: OfferRule,
    campaigns: Mapping[str, Promotion],
    *,
    basket: Basket,
    member: Member | None,
    store_id: str,
    now: datetime,
    min_validity: timedelta,
) -> tuple[Promotion | None, tuple[Skip, ...]]:
    usable: list[Promotion] = []
    skipped: list[Skip] = []
    for campaign_id in dict.fromkeys(rule.candidates):  # in order, each once
        promotion = campaigns.get(campaign_id)
        why = (
            "not in this store's cache (HQ has not shipped it)"
            if promotion is None
            else unavailable_because(
                promotion, member=member, store_id=store_id, now=now, min_validity=min_validity
            )
        )
        if why is not None or promotion is None:
            skipped.append(Skip(campaign_id=campaign_id, why=why or "missing"))
        else:
            usable.append(promotion)
    if not usable:
        return None, tuple(skipped)
    if rule.nudge_campaign_ids:
        bought = {line.category for line in basket.lines}
        for promotion in usable:
            if promotion.eligible_categories and not promotion.eligible_categories & bought:
                return promotion, tuple(skipped)
    return usable[0], tuple(skipped)


def _offer(
    rule: OfferRule,
    promotion: Promotion,
    *,
    policy: OfferPolicy,
    subject: str,
    member_id: str | None,
    now: datetime,
) -> Offer:
    issued_at = _floor_second(now)
    expires_at = _floor_second(min(now + rule.validity, promotion.ends_at))
    remind_at = None
    if rule.reminder_before_expiry is not None:
        at = expires_at - rule.reminder_before_expiry
        remind_at = at if at > issued_at else None
    days = max(1, (expires_at - issued_at) // timedelta(days=1))
    return Offer(
        campaign_id=promotion.campaign_id,
        campaign_name=promotion.name,
        segment=rule.segment,
        cohort=rule.cohort,
        variant=holdout.pick_variant(
            key=policy.holdout_key, cohort=rule.cohort, subject=subject, weights=rule.variants
        ),
        member_id=member_id,
        text=render_text(rule.text, promotion, expires_at=expires_at, days=days),
        discount=discount_words(promotion),
        stacking_terms=describe(*summary(promotion.stacking, ())),
        issued_at=issued_at,
        expires_at=expires_at,
        remind_at=remind_at,
    )


def decide(
    policy: OfferPolicy,
    *,
    member_id: str | None,
    member: Member | None,
    recent_issues: Sequence[datetime],
    basket: Basket,
    campaigns: Mapping[str, Promotion],
    store_id: str,
    transaction_id: str,
    now: datetime,
) -> OfferDecision:
    """The coupon this checkout earns (see the module docstring for the order of the checks).

    ``member`` is the cache's profile of ``member_id`` (None if unknown); ``recent_issues`` are
    the member's receipt-programme issue times (held-out ones included) within
    ``policy.lookback``; ``campaigns`` holds the cached promotions of ``policy.campaign_ids()``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if not policy.enabled:
        return _no(NoCouponReason.DISABLED, "receipt coupons are switched off in this store.")
    if member_id is None:
        rule = policy.anonymous
        if rule is None:
            return _no(
                NoCouponReason.NOT_A_MEMBER,
                "no member was identified; receipt coupons are for members.",
            )
        subject = f"txn:{transaction_id}"  # no identity: the transaction is the unit
    else:
        if member is None:
            return _no(
                NoCouponReason.UNKNOWN_MEMBER,
                f"member {member_id} is not in this store's data yet (new or not synced).",
                {"member_id": member_id},
            )
        rule = policy.rule_for(member.segment)
        if rule is None:
            return _no(
                NoCouponReason.NO_OFFER_FOR_SEGMENT,
                f"there is no receipt offer for the {member.segment.replace('_', ' ')} segment.",
                {"segment": member.segment},
            )
        subject = member_id
    if basket.total < policy.min_basket_total:
        return _no(
            NoCouponReason.BASKET_BELOW_MINIMUM,
            f"the purchase ({format_money(basket.total)}) is under the minimum of "
            f"{format_money(policy.min_basket_total)} for a receipt coupon.",
            {"total": basket.total, "minimum": policy.min_basket_total},
        )
    if member_id is not None:
        capped = check_caps(policy, recent_issues, now)
        if capped is not None:
            return capped
    promotion, skipped = _choose(
        rule,
        campaigns,
        basket=basket,
        member=member,
        store_id=store_id,
        now=now,
        min_validity=policy.min_validity,
    )
    if promotion is None:
        return _no(
            NoCouponReason.CAMPAIGN_UNAVAILABLE,
            f"the {rule.segment.replace('_', ' ')} offer's campaign cannot be issued now ("
            + "; ".join(f"{s.campaign_id}: {s.why}" for s in skipped)
            + ").",
            {"segment": rule.segment, "skipped": [f"{s.campaign_id}: {s.why}" for s in skipped]},
            skipped=skipped,
        )
    offer = _offer(rule, promotion, policy=policy, subject=subject, member_id=member_id, now=now)
    if holdout.in_holdout(
        key=policy.holdout_key, cohort=rule.cohort, subject=subject, share_bp=policy.holdout_bp
    ):
        return Withhold(offer=offer, holdout_bp=policy.holdout_bp, skipped=skipped)
    return Grant(offer=offer, holdout_bp=policy.holdout_bp, skipped=skipped)
