"""The config diff: what a new config changes and whether each change can be applied live."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from config.diff import RULES, Apply, Rule, diff_configs, rule_for
from config.model import AgentConfig

DIGEST = {"a": "a" * 64, "b": "b" * 64, "c": "c" * 64}


def cfg(**sections: dict[str, Any]) -> AgentConfig:
    return AgentConfig.model_validate(sections)


def tills(**by_id: str) -> dict[str, Any]:
    return {"tills": [{"till_id": t, "token_sha256": DIGEST[d]} for t, d in by_id.items()]}


def test_the_same_config_changes_nothing() -> None:
    diff = diff_configs(cfg(), cfg())
    assert diff.changes == () and diff.applicable_live


def test_tills_change_live_named_by_till_id_never_by_digest() -> None:
    diff = diff_configs(cfg(api=tills(t1="a", t2="b")), cfg(api=tills(t2="c", t3="a")))
    (change,) = diff.changes
    assert change.path == "api.tills" and change.apply is Apply.LIVE
    assert change.detail == "t3 added, t1 removed, t2 new token"
    assert "old tokens refused" in change.why
    assert all(d not in change.describe() for d in DIGEST.values())
    assert diff.applicable_live


@pytest.mark.parametrize(
    ("section", "values"),
    [
        ("redemption", {"hold_seconds": 60, "till_failure_limit": 3, "till_cooldown_s": 5}),
        ("receipt_offers", {"holdout_percent": 10}),
        ("printer", {"kind": "network", "port": 9101, "retry_base_s": 0.5}),
        ("cache", {"checkpoint_interval_s": 5, "housekeeping_interval_s": 60}),
        ("signing", {"trust_own_key": False}),
    ],
)
def test_what_the_agent_rebuilds_is_live(section: str, values: dict[str, Any]) -> None:
    diff = diff_configs(cfg(), cfg(**{section: values}))
    assert [c.path for c in diff.changes] == [f"{section}.{k}" for k in values]
    assert {c.apply for c in diff.changes} == {Apply.LIVE}


@pytest.mark.parametrize(
    ("section", "values", "why"),
    [
        ("cache", {"path": "elsewhere.db"}, "cache file is open"),
        ("store", {"store_id": "store-002"}, "store's identity"),
        ("store", {"namespace": "K7"}, "minting namespace"),
        ("api", {"port": 9000}, "socket is bound at start"),
        ("api", {"host": "0.0.0.0"}, "socket is bound at start"),
        ("signing", {"key_path": "other.key"}, "signing key is loaded at start"),
        ("code_format", {"prefix": "XY"}, "code format"),
    ],
)
def test_what_the_process_was_opened_with_needs_a_restart(
    section: str, values: dict[str, Any], why: str
) -> None:
    diff = diff_configs(cfg(), cfg(**{section: values}))
    (change,) = diff.changes
    assert change.apply is Apply.RESTART and why in change.why
    assert not diff.applicable_live
    assert "needs a restart" in change.describe()


def test_a_mixed_config_is_not_applicable_and_lists_each_kind() -> None:
    new = cfg(api={"port": 9000, **tills(t1="a")}, redemption={"till_failure_limit": 3})
    diff = diff_configs(cfg(), new)
    assert [c.path for c in diff.restart] == ["api.port"]
    assert [c.path for c in diff.live] == [
        "redemption.till_failure_limit",
        "api.tills",
    ]  # schema order
    assert not diff.applicable_live
    assert diff.touches("redemption") and diff.touches("api.tills")
    assert not diff.touches("printer") and not diff.touches("api.host")


def test_values_are_shown_short_and_long_ones_only_as_changed() -> None:
    diff = diff_configs(cfg(), cfg(redemption={"till_failure_limit": 3}))
    assert diff.changes[0].detail == "10 -> 3"
    template = [{"text": "{qr}"}, {"text": "{code} {expiry} {reprint}"}]
    diff = diff_configs(cfg(), cfg(printer={"template": template}))
    assert diff.changes[0].detail == "changed"


def test_header_and_reminder_apply_to_coupons_issued_from_now_on() -> None:
    diff = diff_configs(cfg(), cfg(printer={"header_lines": ["Shop 2"], "reminder": "Soon!"}))
    assert {c.apply for c in diff.changes} == {Apply.LIVE}
    assert all("issued from now on" in c.why for c in diff.changes)


def _all_paths(model: type[BaseModel]) -> list[str]:
    return [
        f"{section}.{name}"
        for section, info in model.model_fields.items()
        for name in info.annotation.model_fields  # type: ignore[union-attr]
    ]


def test_every_field_of_the_schema_has_a_rule() -> None:
    # A setting added to the schema must be classified on purpose: unclassified ones need a
    # restart (below), which would silently make a new live-able setting restart-only.
    paths = _all_paths(AgentConfig)
    unruled = [p for p in paths if p not in RULES and p.split(".")[0] not in RULES]
    assert unruled == []


def test_a_field_no_rule_names_needs_a_restart() -> None:
    rules = {k: v for k, v in RULES.items() if k != "redemption"}
    diff = diff_configs(cfg(), cfg(redemption={"hold_seconds": 60}), rules=rules)
    assert diff.changes[0].apply is Apply.RESTART
    assert "no rule" in diff.changes[0].why
    assert rule_for("printer.port") == RULES["printer"]  # the section's rule
    assert rule_for("printer.reminder") is RULES["printer.reminder"]  # the field's own
    assert isinstance(rule_for("nowhere.at_all"), Rule)
