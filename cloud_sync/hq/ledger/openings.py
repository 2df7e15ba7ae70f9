"""Opening a member's account at HQ: one id per account, one date for every zero opening.

Theory of operation
-------------------
Every member account starts with an opening entry (DOMAIN.md section 5) and no entry may
precede it. Its id is ``opening:{programme}:{member}:{category}``, so an account can be opened
once whoever opens it: the till intake, an award, a transfer's recipient or
``storeside-hq points open``.

**The dating rule.** A zero opening changes no balance at any time, so its date only has to
precede every entry the account will ever get, and a till offline for weeks can send an
event dated long before the first one HQ saw. The one date that precedes every entry is the
earliest one: every zero opening is dated ``ZERO_OPENING_AT`` (the Unix epoch). So every path
builds the very same event, a second opening is a replay, never a conflict, and no late till
event is ever refused as dated before its account's opening. A *migrated* balance
(``points import``) is dated when the caller says the migration happened (default: when it is
run); a till event dated before that is refused ``before_opening``, which is right: the
migrated balance already includes what happened before the migration.

``LOCK`` serialises HQ's ledger writers on PostgreSQL (the poster, the expiry pages and the
commands): the overdraft check reads a balance and the booking moves it, and two writers in
between would each see the balance before the other. Ingest never takes it (it only queues),
so the ledger never holds up the boxes' streams. SQLite has one writer already.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from cloud_sync.hq.ingest.event_store import Tx
from cloud_sync.hq.ledger.book import TxLedgerView, book
from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import MemberAccount
from edge_agent.domain.points.admission import Admission, OverdraftPolicy
from edge_agent.domain.points.event import Channel, LedgerEvent, Origin

ZERO_OPENING_AT: Final = datetime(1970, 1, 1, tzinfo=UTC)
HQ_ORIGIN: Final = Origin(Channel.HQ)
LOCK: Final = "storeside:points-ledger"
OPENING_POLICY: Final = OverdraftPolicy()  # an opening may be negative under any policy


def opening_id(account: MemberAccount) -> str:
    return f"opening:{account.programme}:{account.member}:{account.category.value}"


def zero_opening(account: MemberAccount) -> LedgerEvent:
    return kinds.opening(
        event_id=opening_id(account), at=ZERO_OPENING_AT, origin=HQ_ORIGIN, account=account
    )


def ensure_open(tx: Tx, account: MemberAccount, *, booked_at: datetime) -> Admission | None:
    """Open ``account`` with a zero entry unless it is open; the booking, or None if it was."""
    if TxLedgerView(tx).opened_at(account) is not None:
        return None
    return book(tx, zero_opening(account), policy=OPENING_POLICY, booked_at=booked_at)
