"""The [points] section: off by default, closed, cross-field rules with paths, domain build."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from config.points import PointsConfig

CAMPAIGN = {
    "id": "summer-2x",
    "starts_at": "2025-06-01T00:00:00+00:00",
    "ends_at": "2025-07-01T00:00:00+00:00",
    "multiplier": 2,
    "categories": ["wine"],
    "exposure_percent": 5,
}


def problems(**section: Any) -> str:
    with pytest.raises(ValidationError) as err:
        PointsConfig.model_validate(section)
    return str(err.value)


def test_off_by_default_with_the_domain_defaults() -> None:
    policy = PointsConfig().to_policy()
    assert policy.enabled is False
    rules = policy.earn.rules
    assert (rules.band_a_bp, rules.band_b_bp, rules.band_c_bp) == (50_000, 10_000, 0)
    assert (rules.bands.a_min_bp, rules.bands.c_max_bp) == (4_500, 1_500)
    assert policy.burn.clearance_value_bp == 12_000
    assert policy.offline_allowance == 0
    assert policy.earn.trial is None


def test_a_full_section_builds_integer_rules() -> None:
    cfg = PointsConfig.model_validate(
        {
            "enabled": True,
            "rules": {"version": "r7", "tier_multipliers": {"gold": 1.5}, "campaigns": [CAMPAIGN]},
            "trial": {"share_percent": 5, "rules": {"version": "r8", "band_b_multiplier": 2}},
            "burn": {"margin_floor_percent": 12.5, "offline_allowance_points": 200},
        }
    )
    policy = cfg.to_policy()
    (campaign,) = policy.earn.rules.campaigns
    assert (campaign.multiplier_bp, campaign.exposure_bp) == (20_000, 500)
    assert policy.earn.rules.tier_bp == {"gold": 15_000}
    assert policy.earn.trial is not None
    assert (policy.earn.trial.share_bp, policy.earn.trial.rules.version) == (500, "r8")
    assert policy.burn.margin_floor_bp == 1_250
    assert policy.offline_allowance == 200


def test_unknown_keys_and_out_of_bound_values_are_refused() -> None:
    assert "extra" in problems(bonus=1).lower()
    assert "burn.clearance_value" in problems(burn={"clearance_value": 0})


def test_cross_field_rules_name_the_path() -> None:
    assert "band_c_max_margin_percent" in problems(
        band_a_min_margin_percent=20, band_c_max_margin_percent=20
    )
    assert "trial.rules.version" in problems(
        trial={"share_percent": 5, "rules": {"version": "points-v1"}}
    )
    assert "campaigns[1].id" in problems(rules={"campaigns": [CAMPAIGN, CAMPAIGN]})
    late = {**CAMPAIGN, "ends_at": CAMPAIGN["starts_at"]}
    assert "ends_at must be after starts_at" in problems(rules={"campaigns": [late]})
    naive = {**CAMPAIGN, "starts_at": "2025-06-01T00:00:00"}
    assert "UTC offset" in problems(rules={"campaigns": [naive]})
