"""The agent's presence loop as the benchmarks drive it: one zone, offers not asked for."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from config.presence import PresenceConfig
from edge_agent.presence.rotating_id_resolver import EnrolledTag, MemberKey, RotatingIdResolver
from edge_agent.proximity.presence_loop import Identities, PresenceLoop
from edge_agent.proximity.service import PresenceMoment, Recorded


async def _no_offers(_moment: PresenceMoment) -> tuple[Recorded, ...]:
    return ()


def presence_loop(
    source: str,
    *,
    keys: tuple[MemberKey, ...] = (),
    tags: tuple[EnrolledTag, ...] = (),
    clock: Callable[[], datetime],
    mono: Callable[[], float] = time.monotonic,
) -> PresenceLoop:
    """A loop whose one zone ``source`` places anyone above -80 dBm, over these identities."""
    cfg = PresenceConfig.model_validate(
        {
            "enabled": True,
            "max_tracked": 100_000,
            "zones": [{"id": "bench", "sources": [source], "enter_dbm": -80, "exit_dbm": -90}],
        }
    )
    loop = PresenceLoop(
        tracker=cfg.to_tracker_config(),
        policy=cfg.to_policy(),
        make_resolver=lambda k, t: RotatingIdResolver(k, tags=t),
        visit_gap_s=1200.0,
        ask=_no_offers,
        clock=clock,
        mono=mono,
    )
    loop.take_identities(Identities(version=1, keys=keys, tags=tags))
    return loop
