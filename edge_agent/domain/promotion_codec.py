"""Promotions as JSON-ready dicts: the form HQ stores, ships in snapshots and the CLI reads.

Strict both ways: an unknown key or a wrong type raises ``PromotionFormatError`` naming the
field, so a bad campaign file is refused whole instead of half-applied.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from edge_agent.domain.promotion import (
    Benefit,
    BenefitKind,
    Limits,
    OfflinePolicy,
    Promotion,
    StackingRule,
)


class PromotionFormatError(ValueError):
    """A campaign document that does not describe a valid promotion."""


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _parse_ts(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise PromotionFormatError(f"{name}: expected an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PromotionFormatError(f"{name}: {exc}") from exc
    if parsed.tzinfo is None:
        raise PromotionFormatError(f"{name}: timestamp needs a UTC offset")
    return parsed.astimezone(UTC)


def _int(value: object, name: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PromotionFormatError(f"{name}: expected an integer")
    if value < 0:
        raise PromotionFormatError(f"{name}: must not be negative")
    return value


def _req_int(value: object, name: str) -> int:
    result = _int(value, name)
    assert result is not None
    return result


def _strs(value: object, name: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PromotionFormatError(f"{name}: expected a list of strings")
    return frozenset(value)


def _check_keys(doc: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(doc) - allowed
    if unknown:
        raise PromotionFormatError(f"{where}: unknown keys {sorted(unknown)}")


def promotion_to_dict(p: Promotion) -> dict[str, Any]:
    return {
        "campaign_id": p.campaign_id,
        "name": p.name,
        "benefit": {
            "kind": p.benefit.kind.value,
            "value": p.benefit.value,
            "free_sku": p.benefit.free_sku,
            "bundle_skus": list(p.benefit.bundle_skus),
            "max_discount": p.benefit.max_discount,
        },
        "stacking": {
            "stacking_class": p.stacking.stacking_class,
            "exclusive": p.stacking.exclusive,
            "combines_with": sorted(p.stacking.combines_with),
            "order": p.stacking.order,
        },
        "starts_at": _ts(p.starts_at),
        "ends_at": _ts(p.ends_at),
        "min_spend": p.min_spend,
        "min_quantity": p.min_quantity,
        "eligible_skus": sorted(p.eligible_skus),
        "eligible_categories": sorted(p.eligible_categories),
        "eligible_segments": sorted(p.eligible_segments),
        "allowed_stores": sorted(p.allowed_stores),
        "requires_member": p.requires_member,
        "budget_count": p.budget_count,
        "budget_money": p.budget_money,
        "store_allocation": p.store_allocation,
        "limits": {
            "total_uses_per_code": p.limits.total_uses_per_code,
            "uses_per_member": p.limits.uses_per_member,
            "uses_per_transaction": p.limits.uses_per_transaction,
            "member_velocity_count": p.limits.member_velocity_count,
            "member_velocity_window_s": int(p.limits.member_velocity_window.total_seconds()),
        },
        "offline": {
            "max_cache_age_s": int(p.offline.max_cache_age.total_seconds()),
            "high_value_threshold": p.offline.high_value_threshold,
            "uncapped_max_cache_age_s": int(p.offline.uncapped_max_cache_age.total_seconds()),
        },
        "active": p.active,
    }


_TOP = {
    "campaign_id",
    "name",
    "benefit",
    "stacking",
    "starts_at",
    "ends_at",
    "min_spend",
    "min_quantity",
    "eligible_skus",
    "eligible_categories",
    "eligible_segments",
    "allowed_stores",
    "requires_member",
    "budget_count",
    "budget_money",
    "store_allocation",
    "limits",
    "offline",
    "active",
}


def _sub(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise PromotionFormatError(f"{key}: expected an object")
    return value


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise PromotionFormatError(f"{name}: expected true or false")
    return value


def _str(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise PromotionFormatError(f"{name}: expected a non-empty string")
    return value


def promotion_from_dict(doc: object) -> Promotion:
    """Build a Promotion from its dict form; missing optional keys take their defaults."""
    if not isinstance(doc, dict):
        raise PromotionFormatError("campaign: expected an object")
    _check_keys(doc, _TOP, "campaign")
    for required in ("campaign_id", "name", "benefit", "stacking", "starts_at", "ends_at"):
        if required not in doc:
            raise PromotionFormatError(f"campaign: missing {required}")
    b = _sub(doc, "benefit")
    _check_keys(b, {"kind", "value", "free_sku", "bundle_skus", "max_discount"}, "benefit")
    try:
        kind = BenefitKind(str(b.get("kind")))
    except ValueError as exc:
        raise PromotionFormatError(
            f"benefit.kind: one of {[k.value for k in BenefitKind]}"
        ) from exc
    free_sku = b.get("free_sku")
    if free_sku is not None and not isinstance(free_sku, str):
        raise PromotionFormatError("benefit.free_sku: expected a string")
    benefit = Benefit(
        kind=kind,
        value=_req_int(b.get("value", 0), "benefit.value"),
        free_sku=free_sku,
        bundle_skus=tuple(sorted(_strs(b.get("bundle_skus", []), "benefit.bundle_skus"))),
        max_discount=_int(b.get("max_discount"), "benefit.max_discount", optional=True),
    )
    if kind is BenefitKind.PERCENT_OFF and benefit.value > 10_000:
        raise PromotionFormatError("benefit.value: percent_off is in basis points, <= 10000")
    if kind is BenefitKind.FREE_ITEM and not benefit.free_sku:
        raise PromotionFormatError("benefit.free_sku: required for free_item")
    if kind is BenefitKind.BUNDLE_PRICE and len(benefit.bundle_skus) < 2:
        raise PromotionFormatError("benefit.bundle_skus: a bundle needs two or more SKUs")
    s = _sub(doc, "stacking")
    _check_keys(s, {"stacking_class", "exclusive", "combines_with", "order"}, "stacking")
    stacking = StackingRule(
        stacking_class=_str(s.get("stacking_class"), "stacking.stacking_class"),
        exclusive=_bool(s.get("exclusive", False), "stacking.exclusive"),
        combines_with=_strs(s.get("combines_with", []), "stacking.combines_with"),
        order=_req_int(s.get("order", 100), "stacking.order"),
    )
    lim = _sub(doc, "limits")
    _check_keys(
        lim,
        {
            "total_uses_per_code",
            "uses_per_member",
            "uses_per_transaction",
            "member_velocity_count",
            "member_velocity_window_s",
        },
        "limits",
    )
    limits = Limits(
        total_uses_per_code=_int(
            lim.get("total_uses_per_code", 1), "limits.total_uses_per_code", optional=True
        ),
        uses_per_member=_int(lim.get("uses_per_member"), "limits.uses_per_member", optional=True),
        uses_per_transaction=_req_int(
            lim.get("uses_per_transaction", 1), "limits.uses_per_transaction"
        ),
        member_velocity_count=_int(
            lim.get("member_velocity_count"), "limits.member_velocity_count", optional=True
        ),
        member_velocity_window=timedelta(
            seconds=_req_int(
                lim.get("member_velocity_window_s", 86_400), "limits.member_velocity_window_s"
            )
        ),
    )
    off = _sub(doc, "offline")
    _check_keys(
        off, {"max_cache_age_s", "high_value_threshold", "uncapped_max_cache_age_s"}, "offline"
    )
    offline = OfflinePolicy(
        max_cache_age=timedelta(
            seconds=_req_int(off.get("max_cache_age_s", 86_400), "offline.max_cache_age_s")
        ),
        high_value_threshold=_int(
            off.get("high_value_threshold"), "offline.high_value_threshold", optional=True
        ),
        uncapped_max_cache_age=timedelta(
            seconds=_req_int(
                off.get("uncapped_max_cache_age_s", 3_600), "offline.uncapped_max_cache_age_s"
            )
        ),
    )
    starts_at = _parse_ts(doc["starts_at"], "starts_at")
    ends_at = _parse_ts(doc["ends_at"], "ends_at")
    if ends_at <= starts_at:
        raise PromotionFormatError("ends_at: must be after starts_at")
    return Promotion(
        campaign_id=_str(doc["campaign_id"], "campaign_id"),
        name=_str(doc["name"], "name"),
        benefit=benefit,
        stacking=stacking,
        starts_at=starts_at,
        ends_at=ends_at,
        min_spend=_req_int(doc.get("min_spend", 0), "min_spend"),
        min_quantity=_req_int(doc.get("min_quantity", 0), "min_quantity"),
        eligible_skus=_strs(doc.get("eligible_skus", []), "eligible_skus"),
        eligible_categories=_strs(doc.get("eligible_categories", []), "eligible_categories"),
        eligible_segments=_strs(doc.get("eligible_segments", []), "eligible_segments"),
        allowed_stores=_strs(doc.get("allowed_stores", []), "allowed_stores"),
        requires_member=_bool(doc.get("requires_member", False), "requires_member"),
        budget_count=_int(doc.get("budget_count"), "budget_count", optional=True),
        budget_money=_int(doc.get("budget_money"), "budget_money", optional=True),
        store_allocation=_int(doc.get("store_allocation"), "store_allocation", optional=True),
        limits=limits,
        offline=offline,
        active=_bool(doc.get("active", True), "active"),
    )
