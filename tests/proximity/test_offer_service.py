"""The proximity service on a real cache: a trigger mints a member-bound coupon that validates
at a till, every outcome is an event with attribution, caps count across calls, the holdout gets
nothing but counts, no namespace means no coupon, and minted codes survive a snapshot reload."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.decision import Accepted, Reason, Refused, ValidationRequest
from edge_agent.domain.promotion import Member
from edge_agent.presence.proximity_rules import Suppressed, SuppressReason, Trigger
from edge_agent.redemption.service import RedemptionService
from tests.cache.factories import write_snapshot
from tests.issuing.factories import BASKET, FMT, NOW, STORE
from tests.proximity.factories import member_id, moment, open_cache, presence, service


def _events(cache: CodeCache, type_: str) -> list[dict[str, Any]]:
    rows = cache.conn.execute("SELECT payload FROM outbox ORDER BY seq").fetchall()
    return [e for e in (json.loads(r[0]) for r in rows) if e["type"] == type_]


POLICY = presence().to_policy()
TREATED = member_id("loyal", held_out=False, pol=POLICY)
HELD = member_id("loyal", held_out=True, pol=POLICY)


def _cache(tmp_path: Path, *, namespace: str = "23") -> CodeCache:
    members = (
        Member(member_id=TREATED, segment="loyal", tier="gold", proximity_consent=True),
        Member(member_id=HELD, segment="loyal", tier="gold", proximity_consent=True),
        Member(member_id="no-consent", segment="loyal", tier="gold", proximity_consent=False),
    )
    return open_cache(tmp_path / "cache.db", members=members, namespace=namespace)


def test_a_trigger_mints_a_member_bound_coupon_that_validates_here(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    (recorded,) = service(cache, POLICY).consider(moment(TREATED))
    assert isinstance(recorded.outcome, Trigger) and recorded.coupon is not None
    code = recorded.coupon.code
    (event,) = _events(cache, "offer.triggered")
    assert event["code"] == code and event["event_id"] == recorded.event_id
    attribution = event  # the envelope carries the attribution fields at its top level
    assert attribution["member_id"] == TREATED and attribution["channel"] == "proximity"
    assert attribution["campaign_id"] == "proximity-loyal" and attribution["till_id"] == ""
    details = event["details"]
    assert details["zone"] == "coffee" and details["rule_id"] == "coffee-dwell"
    assert details["qr_payload"] == recorded.coupon.qr_payload
    assert details["default_sizing_bp"] == 1000 and details["in_holdout"] is False
    coupon = recorded.coupon
    redemption = RedemptionService(cache, fmt=FMT)
    cache.set_synced_at(NOW)

    def validate(member: str) -> object:
        [decision] = redemption.validate(
            ValidationRequest(
                codes=(coupon.display,), store_id=STORE, till_id="till-1",
                cashier_id="c-1", basket=BASKET, now=NOW + timedelta(minutes=5), member_id=member,
            )
        )  # fmt: skip
        return decision

    assert isinstance(validate(TREATED), Accepted)
    other = validate(TREATED.replace("loyal", "champion"))
    assert isinstance(other, Refused) and other.reason is Reason.WRONG_MEMBER


def test_the_visit_cap_suppresses_the_second_trigger_with_an_event(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    svc = service(cache, POLICY)
    svc.consider(moment(TREATED))
    (second,) = svc.consider(moment(TREATED, at=timedelta(minutes=2)))
    assert isinstance(second.outcome, Suppressed)
    assert second.outcome.reason is SuppressReason.CAP_VISIT
    (event,) = _events(cache, "offer.suppressed")
    assert event["details"]["reason"] == "cap_visit"
    assert event["member_id"] == TREATED
    assert len(svc.recent(TREATED, NOW + timedelta(minutes=3))) == 1


def test_the_holdout_gets_no_code_but_counts_toward_the_caps(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    svc = service(cache, POLICY)
    (held,) = svc.consider(moment(HELD))
    assert isinstance(held.outcome, Suppressed) and held.coupon is None
    assert held.outcome.reason is SuppressReason.HOLDOUT
    (event,) = _events(cache, "offer.suppressed")
    assert event["code"] is None and event["details"]["in_holdout"] is True
    assert [p.rule_id for p in svc.recent(HELD, NOW)] == ["coffee-dwell"]
    (again,) = svc.consider(moment(HELD, at=timedelta(minutes=1)))
    assert isinstance(again.outcome, Suppressed)
    assert again.outcome.reason is SuppressReason.CAP_VISIT


def test_a_member_without_consent_is_recorded_without_a_name(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    (recorded,) = service(cache, POLICY).consider(moment("no-consent"))
    assert isinstance(recorded.outcome, Suppressed)
    assert recorded.outcome.reason is SuppressReason.NO_CONSENT
    (event,) = _events(cache, "offer.suppressed")
    assert event["member_id"] is None
    assert "zone" not in event["details"]
    assert cache.conn.execute("SELECT count(*) FROM proximity_offers").fetchone()[0] == 0


def test_without_a_minting_namespace_the_trigger_is_a_suppression(tmp_path: Path) -> None:
    cache = _cache(tmp_path, namespace="")
    (recorded,) = service(cache, POLICY).consider(moment(TREATED))
    assert isinstance(recorded.outcome, Suppressed) and recorded.coupon is None
    assert recorded.outcome.reason is SuppressReason.NO_NAMESPACE
    assert cache.conn.execute("SELECT count(*) FROM codes").fetchone()[0] == 0


def test_a_moment_no_rule_is_on_writes_nothing(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    before = cache.conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    entered = replace(moment(TREATED, dwell_s=0.0), mark_s=0.0)  # the rule is on 20 s
    assert service(cache, POLICY).consider(entered) == ()
    assert cache.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == before


def test_a_minted_code_survives_a_snapshot_that_lacks_it(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    (recorded,) = service(cache, POLICY).consider(moment(TREATED))
    assert recorded.coupon is not None
    reload = write_snapshot(
        tmp_path / "again.db",
        created_at=(NOW + timedelta(hours=1)).isoformat(),
        store_id=STORE,
        members=(Member(member_id=TREATED, segment="loyal", tier="gold", proximity_consent=True),),
        namespace="23",
    )
    cache.load_snapshot(reload)
    row = cache.conn.execute(
        "SELECT member_id, channel FROM codes WHERE code = ?", (recorded.coupon.code,)
    ).fetchone()
    assert tuple(row) == (TREATED, "proximity")
