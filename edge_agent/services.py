"""The store's services over one cache, as the one SQLite thread holds them.

The DB thread hands the same ``StoreServices`` to every job it runs. A new config replaces the
services in it (``swap``) from a job of its own, so the change lands between two jobs, never
inside one: every request sees either the old services or the new ones, whole.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.retention import PruneReport, prune
from edge_agent.domain.coupon_token import CouponSigner
from edge_agent.issuing.service import IssueService
from edge_agent.points.errors import PointsDisabledError
from edge_agent.points.service import PointsService
from edge_agent.proximity.service import ProximityService
from edge_agent.redemption.service import RedemptionService


class ReceiptsUnavailableError(Exception):
    """Receipt coupons cannot be issued: this box has no signing key (see `edge-agent keys`)."""


@dataclass(slots=True, kw_only=True)
class StoreServices:
    cache: CodeCache
    redemption: RedemptionService
    issuing_service: IssueService | None  # None: no signing key, so no receipt coupons
    signer: CouponSigner | None = None  # the key loaded at start; a rebuild reuses it
    proximity: ProximityService | None = None  # None: presence off, or no signing key
    points_service: PointsService | None = None  # None: points off (config points.enabled)

    @property
    def issuing(self) -> IssueService:
        if self.issuing_service is None:
            raise ReceiptsUnavailableError(
                "this box has no coupon signing key: run `edge-agent keys init`, then have HQ "
                "register it"
            )
        return self.issuing_service

    @property
    def points(self) -> PointsService:
        if self.points_service is None:
            raise PointsDisabledError
        return self.points_service

    def swap(
        self,
        *,
        redemption: RedemptionService,
        issuing_service: IssueService | None,
        proximity: ProximityService | None,
        points: PointsService | None,
    ) -> None:
        """Replace the services over the same cache. Call it on the DB thread only, as a job
        of its own (``DbThread.run``), so no other job is half-way through the old ones."""
        if any(
            s is not None and s.cache is not self.cache
            for s in (redemption, issuing_service, proximity, points)
        ):
            raise ValueError("a rebuilt service must run over the same cache")
        self.redemption = redemption
        self.issuing_service = issuing_service
        self.proximity = proximity
        self.points_service = points

    def housekeeping(self, *, now: datetime, keep: timedelta) -> PruneReport:
        """Everything that keeps the box's tables and memory bounded, off the hot path."""
        report = prune(self.cache, now=now, keep=keep)
        if self.issuing_service is not None:
            report = replace(report, issues=self.issuing_service.prune(now))
        if self.proximity is not None:
            report = replace(report, issues=report.issues + self.proximity.prune(now))
        self.redemption.decider.throttle.forget_idle(now)
        return report

    def close(self) -> None:
        self.cache.close()
