"""Points earn and burn rules at checkout (issue 11). OFF by default.

``to_policy()`` builds the pure ``PointsPolicy`` (``edge_agent/domain/points_rules/``). Percentages
and multipliers are written as people say them (45 %, 5x, 1.2x) and turned into integer basis
points there, so the rules themselves never see a float. Cross-field rules (band thresholds in
order, campaign windows, a trial on a version of its own, unique campaign ids) name the offending
path in their message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from config.base import Section
from edge_agent.domain.points_rules.burn import BurnRules
from edge_agent.domain.points_rules.earn import EarnCampaign, EarnPolicy, EarnRules, EarnTrial
from edge_agent.domain.points_rules.margin import BP, MarginBands
from edge_agent.domain.points_rules.policy import PointsPolicy

_ID = r"^[A-Za-z0-9_.:-]{1,64}$"
_MULTIPLIER = Field(ge=0, le=100)


def _bp(percent: float) -> int:
    return round(percent * 100)


def _times(multiplier: float) -> int:
    return round(multiplier * BP)


class EarnCampaignConfig(Section):
    id: Annotated[str, Field(pattern=_ID, description="Campaign id recorded on every earn line.")]
    starts_at: Annotated[datetime, Field(description="Start, with a UTC offset.")]
    ends_at: Annotated[datetime, Field(description="End (exclusive), with a UTC offset.")]
    multiplier: Annotated[
        float, Field(ge=0, le=100, description="Points multiplier on the lines it takes (2 = 2x).")
    ]
    categories: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=64)], ...],
        Field(max_length=64, description="Categories it takes; empty: every category."),
    ] = ()
    exposure_percent: Annotated[
        float,
        Field(ge=0, le=100, description="Share of members shown the campaign (an A/B gate)."),
    ] = 100.0

    @model_validator(mode="after")
    def _window(self) -> EarnCampaignConfig:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("starts_at and ends_at need a UTC offset")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def to_domain(self) -> EarnCampaign:
        return EarnCampaign(
            campaign_id=self.id,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            multiplier_bp=_times(self.multiplier),
            categories=frozenset(self.categories),
            exposure_bp=_bp(self.exposure_percent),
        )


class EarnRulesConfig(Section):
    version: Annotated[
        str, Field(pattern=_ID, description="Rules version recorded on every earn line.")
    ] = "points-v1"
    base_points: Annotated[
        int, Field(ge=0, le=1000, description="Points per currency unit at 1x.")
    ] = 1
    band_a_multiplier: Annotated[float, _MULTIPLIER, Field(description="Band A (5x).")] = 5.0
    band_b_multiplier: Annotated[float, _MULTIPLIER, Field(description="Band B (1x).")] = 1.0
    band_c_multiplier: Annotated[float, _MULTIPLIER, Field(description="Band C (0x).")] = 0.0
    tier_multipliers: Annotated[
        dict[Annotated[str, Field(min_length=1, max_length=32)], Annotated[float, _MULTIPLIER]],
        Field(max_length=16, description="Multiplier per member tier; a tier not listed: 1x."),
    ] = Field(default_factory=dict)
    campaigns: Annotated[
        tuple[EarnCampaignConfig, ...],
        Field(max_length=64, description="Campaign multipliers (the highest running one applies)."),
    ] = ()

    @field_validator("campaigns")
    @classmethod
    def _unique(cls, value: tuple[EarnCampaignConfig, ...]) -> tuple[EarnCampaignConfig, ...]:
        seen: set[str] = set()
        for i, campaign in enumerate(value):
            if campaign.id in seen:
                raise ValueError(f"campaigns[{i}].id: campaign {campaign.id!r} is defined twice")
            seen.add(campaign.id)
        return value

    def to_domain(self, *, minor_per_unit: int, bands: MarginBands) -> EarnRules:
        return EarnRules(
            version=self.version,
            base_points=self.base_points,
            minor_per_unit=minor_per_unit,
            band_a_bp=_times(self.band_a_multiplier),
            band_b_bp=_times(self.band_b_multiplier),
            band_c_bp=_times(self.band_c_multiplier),
            tier_bp={tier: _times(m) for tier, m in self.tier_multipliers.items()},
            campaigns=tuple(c.to_domain() for c in self.campaigns),
            bands=bands,
        )


class EarnTrialConfig(Section):
    share_percent: Annotated[
        float, Field(ge=0, le=100, description="Share of members who earn under these rules.")
    ]
    rules: Annotated[EarnRulesConfig, Field(description="The trial's rules (its own version).")]


class BurnConfig(Section):
    points_per_currency_unit: Annotated[
        int, Field(ge=1, le=1_000_000, description="Points that pay one currency unit at face.")
    ] = 100
    margin_floor_percent: Annotated[
        float,
        Field(ge=0, le=99, description="Bands A and B: margin left after a points discount."),
    ] = 10.0
    clearance_floor_percent: Annotated[
        float,
        Field(ge=0, le=99, description="Band C: margin left after a points discount (0: cost)."),
    ] = 0.0
    clearance_value: Annotated[
        float,
        Field(gt=0, le=10, description="Band C: a point's value against face (1.2 = 1.2x)."),
    ] = 1.2
    offline_allowance_points: Annotated[
        int,
        Field(
            ge=0,
            le=1_000_000,
            description="Points a burn may take beyond the balance the box knows (last sync "
            "plus its own unsynced postings): the risk accepted while offline.",
        ),
    ] = 0


class PointsConfig(Section):
    enabled: Annotated[bool, Field(description="Earn and burn points at checkout.")] = False
    programme: Annotated[
        str,
        Field(
            pattern=_ID,
            description="The loyalty programme the tills' postings are booked in (HQ's id).",
        ),
    ] = "main"
    minor_units_per_currency_unit: Annotated[
        int, Field(ge=1, le=10_000, description="Minor units in one currency unit (100 cents).")
    ] = 100
    band_a_min_margin_percent: Annotated[
        float, Field(gt=0, le=100, description="Band A: margin at or above this (45%).")
    ] = 45.0
    band_c_max_margin_percent: Annotated[
        float, Field(ge=0, lt=100, description="Band C: margin at or below this (15%).")
    ] = 15.0
    rules: EarnRulesConfig = EarnRulesConfig()
    trial: Annotated[
        EarnTrialConfig | None,
        Field(description="Other earn rules shown to a deterministic share of members (A/B)."),
    ] = None
    exposure_key: Annotated[
        str,
        Field(
            min_length=8,
            max_length=128,
            description="Key of the A/B exposure hash; the same in every store.",
        ),
    ] = "storeside-points-exposure-v1"
    burn: BurnConfig = BurnConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> PointsConfig:
        problems: list[str] = []
        if _bp(self.band_c_max_margin_percent) >= _bp(self.band_a_min_margin_percent):
            problems.append(
                f"band_c_max_margin_percent ({self.band_c_max_margin_percent:g}) must be below "
                f"band_a_min_margin_percent ({self.band_a_min_margin_percent:g})"
            )
        if self.trial is not None and self.trial.rules.version == self.rules.version:
            problems.append(
                f"trial.rules.version: {self.rules.version!r} is the live version; a trial "
                "needs a version of its own, or its events cannot be told apart"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def to_policy(self) -> PointsPolicy:
        """The pure domain policy this section describes."""
        bands = MarginBands(
            a_min_bp=_bp(self.band_a_min_margin_percent),
            c_max_bp=_bp(self.band_c_max_margin_percent),
        )
        minor = self.minor_units_per_currency_unit
        trial = None
        if self.trial is not None:
            trial = EarnTrial(
                rules=self.trial.rules.to_domain(minor_per_unit=minor, bands=bands),
                share_bp=_bp(self.trial.share_percent),
            )
        return PointsPolicy(
            enabled=self.enabled,
            earn=EarnPolicy(
                rules=self.rules.to_domain(minor_per_unit=minor, bands=bands),
                exposure_key=self.exposure_key.encode(),
                trial=trial,
            ),
            burn=BurnRules(
                points_per_unit=self.burn.points_per_currency_unit,
                minor_per_unit=minor,
                margin_floor_bp=_bp(self.burn.margin_floor_percent),
                clearance_floor_bp=_bp(self.burn.clearance_floor_percent),
                clearance_value_bp=_times(self.burn.clearance_value),
                bands=bands,
            ),
            offline_allowance=self.burn.offline_allowance_points,
        )
