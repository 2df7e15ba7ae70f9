"""The [receipt_offers] section: defaults from DOMAIN.md, bounds, templates, merging, policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from config.load import ConfigError, load_config, parse_config
from config.model import AgentConfig
from edge_agent.domain.offer_policy import SEGMENTS


def test_defaults_are_the_segment_table() -> None:
    policy = AgentConfig().receipt_offers.to_policy()
    assert policy.enabled
    assert [r.segment for r in policy.rules] == list(SEGMENTS)
    assert {r.campaign_id for r in policy.rules} == {
        "receipt-champion", "receipt-loyal", "receipt-at-risk", "receipt-hibernating",
        "receipt-one-timer",
    }  # fmt: skip
    assert all(r.validity == timedelta(days=14) for r in policy.rules)
    assert policy.holdout_bp == 500
    assert (policy.frequency_max, policy.frequency_window) == (1, timedelta(days=30))
    assert (policy.velocity_max, policy.velocity_window) == (2, timedelta(days=1))
    assert policy.anonymous is None
    hibernating = policy.rule_for("hibernating")
    assert hibernating is not None
    assert hibernating.reminder_before_expiry == timedelta(days=3)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"validity_days": 6}, "receipt_offers.validity_days"),
        ({"validity_days": 31}, "receipt_offers.validity_days"),
        ({"holdout_percent": 4.9}, "receipt_offers.holdout_percent"),
        ({"holdout_percent": 10.5}, "receipt_offers.holdout_percent"),
        ({"max_per_member": 0}, "receipt_offers.max_per_member"),
        ({"holdout_key": "short"}, "receipt_offers.holdout_key"),
        ({"loyal": {"validity_days": 45}}, "receipt_offers.loyal.validity_days"),
        ({"loyal": {"colour": "red"}}, "receipt_offers.loyal.colour"),
    ],
)
def test_out_of_bounds_and_unknown_keys_are_refused(section: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"receipt_offers": section})
    assert any(p.startswith(key) for p in err.value.problems), err.value.problems


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{benefit} until {expiry}", "unknown placeholders"),
        ("{benefit} off {}", "unknown placeholders"),
        ("{benefit", "malformed template"),
    ],
)
def test_offer_text_templates_are_checked(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"receipt_offers": {"champion": {"text": text}}})
    assert why in str(err.value)


def test_duplicate_variants_are_refused() -> None:
    with pytest.raises(ConfigError, match="unique"):
        parse_config({"receipt_offers": {"loyal": {"variants": [{"name": "A"}, {"name": "A"}]}}})


def test_a_segment_table_merges_onto_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        "[receipt_offers]\nholdout_percent = 10\nvalidity_days = 21\n"
        "[receipt_offers.loyal]\nvalidity_days = 7\n"
        'variants = [{name = "A", weight = 1}, {name = "B", weight = 1}]\n'
        "[receipt_offers.champion]\nenabled = false\n"
        '[receipt_offers.anonymous]\ncampaign_id = "receipt-anon"\n'
    )
    policy = load_config(path).receipt_offers.to_policy()
    loyal = policy.rule_for("loyal")
    assert loyal is not None
    assert loyal.campaign_id == "receipt-loyal"  # kept from the defaults
    assert loyal.text.startswith("Try something new")
    assert loyal.validity == timedelta(days=7)
    assert loyal.variants == (("A", 1), ("B", 1))
    at_risk = policy.rule_for("at_risk")
    assert at_risk is not None and at_risk.validity == timedelta(days=21)
    assert policy.rule_for("champion") is None
    assert policy.holdout_bp == 1000
    assert policy.anonymous is not None and policy.anonymous.campaign_id == "receipt-anon"
    assert "receipt-anon" in policy.campaign_ids()
