"""HQ's overlay over the box's own config: the deep merge, and every refusal with its path."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract.config_result import FieldError, Outcome
from config.model import AgentConfig
from config.overlay import Ready, Refused, check, leaf_paths, merge, refusals_before_push

FILE = AgentConfig.model_validate(
    {
        "store": {"store_id": "store-007", "box_id": "box-a"},
        "cache": {"path": "/var/lib/storeside/cache.db"},
        "redemption": {"till_failure_limit": 5},
        "printer": {"kind": "network", "host": "10.0.0.9", "port": 9100},
    }
)
TILL = {"till_id": "till-9", "token_sha256": "9" * 64}


def ready(overlay: dict[str, Any], running: AgentConfig = FILE) -> Ready:
    result = check(overlay, base=FILE, running=running)
    assert isinstance(result, Ready), result
    return result


def refused(overlay: dict[str, Any]) -> Refused:
    result = check(overlay, base=FILE, running=FILE)
    assert isinstance(result, Refused), result
    return result


def test_merge_is_deep_for_tables_and_replaces_everything_else() -> None:
    base = {"a": {"x": 1, "y": [1, 2], "t": {"k": 1}}, "b": 2}
    over = {"a": {"y": [3], "t": {"j": 2}}, "c": {"n": None}}
    assert merge(base, over) == {
        "a": {"x": 1, "y": [3], "t": {"k": 1, "j": 2}},
        "b": 2,
        "c": {"n": None},
    }
    assert base == {"a": {"x": 1, "y": [1, 2], "t": {"k": 1}}, "b": 2}  # untouched


json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=4)
keys = st.text("abc", min_size=1, max_size=2)  # no dot: a leaf's path walks back to it
tables = st.recursive(
    st.dictionaries(keys, json_leaf, max_size=3),
    lambda inner: st.dictionaries(keys, inner | json_leaf, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200)
@given(tables, tables)
def test_merge_sets_every_leaf_of_the_overlay_and_keeps_the_rest(
    base: dict[str, Any], over: dict[str, Any]
) -> None:
    merged = merge(base, over)
    assert merge(merged, over) == merged  # idempotent
    for path in leaf_paths(over):
        node_o: Any = over
        node_m: Any = merged
        for key in path.split("."):
            node_o, node_m = node_o[key], node_m[key]
        assert node_m == node_o


def test_a_live_overlay_is_ready_with_its_diff_over_the_file() -> None:
    result = ready({"redemption": {"till_failure_limit": 3}, "api": {"tills": [TILL]}})
    assert result.config.redemption.till_failure_limit == 3
    assert result.config.store.store_id == "store-007"  # the file's identity stays
    assert result.config.printer.host == "10.0.0.9"
    assert [c.path for c in result.diff.changes] == ["redemption.till_failure_limit", "api.tills"]


def test_a_new_overlay_replaces_the_last_one_whole() -> None:
    running = ready({"redemption": {"till_failure_limit": 3}}).config
    back = ready({"api": {"tills": [TILL]}}, running=running)
    assert back.config.redemption.till_failure_limit == 5  # the file's value again
    assert {c.path for c in back.diff.changes} == {"redemption.till_failure_limit", "api.tills"}


def test_nothing_new_is_ready_with_no_change() -> None:
    assert ready({"redemption": {"till_failure_limit": 5}}).diff.changes == ()


def test_every_schema_error_is_named_with_its_path() -> None:
    result = refused(
        {
            "redemption": {"till_failure_limt": 3, "hold_seconds": 1},
            "recipt_offers": {"enabled": False},
            "api": {"tills": [{"till_id": "t", "token_sha256": "nothex"}]},
        }
    )
    assert result.outcome is Outcome.REJECTED
    paths = {e.path for e in result.errors}
    assert paths == {
        "redemption.till_failure_limt",
        "redemption.hold_seconds",
        "recipt_offers",
        "api.tills.0.token_sha256",
    }
    assert any("greater than or equal to 10" in e.message for e in result.errors)


def test_fields_the_box_keeps_are_refused_before_the_schema() -> None:
    result = refused({"sync": {"hq_public_key": "x", "ca_file": "/tmp/ca"}, "x": 1})
    assert result.outcome is Outcome.REJECTED
    assert [e.path for e in result.errors] == ["sync.hq_public_key", "sync.ca_file"]
    assert all("set on the box only" in e.message for e in result.errors)


def test_a_field_that_needs_a_restart_is_named_and_nothing_is_ready() -> None:
    result = refused({"api": {"port": 9000}, "redemption": {"till_failure_limit": 3}})
    assert result.outcome is Outcome.NEEDS_RESTART
    (error,) = result.errors
    assert error.path == "api.port"
    assert "needs a restart (8470 -> 9000)" in error.message and "socket" in error.message


def test_hq_refuses_before_pushing_what_no_box_could_take() -> None:
    assert refusals_before_push({"redemption": {"till_failure_limit": 3}}) == []
    assert [e.path for e in refusals_before_push({"redemption": {"limit": 3}})] == [
        "redemption.limit"
    ]
    errors = refusals_before_push({"store": {"store_id": "s2"}, "sync": {"password_file": "p"}})
    assert [e.path for e in errors] == ["sync.password_file", "store.store_id"]
    assert refusals_before_push({"code_format": {"prefix": "lower"}})[0] == FieldError(
        "code_format.prefix", "String should match pattern '^[A-Z0-9]+$'"
    )
