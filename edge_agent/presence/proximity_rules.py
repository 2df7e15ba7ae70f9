"""Proximity offers: which offer a presence event earns, or why none. Pure, facts in.

Theory of operation
-------------------
A rule says "in zone Z, after a dwell of D seconds, members of segments S get campaign C". The
tracker emits ``Entered`` (dwell 0) and one ``Dwelled`` per mark (the rules' ``min_dwell_s`` of
that zone, ``ProximityPolicy.marks_for``), so a rule is considered exactly once per stay: at the
event whose mark is its ``min_dwell_s``. ``decide`` returns one outcome per rule it considers,
each a ``Trigger`` or a ``Suppressed`` that the integrator logs as ``offer.triggered`` /
``offer.suppressed`` with attribution (member, channel "proximity", campaign, zone, variant,
time). The checks, in order:

1. ``DISABLED``: proximity offers are off. No rule of the zone and mark: nothing at all.
2. ``NO_CONSENT`` / ``UNKNOWN_MEMBER``: the engine is fed only consenting members, but the
   rules check the member's profile again. Either gives ONE outcome that names neither the
   member nor the zone: recording where a person without consent was is what consent forbids
   (an unknown profile cannot show consent). It says an upstream filter let someone through.
3. Per rule whose segments include the member's (others are not targeted: no outcome):
   ``QUIET_HOURS`` (store-local time, windows may wrap midnight), then the caps: the member's
   triggers this visit (``CAP_VISIT``) and this store-local day (``CAP_DAY``), over the whole
   programme first, then this rule's own; then ``CAMPAIGN_UNAVAILABLE`` (the same test as the
   receipt offers, ``offer_policy.unavailable_because``).
4. ``HOLDOUT``: a deterministic share of the campaign's cohort (``holdout.py``, the same draw
   as receipt offers) gets nothing; the outcome carries the offer they would have had.

Caps count past triggers *and* holdouts (``PastTrigger``), as receipt issues do, so the control
group is exposed at the treated group's cadence; outcomes of the same call count too, so two
rules on one mark respect a cap of one. The default campaign of a segment is
``proximity-<segment>`` whose benefit HQ ships; its default depth is DOMAIN.md section 3's table
(``receipt_campaigns.SEGMENT_SIZING_BP``), reported with every offer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from edge_agent.domain import holdout
from edge_agent.domain.messages import iso
from edge_agent.domain.offer_policy import SEGMENTS, unavailable_because
from edge_agent.domain.offer_text import discount_words
from edge_agent.domain.promotion import Member, Promotion
from edge_agent.domain.receipt_campaigns import SEGMENT_SIZING_BP

CHANNEL = "proximity"
DEFAULT_CAMPAIGN_IDS: Mapping[str, str] = {s: "proximity-" + s.replace("_", "-") for s in SEGMENTS}


class SuppressReason(StrEnum):
    """Why a proximity rule gave no offer. A stable contract: HQ's reports switch on it."""

    DISABLED = "disabled"
    NO_CONSENT = "no_consent"
    UNKNOWN_MEMBER = "unknown_member"
    QUIET_HOURS = "quiet_hours"
    CAP_VISIT = "cap_visit"
    CAP_DAY = "cap_day"
    CAMPAIGN_UNAVAILABLE = "campaign_unavailable"
    HOLDOUT = "holdout"
    NO_NAMESPACE = "no_namespace"  # the box may not mint (set by the integrator, not decide)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuietHours:
    """No offers from ``start`` (inclusive) to ``end`` (exclusive), store-local; wraps midnight
    when ``start > end`` (21:00-08:00)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours need start != end")

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True, kw_only=True)
class ProximityRule:
    rule_id: str
    zone: str
    min_dwell_s: float = 0.0  # 0: on Entered
    segments: frozenset[str] = frozenset(SEGMENTS)
    campaign_ids: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CAMPAIGN_IDS))
    max_per_visit: int = 1
    max_per_day: int = 1
    variants: tuple[tuple[str, int], ...] = (("A", 1),)
    validity: timedelta = timedelta(days=7)

    def campaign_for(self, segment: str) -> str:
        return self.campaign_ids.get(segment) or DEFAULT_CAMPAIGN_IDS.get(segment, segment)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProximityPolicy:
    holdout_key: bytes
    rules: tuple[ProximityRule, ...] = ()
    enabled: bool = True
    holdout_bp: int = 500
    max_per_visit: int = 1  # over all proximity rules
    max_per_day: int = 2
    quiet_hours: tuple[QuietHours, ...] = ()
    tz: tzinfo = UTC  # the store's time zone: quiet hours and "day" are local
    min_validity: timedelta = timedelta(hours=1)  # skip a campaign ending sooner

    def marks_for(self, zone: str) -> tuple[float, ...]:
        """The dwell marks the tracker must report for ``zone`` (ascending, positive)."""
        return tuple(sorted({r.min_dwell_s for r in self.rules if r.zone == zone} - {0.0}))

    def campaign_ids(self) -> frozenset[str]:
        return frozenset(r.campaign_for(s) for r in self.rules for s in r.segments if s in SEGMENTS)

    @property
    def lookback(self) -> timedelta:
        """How far back past triggers matter: a local day, across a DST change, plus a visit."""
        return timedelta(days=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class PastTrigger:
    """A proximity offer given (or held out) earlier: what the caps count."""

    rule_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ProximityOffer:
    """The offer as decided: everything but the code, which the box mints."""

    campaign_id: str
    campaign_name: str
    segment: str
    cohort: str  # holdout and variant are drawn per (member, cohort)
    variant: str
    benefit: str  # the Promotion's benefit in words
    default_sizing_bp: int | None  # DOMAIN.md section 3's depth for the segment
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    member_id: str
    rule_id: str
    zone: str
    dwell_s: float
    offer: ProximityOffer
    at: datetime
    holdout_bp: int
    channel: str = CHANNEL

    def details(self) -> dict[str, object]:
        return _details(self.rule_id, self.zone, self.dwell_s, self.offer, self.holdout_bp)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppressed:
    reason: SuppressReason
    message: str
    at: datetime
    member_id: str | None  # None for NO_CONSENT / UNKNOWN_MEMBER (see the module docstring)
    rule_id: str | None = None
    zone: str | None = None
    dwell_s: float | None = None
    offer: ProximityOffer | None = None  # HOLDOUT: what they would have had
    extra: dict[str, object] = field(default_factory=dict)  # JSON-ready, per reason
    channel: str = CHANNEL

    def details(self) -> dict[str, object]:
        base: dict[str, object] = {"reason": self.reason.value, "message": self.message}
        if self.rule_id is not None and self.zone is not None:
            base |= _details(self.rule_id, self.zone, self.dwell_s, self.offer, None)
        return base | self.extra


ProximityOutcome = Trigger | Suppressed


def counts_toward_caps(outcome: ProximityOutcome) -> bool:
    """Whether the integrator must remember this outcome as a ``PastTrigger``."""
    return isinstance(outcome, Trigger) or outcome.reason is SuppressReason.HOLDOUT


def _details(
    rule_id: str,
    zone: str,
    dwell_s: float | None,
    offer: ProximityOffer | None,
    holdout_bp: int | None,
) -> dict[str, object]:
    """The same keys for triggered and suppressed events, so HQ compares the groups directly."""
    out: dict[str, object] = {"rule_id": rule_id, "zone": zone, "dwell_s": dwell_s}
    if offer is not None:
        out |= {
            "segment": offer.segment,
            "cohort": offer.cohort,
            "benefit": offer.benefit,
            "default_sizing_bp": offer.default_sizing_bp,
            "issued_at": iso(offer.issued_at),
            "expires_at": iso(offer.expires_at),
        }
    if holdout_bp is not None:
        out |= {"holdout_share_bp": holdout_bp, "in_holdout": False}
    return out


def _count(
    recent: Sequence[PastTrigger], *, rule_id: str | None, since: datetime | None, day: date | None
) -> int:
    return sum(
        1
        for p in recent
        if (rule_id is None or p.rule_id == rule_id)
        and (since is None or p.at >= since)
        and (day is None or p.at.date() == day)
    )


def _anonymous(reason: SuppressReason, message: str, now: datetime) -> tuple[Suppressed]:
    return (Suppressed(reason=reason, message=message, at=now, member_id=None),)


def decide(
    policy: ProximityPolicy,
    *,
    member_id: str,
    member: Member | None,
    zone: str,
    mark_s: float,
    dwell_s: float,
    visit_started_at: datetime,
    recent: Sequence[PastTrigger],
    campaigns: Mapping[str, Promotion],
    store_id: str,
    now: datetime,
) -> tuple[ProximityOutcome, ...]:
    """The outcomes of the rules on (``zone``, ``mark_s``): 0 for an Entered, a Dwelled's mark.

    ``member`` is the cache's profile (None if unknown); ``recent`` the member's past triggers
    and holdouts within ``policy.lookback``; ``campaigns`` the cached promotions of
    ``policy.campaign_ids()``; ``visit_started_at`` when this visit began (``visits.py``).
    """
    if now.tzinfo is None or visit_started_at.tzinfo is None:
        raise ValueError("now and visit_started_at must be aware datetimes")
    rules = [r for r in policy.rules if r.zone == zone and r.min_dwell_s == mark_s]
    if not rules:
        return ()
    if not policy.enabled:
        return _anonymous(SuppressReason.DISABLED, "proximity offers are off", now)
    if member is None or member.member_id != member_id:
        return _anonymous(
            SuppressReason.UNKNOWN_MEMBER,
            "a presence event for a member this store has no profile of (consent cannot be "
            "confirmed); not recorded",
            now,
        )
    if not member.proximity_consent:
        return _anonymous(
            SuppressReason.NO_CONSENT,
            "a presence event for a member without proximity consent reached the rules (an "
            "upstream filter let it through); not recorded",
            now,
        )
    ctx = _Context(
        policy=policy,
        member=member,
        zone=zone,
        dwell_s=dwell_s,
        visit_started_at=visit_started_at,
        campaigns=campaigns,
        store_id=store_id,
        now=now,
        local_now=now.astimezone(policy.tz),
        taken=[PastTrigger(rule_id=p.rule_id, at=p.at.astimezone(policy.tz)) for p in recent],
    )
    return tuple(ctx.one(rule) for rule in rules if member.segment in rule.segments)


@dataclass(slots=True, kw_only=True)
class _Context:
    """One ``decide`` call: the facts, and the triggers so far (``taken``, store-local)."""

    policy: ProximityPolicy
    member: Member
    zone: str
    dwell_s: float
    visit_started_at: datetime
    campaigns: Mapping[str, Promotion]
    store_id: str
    now: datetime
    local_now: datetime
    taken: list[PastTrigger]

    def no(
        self, rule: ProximityRule, reason: SuppressReason, message: str, **extra: object
    ) -> Suppressed:
        return Suppressed(
            reason=reason,
            message=message,
            at=self.now,
            member_id=self.member.member_id,
            rule_id=rule.rule_id,
            zone=self.zone,
            dwell_s=self.dwell_s,
            extra=dict(extra),
        )

    def one(self, rule: ProximityRule) -> ProximityOutcome:
        policy, member, now = self.policy, self.member, self.now
        clock = self.local_now.time()
        quiet = next((q for q in policy.quiet_hours if q.contains(clock)), None)
        if quiet is not None:
            return self.no(
                rule,
                SuppressReason.QUIET_HOURS,
                f"quiet hours {quiet.start:%H:%M}-{quiet.end:%H:%M} store time",
                local_time=self.local_now.strftime("%H:%M"),
            )
        capped = _capped(
            policy,
            rule,
            self.taken,
            visit_started_at=self.visit_started_at,
            today=self.local_now.date(),
        )
        if capped is not None:
            reason, scope, count, limit = capped
            what = "this visit" if reason is SuppressReason.CAP_VISIT else "today"
            return self.no(
                rule,
                reason,
                f"{count} proximity offer(s) {what} ({scope} cap {limit})",
                scope=scope,
                count=count,
                limit=limit,
            )
        cohort = rule.campaign_for(member.segment)
        promotion = self.campaigns.get(cohort)
        why = (
            "not in this store's cache (HQ has not shipped it)"
            if promotion is None
            else unavailable_because(
                promotion,
                member=member,
                store_id=self.store_id,
                now=now,
                min_validity=policy.min_validity,
            )
        )
        if why is not None or promotion is None:
            return self.no(
                rule, SuppressReason.CAMPAIGN_UNAVAILABLE, f"{cohort}: {why}", campaign_id=cohort
            )
        issued_at = now.replace(microsecond=0)
        offer = ProximityOffer(
            campaign_id=cohort,
            campaign_name=promotion.name,
            segment=member.segment,
            cohort=cohort,
            variant=holdout.pick_variant(
                key=policy.holdout_key,
                cohort=cohort,
                subject=member.member_id,
                weights=rule.variants,
            ),
            benefit=discount_words(promotion),
            default_sizing_bp=SEGMENT_SIZING_BP.get(member.segment),
            issued_at=issued_at,
            expires_at=min(issued_at + rule.validity, promotion.ends_at).replace(microsecond=0),
        )
        self.taken.append(PastTrigger(rule_id=rule.rule_id, at=self.local_now))
        if holdout.in_holdout(
            key=policy.holdout_key,
            cohort=cohort,
            subject=member.member_id,
            share_bp=policy.holdout_bp,
        ):
            return Suppressed(
                reason=SuppressReason.HOLDOUT,
                message=f"control group of {cohort} ({policy.holdout_bp / 100:g}% get none)",
                at=now,
                member_id=member.member_id,
                rule_id=rule.rule_id,
                zone=self.zone,
                dwell_s=self.dwell_s,
                offer=offer,
                extra={"holdout_share_bp": policy.holdout_bp, "in_holdout": True},
            )
        return Trigger(
            member_id=member.member_id,
            rule_id=rule.rule_id,
            zone=self.zone,
            dwell_s=self.dwell_s,
            offer=offer,
            at=now,
            holdout_bp=policy.holdout_bp,
        )


def _capped(
    policy: ProximityPolicy,
    rule: ProximityRule,
    recent: Sequence[PastTrigger],
    *,
    visit_started_at: datetime,
    today: date,
) -> tuple[SuppressReason, str, int, int] | None:
    """The first cap reached: (reason, scope "programme" or "rule", count, limit), or None."""
    checks = (
        (SuppressReason.CAP_VISIT, "programme", None, visit_started_at, None, policy.max_per_visit),
        (SuppressReason.CAP_DAY, "programme", None, None, today, policy.max_per_day),
        (
            SuppressReason.CAP_VISIT,
            "rule",
            rule.rule_id,
            visit_started_at,
            None,
            rule.max_per_visit,
        ),
        (SuppressReason.CAP_DAY, "rule", rule.rule_id, None, today, rule.max_per_day),
    )
    for reason, scope, rule_id, since, day, limit in checks:
        count = _count(recent, rule_id=rule_id, since=since, day=day)
        if count >= limit:
            return reason, scope, count, limit
    return None
