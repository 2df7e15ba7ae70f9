"""A code as the store's cache knows it, and the usage facts validation needs about it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from edge_agent.domain.promotion import Member, Promotion


class CodeStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeRecord:
    code: str
    campaign_id: str
    member_id: str | None  # bound at issue; None for anonymous and generic codes
    status: CodeStatus = CodeStatus.ACTIVE
    channel: str = "app"  # receipt, app, sms, email, whatsapp, beacon, paper, influencer
    variant: str = "A"
    issued_at: datetime | None = None
    expires_at: datetime | None = None  # None: the campaign's end applies
    linked_member_id: str | None = None  # a physical code linked to a customer's next checkout


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    till_id: str
    store_id: str
    transaction_id: str
    until: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RedemptionInfo:
    at: datetime
    store_id: str
    till_id: str
    transaction_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageFacts:
    """Counters the cache keeps; loaded in one read before validation."""

    code_uses: int = 0  # committed, not reversed
    member_code_uses: int = 0  # of this code by the requesting member
    member_recent_redemptions: tuple[datetime, ...] = ()  # for velocity, newest first
    campaign_uses: int = 0
    campaign_money: int = 0
    store_campaign_uses: int = 0
    reservations: tuple[Reservation, ...] = ()  # live holds on this code
    last_redemption: RedemptionInfo | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeFacts:
    """Everything the cache knows that bears on one code, read in one go."""

    record: CodeRecord
    promotion: Promotion
    member: Member | None  # the requesting member, if the till identified one
    usage: UsageFacts
