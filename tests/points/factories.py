"""Shared values for the points ledger tests."""

from __future__ import annotations

from datetime import UTC, datetime

from edge_agent.domain.points.accounts import Category, MemberAccount
from edge_agent.domain.points.event import Channel, Origin

P = "club"
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TILL = Origin(Channel.IN_STORE, store="S001", till="T1")
HQ = Origin(Channel.HQ)


def acct(member: str, category: Category = Category.REGULAR) -> MemberAccount:
    return MemberAccount(P, member, category)
