"""Builders for the proximity tests: a store cache with the proximity campaigns, a policy of
one coffee-zone rule, a service, and members in or out of its holdout."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

from config.presence import PresenceConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain import holdout
from edge_agent.domain.promotion import Member
from edge_agent.domain.proximity_campaigns import default_proximity_campaigns
from edge_agent.issuing.minter import Minter
from edge_agent.presence.proximity_rules import DEFAULT_CAMPAIGN_IDS, ProximityPolicy
from edge_agent.proximity.service import PresenceMoment, ProximityService
from tests.issuing import factories as issuing
from tests.issuing.factories import CAMPAIGN_END, CAMPAIGN_START, FMT, NAMESPACE, NOW, sign

ZONES = (
    {"id": "entrance", "sources": ["entrance-scanner"]},
    {"id": "coffee", "sources": ["coffee-scanner"]},
)
COFFEE_RULE = {"id": "coffee-dwell", "zone": "coffee", "min_dwell_s": 20}


def presence(**overrides: Any) -> PresenceConfig:
    doc: dict[str, Any] = {"enabled": True, "zones": ZONES, "rules": [COFFEE_RULE]}
    return PresenceConfig.model_validate(doc | overrides)


def member_id(segment: str, *, held_out: bool, pol: ProximityPolicy, skip: int = 0) -> str:
    """The ``skip``-th id ``<segment>-N`` in (or out of) the holdout of ``segment``'s cohort."""
    cohort = DEFAULT_CAMPAIGN_IDS[segment]
    found = 0
    for n in itertools.count():
        candidate = f"{segment}-{n}"
        drawn = holdout.in_holdout(
            key=pol.holdout_key, cohort=cohort, subject=candidate, share_bp=pol.holdout_bp
        )
        if drawn == held_out:
            if found == skip:
                return candidate
            found += 1
    raise AssertionError("unreachable")


def open_cache(
    path: Path, *, members: tuple[Member, ...] = (), namespace: str = NAMESPACE
) -> CodeCache:
    """A cache from a real snapshot with the proximity campaigns, ``members`` and namespace."""
    campaigns = default_proximity_campaigns(starts_at=CAMPAIGN_START, ends_at=CAMPAIGN_END)
    return issuing.open_cache(path, members=members, namespace=namespace, campaigns=campaigns)


def service(cache: CodeCache, pol: ProximityPolicy) -> ProximityService:
    return ProximityService(cache, policy=pol, minter=Minter(cache, fmt=FMT), sign=sign)


def moment(member: str, *, dwell_s: float = 21.0, at: timedelta = timedelta()) -> PresenceMoment:
    now = NOW + at
    return PresenceMoment(
        member_id=member,
        zone="coffee",
        mark_s=20.0,
        dwell_s=dwell_s,
        visit_started_at=NOW - timedelta(seconds=dwell_s + 30),  # one visit across calls
        now=now,
    )
