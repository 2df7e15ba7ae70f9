"""Proximity rules: triggers, every suppression with its reason, caps, quiet hours, holdout."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.domain import holdout
from edge_agent.domain.promotion import Benefit, BenefitKind, Member, Promotion, StackingRule
from edge_agent.domain.proximity_campaigns import DEFAULT_CAMPAIGN_IDS
from edge_agent.presence.proximity_rules import (
    PastTrigger,
    ProximityOutcome,
    ProximityPolicy,
    ProximityRule,
    QuietHours,
    Suppressed,
    SuppressReason,
    Trigger,
    counts_toward_caps,
    decide,
)

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
KEY = b"test-proximity-key"
COFFEE = ProximityRule(rule_id="coffee-30", zone="coffee", min_dwell_s=30.0)
POLICY = ProximityPolicy(holdout_key=KEY, rules=(COFFEE,), holdout_bp=500)


def promo(campaign_id: str, **changes: object) -> Promotion:
    base = Promotion(
        campaign_id=campaign_id,
        name=f"Offer {campaign_id}",
        benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=1000),
        stacking=StackingRule(stacking_class="receipt_coupon"),
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=30),
        requires_member=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


CAMPAIGNS = {cid: promo(cid) for cid in DEFAULT_CAMPAIGN_IDS.values()}


def treated_member(segment: str = "loyal", *, held_out: bool = False) -> str:
    """A member id on the requested side of the holdout of the segment's campaign."""
    cohort = DEFAULT_CAMPAIGN_IDS[segment]
    for i in range(1000):
        member_id = f"M-{i}"
        if holdout.in_holdout(key=KEY, cohort=cohort, subject=member_id, share_bp=500) is held_out:
            return member_id
    raise AssertionError("no member found")


def run(
    policy: ProximityPolicy = POLICY,
    *,
    member: Member | None = None,
    member_id: str | None = None,
    zone: str = "coffee",
    mark_s: float = 30.0,
    recent: tuple[PastTrigger, ...] = (),
    now: datetime = NOW,
    visit_started_at: datetime | None = None,
    campaigns: dict[str, Promotion] | None = None,
    unknown: bool = False,
) -> tuple[ProximityOutcome, ...]:
    """``member`` unset: a consenting loyal member (``unknown``: none, not in the cache)."""
    if member_id is None:
        member_id = member.member_id if member is not None else treated_member()
    if member is None and not unknown:
        member = Member(member_id=member_id, segment="loyal", proximity_consent=True)
    return decide(
        policy,
        member_id=member_id,
        member=member,
        zone=zone,
        mark_s=mark_s,
        dwell_s=mark_s + 0.1,
        visit_started_at=visit_started_at or now - timedelta(minutes=5),
        recent=recent,
        campaigns=CAMPAIGNS if campaigns is None else campaigns,
        store_id="store-001",
        now=now,
    )


def only(outcomes: tuple[ProximityOutcome, ...]) -> ProximityOutcome:
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


def test_a_consenting_member_who_lingers_gets_the_segment_offer() -> None:
    outcome = only(run())
    assert isinstance(outcome, Trigger)
    assert outcome.rule_id == "coffee-30" and outcome.zone == "coffee"
    assert outcome.channel == "proximity"
    assert outcome.offer.campaign_id == "proximity-loyal"
    assert outcome.offer.default_sizing_bp == 1000  # DOMAIN.md section 3: loyal 10%
    assert outcome.offer.variant == "A"
    assert outcome.offer.expires_at == NOW + timedelta(days=7)
    details = outcome.details()
    assert details["in_holdout"] is False and details["holdout_share_bp"] == 500
    assert counts_toward_caps(outcome)


def test_the_segment_table_sizes_each_segment() -> None:
    sizing = {}
    for segment in DEFAULT_CAMPAIGN_IDS:
        member_id = treated_member(segment)
        member = Member(member_id=member_id, segment=segment, proximity_consent=True)
        outcome = only(run(member=member))
        assert isinstance(outcome, Trigger)
        sizing[segment] = (outcome.offer.campaign_id, outcome.offer.default_sizing_bp)
    assert sizing == {
        "champion": ("proximity-champion", 500),
        "loyal": ("proximity-loyal", 1000),
        "at_risk": ("proximity-at-risk", 2000),
        "hibernating": ("proximity-hibernating", 3000),
        "one_timer": ("proximity-one-timer", 1500),
    }


def test_only_the_rules_of_the_zone_and_mark_are_considered() -> None:
    assert run(zone="entrance") == ()
    assert run(mark_s=10.0) == ()  # the 30 s rule is decided once, at its own mark


def test_a_segment_the_rule_does_not_target_gets_no_outcome() -> None:
    rule = replace(COFFEE, segments=frozenset({"hibernating"}))
    assert run(replace(POLICY, rules=(rule,))) == ()


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (Member(member_id="M-1", proximity_consent=False), SuppressReason.NO_CONSENT),
        (None, SuppressReason.UNKNOWN_MEMBER),
    ],
)
def test_no_consent_is_said_without_naming_who_or_where(
    member: Member | None, reason: SuppressReason
) -> None:
    outcome = only(run(member=member, member_id="M-1", unknown=member is None))
    assert isinstance(outcome, Suppressed)
    assert outcome.reason is reason
    assert outcome.member_id is None and outcome.zone is None and outcome.rule_id is None
    assert "M-1" not in str(outcome.details()) and "coffee" not in str(outcome.details())
    assert not counts_toward_caps(outcome)


def test_disabled_suppresses() -> None:
    outcome = only(run(replace(POLICY, enabled=False)))
    assert isinstance(outcome, Suppressed) and outcome.reason is SuppressReason.DISABLED


def test_the_holdout_gets_nothing_but_carries_the_offer_and_counts() -> None:
    outcome = only(run(member_id=treated_member(held_out=True)))
    assert isinstance(outcome, Suppressed) and outcome.reason is SuppressReason.HOLDOUT
    assert outcome.offer is not None and outcome.offer.campaign_id == "proximity-loyal"
    assert outcome.details()["in_holdout"] is True
    assert counts_toward_caps(outcome)


def test_caps_per_visit_then_per_day() -> None:
    earlier = PastTrigger(rule_id="other", at=NOW - timedelta(minutes=1))
    visit = only(run(recent=(earlier,)))
    assert isinstance(visit, Suppressed) and visit.reason is SuppressReason.CAP_VISIT
    assert visit.details()["scope"] == "programme" and visit.details()["count"] == 1
    # A new visit: the earlier trigger no longer counts for the visit, still for the day.
    policy = replace(POLICY, max_per_day=1)
    day = only(run(policy, recent=(earlier,), visit_started_at=NOW - timedelta(seconds=40)))
    assert isinstance(day, Suppressed) and day.reason is SuppressReason.CAP_DAY
    # The rule's own cap: one of this rule per day, even on a new visit with programme room.
    same_rule = PastTrigger(rule_id="coffee-30", at=NOW - timedelta(hours=3))
    rule_day = only(run(recent=(same_rule,), visit_started_at=NOW - timedelta(seconds=40)))
    assert isinstance(rule_day, Suppressed) and rule_day.reason is SuppressReason.CAP_DAY
    assert rule_day.details()["scope"] == "rule"
    # Yesterday's (store-local) triggers do not count.
    yesterday = PastTrigger(rule_id="coffee-30", at=NOW - timedelta(days=1))
    assert isinstance(only(run(recent=(yesterday,))), Trigger)


def test_the_store_day_is_local() -> None:
    # 23:30 UTC on the 9th is 00:30 on the 10th in Berlin (UTC+1): a new store day there.
    now = datetime(2025, 3, 9, 23, 30, tzinfo=UTC)
    before_midnight_local = PastTrigger(
        rule_id="other", at=datetime(2025, 3, 9, 22, 50, tzinfo=UTC)
    )
    after_midnight_local = PastTrigger(rule_id="other", at=datetime(2025, 3, 9, 23, 10, tzinfo=UTC))
    berlin = replace(POLICY, tz=ZoneInfo("Europe/Berlin"), max_per_day=1)
    utc = replace(POLICY, max_per_day=1)
    assert isinstance(only(run(berlin, recent=(before_midnight_local,), now=now)), Trigger)
    assert isinstance(only(run(utc, recent=(before_midnight_local,), now=now)), Suppressed)
    capped = only(run(berlin, recent=(after_midnight_local,), now=now))
    assert isinstance(capped, Suppressed) and capped.reason is SuppressReason.CAP_DAY


def test_two_rules_on_one_mark_respect_a_visit_cap_of_one() -> None:
    second = replace(COFFEE, rule_id="coffee-30-b")
    first, then = run(replace(POLICY, rules=(COFFEE, second)))
    assert isinstance(first, Trigger)
    assert isinstance(then, Suppressed) and then.reason is SuppressReason.CAP_VISIT


@pytest.mark.parametrize(
    ("local", "quiet"),
    [("20:59", False), ("21:00", True), ("03:00", True), ("07:59", True), ("08:00", False)],
)
def test_quiet_hours_wrap_midnight_in_store_time(local: str, quiet: bool) -> None:
    tz = ZoneInfo("America/New_York")
    policy = replace(POLICY, tz=tz, quiet_hours=(QuietHours(start=time(21), end=time(8)),))
    now = datetime.combine(NOW.date(), time.fromisoformat(local), tz)
    outcome = only(run(policy, now=now, visit_started_at=now))
    if quiet:
        assert isinstance(outcome, Suppressed) and outcome.reason is SuppressReason.QUIET_HOURS
        assert outcome.details()["local_time"] == local
    else:
        assert isinstance(outcome, Trigger)


def test_a_campaign_that_cannot_be_issued_is_a_suppression_with_why() -> None:
    missing = only(run(campaigns={}))
    assert isinstance(missing, Suppressed)
    assert missing.reason is SuppressReason.CAMPAIGN_UNAVAILABLE
    assert "not in this store's cache" in missing.message
    withdrawn = {**CAMPAIGNS, "proximity-loyal": promo("proximity-loyal", active=False)}
    outcome = only(run(campaigns=withdrawn))
    assert isinstance(outcome, Suppressed) and "withdrawn" in outcome.message


def test_marks_for_a_zone() -> None:
    rules = (COFFEE, replace(COFFEE, rule_id="b", min_dwell_s=0.0), replace(COFFEE, rule_id="c"))
    assert ProximityPolicy(holdout_key=KEY, rules=rules).marks_for("coffee") == (30.0,)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=3 * 86400), max_size=12),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=1, max_value=4),
)
def test_caps_are_never_exceeded_over_a_sequence(
    offsets: list[float], per_visit: int, per_day: int
) -> None:
    # A member lingering again and again: the outcomes that count never exceed either cap.
    policy = replace(POLICY, max_per_visit=per_visit, max_per_day=per_day)
    rule = replace(COFFEE, max_per_visit=10, max_per_day=20)
    policy = replace(policy, rules=(rule,))
    member_id = treated_member()
    recent: list[PastTrigger] = []
    for offset in sorted(offsets):
        now = NOW + timedelta(seconds=offset)
        visit = now.replace(minute=0, second=0, microsecond=0)  # a visit per clock hour
        for outcome in run(policy, member_id=member_id, recent=tuple(recent), now=now,
                           visit_started_at=visit):  # fmt: skip
            if counts_toward_caps(outcome):
                recent.append(PastTrigger(rule_id=rule.rule_id, at=now))
        same_visit = [p for p in recent if p.at >= visit]
        same_day = [p for p in recent if p.at.date() == now.date()]
        assert len(same_visit) <= per_visit and len(same_day) <= per_day
