"""The campaign file (``storeside-hq campaign create FILE.json``): one model, every error at once.

The same definition is the codec of campaign bodies in HQ's file and in store snapshots, so
its JSON output must stay what the box reads (golden dict below, written by the hand-written
codec this replaced).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.hq.cli import main
from edge_agent.domain.promotion import (
    Benefit,
    BenefitKind,
    Limits,
    OfflinePolicy,
    Promotion,
    StackingRule,
)
from edge_agent.domain.promotion_codec import (
    CampaignFile,
    PromotionFormatError,
    campaign_json_schema,
    promotion_from_dict,
    promotion_to_dict,
)
from tests.hq.conftest import campaign_doc

ROOT = Path(__file__).resolve().parents[2]
FULL = Promotion(
    campaign_id="FULL",
    name="Everything set",
    benefit=Benefit(
        kind=BenefitKind.BUNDLE_PRICE, value=999, bundle_skus=("tea", "cake"), max_discount=500
    ),
    stacking=StackingRule(
        stacking_class="member_coupon",
        combines_with=frozenset({"tier_discount", "partner_code"}),
        order=20,
    ),
    starts_at=datetime(2025, 3, 1, 12, tzinfo=UTC),
    ends_at=datetime(2025, 3, 22, 12, tzinfo=UTC),
    min_spend=2000,
    min_quantity=2,
    eligible_skus=frozenset({"tea", "cake"}),
    eligible_categories=frozenset({"bakery"}),
    eligible_segments=frozenset({"loyal", "at_risk"}),
    allowed_stores=frozenset({"S2", "S1"}),
    requires_member=True,
    budget_count=5000,
    budget_money=1_000_000,
    store_allocation=300,
    limits=Limits(
        total_uses_per_code=1000,
        uses_per_member=1,
        member_velocity_count=3,
        member_velocity_window=timedelta(hours=12),
    ),
    offline=OfflinePolicy(
        max_cache_age=timedelta(hours=6),
        high_value_threshold=5000,
        uncapped_max_cache_age=timedelta(minutes=30),
    ),
    active=False,
)
GOLDEN = json.loads(
    '{"active": false, "allowed_stores": ["S1", "S2"], "benefit": {"bundle_skus": ["tea", '
    '"cake"], "free_sku": null, "kind": "bundle_price", "max_discount": 500, "value": 999}, '
    '"budget_count": 5000, "budget_money": 1000000, "campaign_id": "FULL", '
    '"eligible_categories": ["bakery"], "eligible_segments": ["at_risk", "loyal"], '
    '"eligible_skus": ["cake", "tea"], "ends_at": "2025-03-22T12:00:00+00:00", "limits": '
    '{"member_velocity_count": 3, "member_velocity_window_s": 43200, "total_uses_per_code": '
    '1000, "uses_per_member": 1, "uses_per_transaction": 1}, "min_quantity": 2, "min_spend": '
    '2000, "name": "Everything set", "offline": {"high_value_threshold": 5000, '
    '"max_cache_age_s": 21600, "uncapped_max_cache_age_s": 1800}, "requires_member": true, '
    '"stacking": {"combines_with": ["partner_code", "tier_discount"], "exclusive": false, '
    '"order": 20, "stacking_class": "member_coupon"}, "starts_at": "2025-03-01T12:00:00+00:00", '
    '"store_allocation": 300}'
)


def test_codec_output_is_unchanged_and_round_trips() -> None:
    assert promotion_to_dict(FULL) == GOLDEN
    back = promotion_from_dict(json.loads(json.dumps(GOLDEN)))
    sorted_bundle = {**GOLDEN, "benefit": {**GOLDEN["benefit"], "bundle_skus": ["cake", "tea"]}}
    assert promotion_to_dict(back) == sorted_bundle  # read back, a bundle's SKUs are sorted
    assert promotion_from_dict(promotion_to_dict(back)) == back
    assert back == FULL.__class__(**{**_fields(FULL), "benefit": back.benefit})
    assert sorted(back.benefit.bundle_skus) == ["cake", "tea"]


def _fields(p: Promotion) -> dict[str, Any]:
    return {name: getattr(p, name) for name in p.__dataclass_fields__}


def test_every_error_of_a_campaign_file_is_reported_at_once_with_its_path() -> None:
    doc = campaign_doc(
        "BAD",
        benefit={"kind": "percent_off", "value": 20_000},
        limits={"total_uses_per_code": -1, "member_velocity_window_s": 10**20},
        stacking={"stacking_class": "coupon", "order": "first"},
        colour="red",
        ends_at="2000-01-01T00:00:00+00:00",
    )
    with pytest.raises(PromotionFormatError) as err:
        promotion_from_dict(doc)
    text = str(err.value)
    for path in (
        "benefit.value: ",
        "limits.total_uses_per_code: ",
        "limits.member_velocity_window_s: ",
        "stacking.order: ",
        "colour: ",
        "ends_at: ",
    ):
        assert path in text, text
    assert "basis points" in text
    assert len(err.value.problems) == 6


@pytest.mark.parametrize(
    "changes",
    [
        {"starts_at": "0001-01-01T00:00:00+05:00"},
        {"offline": {"max_cache_age_s": 10**30}},
        {"starts_at": 1_700_000_000},
        {"requires_member": 1},
        {"min_spend": True},
        {"benefit": {"kind": "free_item"}},
        {"benefit": {"kind": "bundle_price", "value": 500, "bundle_skus": ["tea"]}},
        {"eligible_skus": "tea"},
        {"name": ""},
    ],
)
def test_values_the_old_codec_crashed_on_or_let_through_are_refused(
    changes: dict[str, Any],
) -> None:
    with pytest.raises(PromotionFormatError):
        promotion_from_dict(campaign_doc("X", **changes))


def test_the_cli_prints_every_problem_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "hq.db")
    bad = campaign_doc("BAD", benefit={"kind": "percent_off", "value": 20_000}, min_spend=-5)
    (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    assert main(["--db", db, "init"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "campaign", "create", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "benefit.value: " in err and "; min_spend: " in err


def _keys(schema: dict[str, Any], node: dict[str, Any]) -> set[str]:
    """Every field path the schema defines (following $refs)."""
    out = set()
    for name, prop in node.get("properties", {}).items():
        out.add(name)
        refs = [prop, *prop.get("anyOf", [])]
        for r in refs:
            if "$ref" in r:
                sub = schema["$defs"][r["$ref"].rsplit("/", 1)[1]]
                out |= {f"{name}.{k}" for k in _keys(schema, sub)}
    return out


def _doc_keys(doc: dict[str, Any], head: str = "") -> set[str]:
    out = set()
    for k, v in doc.items():
        out.add(head + k)
        if isinstance(v, dict):
            out |= _doc_keys(v, f"{head}{k}.")
    return out


def test_example_campaign_file_is_valid_and_covers_every_field() -> None:
    doc = json.loads((ROOT / "config" / "campaign.example.json").read_text(encoding="utf-8"))
    doc.pop("$schema", None)
    promotion_from_dict(doc)
    schema = CampaignFile.model_json_schema()
    assert _doc_keys(doc) == _keys(schema, schema)


def test_generated_campaign_schema_is_current() -> None:
    committed = (ROOT / "config" / "campaign.schema.json").read_text(encoding="utf-8")
    assert committed == campaign_json_schema(), (
        "run: storeside-hq campaign schema > config/campaign.schema.json"
    )
    assert (
        "basis points"
        in json.loads(committed)["$defs"]["BenefitFile"]["properties"]["value"]["description"]
    )


def test_the_example_file_creates_a_campaign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "hq.db")
    assert main(["--db", db, "init"]) == 0
    example = str(ROOT / "config" / "campaign.example.json")
    assert main(["--db", db, "campaign", "create", example]) == 0
    assert "campaign spring-10 created" in capsys.readouterr().out
