"""The store's services over one cache, as the one SQLite thread holds them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.retention import PruneReport, prune
from edge_agent.issuing.service import IssueService
from edge_agent.redemption.service import RedemptionService


class ReceiptsUnavailableError(Exception):
    """Receipt coupons cannot be issued: this box has no signing key (see `edge-agent keys`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreServices:
    cache: CodeCache
    redemption: RedemptionService
    issuing_service: IssueService | None  # None: no signing key, so no receipt coupons

    @property
    def issuing(self) -> IssueService:
        if self.issuing_service is None:
            raise ReceiptsUnavailableError(
                "this box has no coupon signing key: run `edge-agent keys init`, then have HQ "
                "register it"
            )
        return self.issuing_service

    def housekeeping(self, *, now: datetime, keep: timedelta) -> PruneReport:
        """Everything that keeps the box's tables and memory bounded, off the hot path."""
        report = prune(self.cache, now=now, keep=keep)
        if self.issuing_service is not None:
            report = replace(report, issues=self.issuing_service.prune(now))
        self.redemption.decider.throttle.forget_idle(now)
        return report

    def close(self) -> None:
        self.cache.close()
