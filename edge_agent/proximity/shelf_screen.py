"""The optional local hook: a screen at the shelf shows the offer just given in its zone.

A shelf screen is public, so what it is sent names nobody: the zone, the campaign's name, the
benefit in words and when it ends; never the member, the code or the QR (those go to the
member's phone through HQ). A screen that is slow or down never delays or undoes an offer: the
presence loop hands notices over without waiting (``ShelfScreens.show``), and a failure is a log
line. The real driver posts JSON to the screen's URL (``hardware/screen/http_screen.py``); the
simulated twin keeps what it was shown (``hardware/screen/sim_screen.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from edge_agent.domain.messages import iso
from edge_agent.presence.proximity_rules import Trigger
from edge_agent.proximity.service import Recorded

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShelfNotice:
    zone: str
    campaign_name: str
    benefit: str
    expires_at: str  # ISO 8601

    def to_json(self) -> dict[str, str]:
        return {
            "zone": self.zone,
            "campaign_name": self.campaign_name,
            "benefit": self.benefit,
            "expires_at": self.expires_at,
        }


class ShelfScreen(Protocol):
    async def show(self, notice: ShelfNotice) -> None:
        """Show it; raise on failure (``ShelfScreens`` logs it)."""
        ...


class ShelfScreens:
    """The screens of each zone; ``on_recorded`` is the presence loop's hook."""

    def __init__(self, screens: Mapping[str, ShelfScreen]) -> None:
        self._screens = dict(screens)
        self._pending: set[asyncio.Task[None]] = set()
        self.shown = 0
        self.failed = 0

    def screen(self, zone: str) -> ShelfScreen | None:
        return self._screens.get(zone)

    def on_recorded(self, recorded: Recorded) -> None:
        outcome = recorded.outcome
        if recorded.coupon is None or not isinstance(outcome, Trigger):
            return
        screen = self._screens.get(outcome.zone)
        if screen is None:
            return
        notice = ShelfNotice(
            zone=outcome.zone,
            campaign_name=outcome.offer.campaign_name,
            benefit=outcome.offer.benefit,
            expires_at=iso(outcome.offer.expires_at),
        )
        task = asyncio.get_running_loop().create_task(self._show(screen, notice))
        self._pending.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._pending.discard)

    async def _show(self, screen: ShelfScreen, notice: ShelfNotice) -> None:
        try:
            await screen.show(notice)
            self.shown += 1
        except Exception as exc:  # a screen's failure is never the offer's
            self.failed += 1
            log.warning("shelf screen in %s did not take the offer: %s", notice.zone, exc)
