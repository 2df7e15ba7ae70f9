"""The receipt campaigns at HQ: what a store needs to issue next-visit coupons at checkout.

The default ``[receipt_offers]`` config names one campaign per segment
(``offer_policy.DEFAULT_CAMPAIGN_IDS``); a store issues a receipt coupon only for a campaign its
snapshot holds. ``edge_agent/domain/receipt_campaigns.py`` defines them (DOMAIN.md section 3's
table); this stores them, all five or none. The store also needs its namespace
(``namespace assign``) to mint the coupon codes offline and its signing key registered
(``keys register``) so other stores honour its QR tokens; ``storeside-hq receipt-campaigns
create`` says so. The proximity campaigns (``proximity-campaigns create``) are their in-store
twins, named by the default ``[presence]`` rules.
"""

from __future__ import annotations

from datetime import datetime

from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.errors import InputError
from edge_agent.domain.promotion import Promotion
from edge_agent.domain.proximity_campaigns import default_proximity_campaigns
from edge_agent.domain.receipt_campaigns import default_receipt_campaigns


def create_receipt_campaigns(
    central: CentralStore,
    *,
    now: datetime,
    starts_at: datetime,
    ends_at: datetime,
    nudge_categories: frozenset[str] = frozenset(),
    replace: bool = False,
) -> tuple[Promotion, ...]:
    """Store the default receipt campaigns in one transaction; returns them."""
    if ends_at <= now:
        raise InputError("the receipt campaigns would end before they could be used")
    try:
        campaigns = default_receipt_campaigns(
            starts_at=starts_at, ends_at=ends_at, nudge_categories=nudge_categories
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return _store(central, campaigns, now=now, replace=replace)


def create_proximity_campaigns(
    central: CentralStore,
    *,
    now: datetime,
    starts_at: datetime,
    ends_at: datetime,
    replace: bool = False,
) -> tuple[Promotion, ...]:
    """Store the default proximity campaigns in one transaction; returns them."""
    if ends_at <= now:
        raise InputError("the proximity campaigns would end before they could be used")
    try:
        campaigns = default_proximity_campaigns(starts_at=starts_at, ends_at=ends_at)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return _store(central, campaigns, now=now, replace=replace)


def _store(
    central: CentralStore, campaigns: tuple[Promotion, ...], *, now: datetime, replace: bool
) -> tuple[Promotion, ...]:
    with central.write():
        for promotion in campaigns:
            central.create_campaign(promotion, now=now, replace=replace)
    return campaigns
