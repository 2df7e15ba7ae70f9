"""Earn at checkout: points per line by margin band, campaign and tier, under versioned rules.

Theory of operation
-------------------
**Which rules.** An ``EarnPolicy`` holds the live rules (a version) and optionally a trial: other
rules (another version) exposed to a deterministic share of members. The draw is holdout.py's
keyed hash with the trial's version as the cohort, so a member sees the same rules in every
store and at every checkout, and a new trial version reshuffles who sees it. The result names the
version and the variant (``control`` or ``trial``) on every line, for the event log.

**Per line**, with every factor in basis points (10000 = 1x)::

    points = floor(earnable * base_points * band_bp * tier_bp * campaign_bp
                   / (minor_per_unit * 10000^3))

- ``earnable`` is the line total less what points paid on it: points are not earned on points
  (else every burn would earn, and the liability would feed itself). Never below zero.
- ``band_bp``: A 5x, B 1x, C 0x by default (DOMAIN.md section 5), band from ``margin.assess``.
- ``tier_bp``: the member's tier multiplier (a tier not listed earns 1x).
- ``campaign_bp``: of the campaigns running at ``now`` (``starts_at <= now < ends_at``) whose
  category filter takes the line and whose exposure share (the same keyed draw, cohort = the
  campaign id) includes the member, the highest multiplier applies, ties to the smaller campaign
  id; 1x if none. Campaign multipliers do not multiply each other: stacking is explicit, never
  implicit (DOMAIN.md section 1). Campaigns a member was drawn out of are listed on the line, so
  the exposure is logged like the coupon holdout.

**Rounding: floor, once per line.** Points are a liability: rounding up would issue points
nobody paid for, and half-up would on average over-issue a half point on every other line.
Rounding once per line (not per basket) makes each line's points depend on that line alone,
which is what lets a return reverse a line exactly (``returns``); the member loses less than one
point per line against the exact figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.holdout import BASIS_POINTS, in_holdout
from edge_agent.domain.points_rules.margin import BP, MarginBand, MarginBands, assess
from edge_agent.domain.promotion import Member

CONTROL = "control"
TRIAL = "trial"


@dataclass(frozen=True, slots=True, kw_only=True)
class EarnCampaign:
    campaign_id: str
    starts_at: datetime
    ends_at: datetime  # exclusive
    multiplier_bp: int
    categories: frozenset[str] = frozenset()  # empty: every category
    exposure_bp: int = BASIS_POINTS  # share of members the campaign is shown to

    def takes(self, category: str, now: datetime) -> bool:
        in_window = self.starts_at <= now < self.ends_at
        return in_window and (not self.categories or category in self.categories)


@dataclass(frozen=True, slots=True, kw_only=True)
class EarnRules:
    version: str
    base_points: int = 1  # points per currency unit at 1x
    minor_per_unit: int = 100
    band_a_bp: int = 50_000
    band_b_bp: int = 10_000
    band_c_bp: int = 0
    tier_bp: Mapping[str, int] = field(default_factory=dict)
    campaigns: tuple[EarnCampaign, ...] = ()
    bands: MarginBands = field(default_factory=MarginBands)

    def __post_init__(self) -> None:
        if self.minor_per_unit <= 0:
            raise ValueError("minor_per_unit must be positive")
        factors = (self.base_points, self.band_a_bp, self.band_b_bp, self.band_c_bp)
        if min((*factors, *self.tier_bp.values())) < 0:
            raise ValueError("earn factors must not be negative")
        if any(c.multiplier_bp < 0 for c in self.campaigns):
            raise ValueError("campaign multipliers must not be negative")

    def band_multiplier(self, band: MarginBand) -> int:
        return {MarginBand.A: self.band_a_bp, MarginBand.B: self.band_b_bp}.get(
            band, self.band_c_bp
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EarnTrial:
    rules: EarnRules
    share_bp: int  # of members, 0..10000


@dataclass(frozen=True, slots=True, kw_only=True)
class EarnPolicy:
    rules: EarnRules
    exposure_key: bytes  # the same in every store, like the holdout key
    trial: EarnTrial | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LineEarn:
    index: int  # position in the basket
    sku: str
    quantity: int
    band: MarginBand
    earnable: int  # minor units the points are earned on
    points: int
    rules_version: str
    variant: str  # CONTROL or TRIAL
    campaign_id: str | None  # the campaign whose multiplier applied
    held_out_campaigns: tuple[str, ...]  # running campaigns the member was drawn out of


@dataclass(frozen=True, slots=True, kw_only=True)
class EarnResult:
    member_id: str
    rules_version: str
    variant: str
    lines: tuple[LineEarn, ...]  # every basket line, in basket order

    @property
    def points(self) -> int:
        return sum(line.points for line in self.lines)


def exposed(key: bytes, cohort: str, member_id: str, share_bp: int) -> bool:
    """Whether ``member_id`` is in ``cohort``'s deterministic share (holdout.py's draw)."""
    return in_holdout(key=key, cohort=cohort, subject=member_id, share_bp=share_bp)


def choose_rules(policy: EarnPolicy, member_id: str) -> tuple[EarnRules, str]:
    trial = policy.trial
    if trial is not None and exposed(
        policy.exposure_key, f"points-rules:{trial.rules.version}", member_id, trial.share_bp
    ):
        return trial.rules, TRIAL
    return policy.rules, CONTROL


def compute_earn(
    policy: EarnPolicy,
    basket: Basket,
    member: Member,
    now: datetime,
    paid_with_points: Mapping[int, int] | None = None,
) -> EarnResult:
    """The points ``member`` earns on ``basket`` (module docstring); ``paid_with_points`` maps a
    line's position to the money points paid on it (``BurnPlan.discount_by_line()``)."""
    rules, variant = choose_rules(policy, member.member_id)
    paid = paid_with_points or {}
    lines = tuple(
        _line(
            policy=policy,
            rules=rules,
            variant=variant,
            member=member,
            now=now,
            index=i,
            line=line,
            paid=paid.get(i, 0),
        )
        for i, line in enumerate(basket.lines)
    )
    return EarnResult(
        member_id=member.member_id, rules_version=rules.version, variant=variant, lines=lines
    )


def _line(
    *,
    policy: EarnPolicy,
    rules: EarnRules,
    variant: str,
    member: Member,
    now: datetime,
    index: int,
    line: BasketLine,
    paid: int,
) -> LineEarn:
    band = assess(line, rules.bands).band
    earnable = max(0, line.total - max(0, paid)) if line.quantity > 0 else 0
    running = [c for c in rules.campaigns if c.takes(line.category, now)]
    shown = [
        c
        for c in running
        if exposed(
            policy.exposure_key, f"points-campaign:{c.campaign_id}", member.member_id, c.exposure_bp
        )
    ]
    best = min(shown, key=lambda c: (-c.multiplier_bp, c.campaign_id), default=None)
    numerator = (
        earnable
        * rules.base_points
        * rules.band_multiplier(band)
        * rules.tier_bp.get(member.tier, BP)
        * (BP if best is None else best.multiplier_bp)
    )
    return LineEarn(
        index=index,
        sku=line.sku,
        quantity=line.quantity,
        band=band,
        earnable=earnable,
        points=numerator // (rules.minor_per_unit * BP**3),
        rules_version=rules.version,
        variant=variant,
        campaign_id=None if best is None else best.campaign_id,
        held_out_campaigns=tuple(sorted(c.campaign_id for c in running if c not in shown)),
    )
