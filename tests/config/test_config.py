"""The closed config schema: unknown keys, bounds, cross-field rules, and the generated schema."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from config.load import ConfigError, json_schema, load_config, parse_config
from config.model import AgentConfig

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_valid_and_build_a_code_format() -> None:
    cfg = AgentConfig()
    fmt = cfg.code_format.to_format()
    assert fmt.prefix == "SS"
    # No namespace by default: the one to mint in comes from HQ's snapshot, never a default
    # (the old default "22" was HQ's own first namespace).
    assert cfg.store.namespace is None


def test_unknown_key_is_refused_with_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"redemption": {"hold_second": 30}})
    assert err.value.problems == ["redemption.hold_second: Extra inputs are not permitted"]


def test_out_of_bounds_value_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"redemption": {"hold_seconds": 1}})
    assert "redemption.hold_seconds" in err.value.problems[0]


def test_namespace_must_match_format_width() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"store": {"namespace": "234"}})
    assert "namespace_length" in str(err.value)


def test_namespace_outside_alphabet_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"store": {"namespace": "0O"}})
    assert "outside the code alphabet" in str(err.value)


def test_tills_need_distinct_ids_and_tokens() -> None:
    digest = hashlib.sha256(b"t").hexdigest()
    with pytest.raises(ConfigError):
        parse_config(
            {
                "api": {
                    "tills": [
                        {"till_id": "a", "token_sha256": digest},
                        {"till_id": "b", "token_sha256": digest},
                    ]
                }
            }
        )


def test_toml_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[store]\nstore_id = "s-9"\n[code_format]\nprefix = "FN"\n')
    cfg = load_config(path)
    assert cfg.store.store_id == "s-9"
    assert cfg.code_format.prefix == "FN"


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[store\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_example_config_in_repo_is_valid() -> None:
    load_config(ROOT / "config" / "agent.example.toml")


def test_generated_schema_is_current() -> None:
    committed = (ROOT / "config" / "agent.schema.json").read_text()
    assert committed == json_schema(), "run: edge-agent config schema > config/agent.schema.json"
