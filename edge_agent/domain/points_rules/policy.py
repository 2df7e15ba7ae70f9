"""Every points rule the box applies at checkout, as one value (built by ``config/points.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.domain.points_rules.burn import BurnRules
from edge_agent.domain.points_rules.earn import EarnPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class PointsPolicy:
    enabled: bool
    earn: EarnPolicy
    burn: BurnRules
    offline_allowance: int  # points beyond the known balance a burn may take (offline_bound)
