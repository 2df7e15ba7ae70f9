"""The [presence] section: off by default, bounds, cross-field rules with paths, domain build."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from config.load import ConfigError, parse_config
from config.model import AgentConfig
from config.presence import PresenceConfig

ZONES = [
    {"id": "coffee", "sources": ["scan-c1", "scan-c2"]},
    {"id": "entrance", "sources": ["scan-e"], "enter_dbm": -60, "exit_dbm": -70},
]
RULES = [
    {"id": "coffee-30", "zone": "coffee", "min_dwell_s": 30, "segments": ["loyal", "at_risk"]},
    {"id": "welcome", "zone": "entrance", "campaign_id": "proximity-welcome"},
]


def presence(**section: Any) -> AgentConfig:
    return parse_config({"presence": {"enabled": True, "zones": ZONES, "rules": RULES, **section}})


def problems(**section: Any) -> str:
    with pytest.raises(ConfigError) as err:
        presence(**section)
    return str(err.value)


def test_presence_is_off_by_default_and_the_default_is_valid() -> None:
    cfg = AgentConfig()
    assert cfg.presence.enabled is False
    assert cfg.presence.to_policy().enabled is False
    assert cfg.presence.to_tracker_config().zones == ()


def test_a_store_layout_builds_the_tracker_and_the_rules() -> None:
    cfg = presence(timezone="Europe/Berlin", quiet_hours=[{"start": "21:00", "end": "08:00"}])
    tracker = cfg.presence.to_tracker_config()
    coffee, entrance = tracker.zones
    assert coffee.sources == {"scan-c1", "scan-c2"} and coffee.dwell_marks_s == (30.0,)
    assert (entrance.enter_dbm, entrance.exit_dbm, entrance.dwell_marks_s) == (-60, -70, ())
    policy = cfg.presence.to_policy()
    assert policy.enabled and policy.holdout_bp == 500 and str(policy.tz) == "Europe/Berlin"
    first, welcome = policy.rules
    assert first.campaign_ids == {"loyal": "proximity-loyal", "at_risk": "proximity-at-risk"}
    assert set(welcome.campaign_ids.values()) == {"proximity-welcome"}
    assert policy.campaign_ids() >= {"proximity-loyal", "proximity-welcome"}


def test_exit_must_be_below_enter() -> None:
    zones = [{"id": "coffee", "sources": ["s"], "enter_dbm": -70, "exit_dbm": -70}]
    message = problems(zones=zones, rules=[])
    assert "presence.zones.0" in message and "exit_dbm (-70) must be below enter_dbm" in message


def test_a_rule_on_a_missing_zone_names_its_path() -> None:
    message = problems(rules=[{"id": "r", "zone": "bakery"}])
    assert "rules[0].zone: 'bakery' is not a zone" in message


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"zones": [*ZONES, {"id": "coffee", "sources": ["x"]}]}, "zones[2].id"),
        ({"zones": [*ZONES, {"id": "tea", "sources": ["scan-e"]}]}, "zones[2].sources"),
        ({"rules": [*RULES, {"id": "welcome", "zone": "coffee"}]}, "rules[2].id"),
        ({"tick_interval_s": 0.6}, "zones[0].enter_confirm_s"),  # 0.5 + 0.6 > 1 s
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"quiet_hours": [{"start": "21:00", "end": "21:00"}]}, "presence.quiet_hours.0"),
        ({"quiet_hours": [{"start": "24:00", "end": "08:00"}]}, "presence.quiet_hours.0.start"),
        ({"rules": [{"id": "r", "zone": "coffee", "segments": ["vip"]}]}, "unknown segments"),
        ({"holdout_percent": 4}, "presence.holdout_percent"),
        ({"smoothing": {"tau": 1}}, "presence.smoothing.tau"),
        ({"zones": [{"id": "c", "sources": []}]}, "presence.zones.0.sources"),
    ],
)
def test_refusals_name_the_path(section: dict[str, Any], fragment: str) -> None:
    assert fragment in problems(**section)


def test_the_commented_presence_example_in_agent_example_toml_is_valid() -> None:
    text = (Path(__file__).resolve().parents[2] / "config" / "agent.example.toml").read_text()
    commented = text[text.index("# [presence]") :].splitlines()
    block = "\n".join(line.removeprefix("#").removeprefix(" ") for line in commented)
    presence = PresenceConfig.model_validate(tomllib.loads(block)["presence"])
    assert presence.enabled and [r.id for r in presence.rules] == ["coffee-dwell"]
    assert {r.till for r in presence.readers} == {"till-1", None}


def test_scanners_and_readers_must_be_placed() -> None:
    stray = problems(scanners=[{"id": "aisle-9", "kind": "bleak"}])
    assert "scanners[0].id" in stray and "no zone's source" in stray
    both = problems(readers=[{"id": "r1", "till": "till-1", "zone": "entrance"}])
    assert "exactly one" in both
    nowhere = problems(readers=[{"id": "r1", "zone": "car-park"}])
    assert "readers[0].zone" in nowhere
    assert "scenario" in problems(scanners=[{"id": "aisle-9", "kind": "simulated"}])
