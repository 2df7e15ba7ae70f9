"""Postings, ledger events and entries: the append-only values of the points ledger.

Theory of operation
-------------------
A ``Posting`` is one side of a movement: a credit or a debit of ``points`` (an int >= 0) on one
account. A ``LedgerEvent`` is one business fact: an id unique across the programme (the
idempotency key: a till's transaction, an HQ run), its kind, when it happened, where it came
from (``Origin``: channel, store, till), the programme, an optional campaign, and its postings.
Building an event checks everything that can be checked without the ledger, so an event that
exists is well formed:

1. at least one posting, and ``at`` carries a time zone (instants, never wall-clock times);
2. every posting's points are an int >= 0 (``bool`` is refused: it is an int to Python);
3. every account belongs to the event's programme;
4. the postings sum to zero (credits positive, debits negative): ``UnbalancedEventError``.

Events are frozen and compared by value: the ledger tells a replay (equal content) from a
conflict (same id, other content) with ``==``. A correction is never an edit but a new event
(``reversal_of`` swaps every side).

An ``Entry`` is a posting seen with its event, the row the ledger API shows: its id is the
event's id and the posting's position (``<event id>#<n>``), unique because event ids are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from edge_agent.domain.points.accounts import Account, MemberAccount
from edge_agent.domain.points.errors import (
    ForeignAccountError,
    InvalidPointsError,
    MalformedEventError,
    UnbalancedEventError,
)


class Side(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"

    def flipped(self) -> Side:
        return Side.DEBIT if self is Side.CREDIT else Side.CREDIT


class Channel(StrEnum):
    """Where an event came from (the ledger API filters on it)."""

    IN_STORE = "in_store"
    E_COMMERCE = "e_commerce"
    WEB = "web"
    APP = "app"
    HQ = "hq"  # imports, campaign awards, expiry runs, merges


class EventKind(StrEnum):
    OPENING = "opening"
    EARN = "earn"
    BURN = "burn"
    BURN_REVERSAL = "burn_reversal"
    TRANSFER = "transfer"
    REFERRAL_AWARD = "referral_award"
    REFERRAL_RETURN = "referral_return"
    CONVERSION = "conversion"
    IMPORT = "import"
    BULK_AWARD = "bulk_award"
    REFUND_RETURN = "refund_return"
    EXPIRY = "expiry"
    MERGE = "merge"
    CORRECTION = "correction"


@dataclass(frozen=True, slots=True)
class Origin:
    channel: Channel
    store: str | None = None
    till: str | None = None


@dataclass(frozen=True, slots=True)
class Posting:
    account: Account
    side: Side
    points: int

    @property
    def signed(self) -> int:
        """Credits count up, debits down: what this posting adds to its account's balance."""
        return self.points if self.side is Side.CREDIT else -self.points


def check_points(what: str, points: object, *, positive: bool = False) -> int:
    """``points`` as a valid count (an int, >= 0, or > 0 when ``positive``), else raise."""
    if type(points) is not int or points < 0 or (positive and points == 0):
        raise InvalidPointsError(what=what, points=points)
    return points


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    event_id: str
    kind: EventKind
    at: datetime
    programme: str
    origin: Origin
    postings: tuple[Posting, ...]
    campaign: str | None = None

    def __post_init__(self) -> None:
        if not self.postings:
            raise MalformedEventError(f"event {self.event_id!r} has no postings")
        if self.at.tzinfo is None:
            raise MalformedEventError(f"event {self.event_id!r}: 'at' has no time zone")
        for p in self.postings:
            check_points(f"event {self.event_id!r} posting on {p.account}", p.points)
            if p.account.programme != self.programme:
                raise ForeignAccountError(
                    event_id=self.event_id,
                    programme=self.programme,
                    account_programme=p.account.programme,
                )
        total = sum(p.signed for p in self.postings)
        if total != 0:
            raise UnbalancedEventError(event_id=self.event_id, total=total)

    def entries(self) -> tuple[Entry, ...]:
        return tuple(Entry(self, i) for i in range(len(self.postings)))

    def net(self, account: Account) -> int:
        """What this event adds to ``account``'s balance (a refund return shows its net)."""
        return sum(p.signed for p in self.postings if p.account == account)

    def member_net(self) -> int:
        """What this event adds to its members' accounts together (0 for a transfer, merge or
        conversion; the net of a refund return's debit and credit)."""
        return sum(p.signed for p in self.postings if isinstance(p.account, MemberAccount))

    def accounts(self) -> tuple[Account, ...]:
        """The accounts posted to, each once, in posting order."""
        return tuple(dict.fromkeys(p.account for p in self.postings))


@dataclass(frozen=True, slots=True)
class Entry:
    event: LedgerEvent
    index: int

    @property
    def posting(self) -> Posting:
        return self.event.postings[self.index]

    @property
    def entry_id(self) -> str:
        return f"{self.event.event_id}#{self.index}"

    @property
    def at(self) -> datetime:
        return self.event.at


def reversal_of(event: LedgerEvent, *, event_id: str, at: datetime, origin: Origin) -> LedgerEvent:
    """The correction of ``event``: the same postings with every side swapped."""
    return LedgerEvent(
        event_id=event_id,
        kind=EventKind.CORRECTION,
        at=at,
        programme=event.programme,
        origin=origin,
        postings=tuple(Posting(p.account, p.side.flipped(), p.points) for p in event.postings),
        campaign=event.campaign,
    )
