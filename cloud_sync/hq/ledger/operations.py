"""HQ's own ledger events: each built with ``kinds`` and booked, under a deterministic id.

Theory of operation
-------------------
Every operation is a function of one open transaction (``storeside-hq points ...`` and the
tests call the same ones). Its event id is derived from what the caller names (a transfer's
id, a campaign's award id, the victim of a merge...), never random, so running a command again
is a no-op: ``_rerun`` finds the id booked and answers ``Replayed`` with the first booking,
comparing the rebuilt event with it *at the first booking's time* (a rerun a day later gives
another ``now``, not other content); other content under the same id raises
``EventConflictError``. A merge's content is computed from the victim's balances, which the
first run emptied, so a merge rerun is recognised by its id alone.

Ids (``programme`` is the ledger programme):

    opening         opening:{programme}:{member}:{category}    (``openings``)
    import          import:{programme}:{member}:{category}     the migrated balance, when the
                                                               account was already open (a
                                                               till opened it at zero)
    bulk award      bulk:{programme}:{campaign}:{award}:{n}    n-th chunk of BULK_CHUNK members
                                                               in member order
    transfer        transfer:{programme}:{transfer}
    referral        referral:{programme}:{referral}  and  referral-return:{programme}:{referral}
    conversion      conversion:{programme}:{conversion}
    refund return   refund:{programme}:{refund}
    merge           merge:{programme}:{victim}

Accounts a credit lands in (an award's members, a transfer's recipient, the survivor of a
merge, both accounts of a conversion) are opened with a zero entry if they are not open
(``openings.ensure_open``). An account that is debited must be open already. HQ's own events
are judged by the default ``OverdraftPolicy``: a transfer, referral return or conversion the
member cannot cover comes back ``Overdrawn`` and nothing is booked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Final

from cloud_sync.hq.ingest.event_store import Tx
from cloud_sync.hq.ledger import openings
from cloud_sync.hq.ledger.book import TxLedgerView, book
from cloud_sync.hq.ledger.openings import HQ_ORIGIN, ensure_open, opening_id
from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import Category, MemberAccount
from edge_agent.domain.points.admission import Admission, OverdraftPolicy, Replayed
from edge_agent.domain.points.errors import EventConflictError
from edge_agent.domain.points.event import LedgerEvent

POLICY: Final = OverdraftPolicy()
BULK_CHUNK: Final = 5_000  # members per bulk award event (the codec takes 10,000 postings)


def _rerun(tx: Tx, event: LedgerEvent) -> Replayed | None:
    prior = TxLedgerView(tx).event(event.event_id)
    if prior is None:
        return None
    if replace(event, at=prior.at) != prior:
        raise EventConflictError(event_id=event.event_id)
    return Replayed(prior)


def _book(tx: Tx, event: LedgerEvent, *, now: datetime) -> Admission:
    tx.lock_keys([openings.LOCK])
    return _rerun(tx, event) or book(tx, event, policy=POLICY, booked_at=now)


def open_account(tx: Tx, account: MemberAccount, *, now: datetime) -> Admission:
    """Open ``account`` at zero (``openings``: dated at the epoch); a replay if it is open."""
    tx.lock_keys([openings.LOCK])
    booked = ensure_open(tx, account, booked_at=now)
    if booked is not None:
        return booked
    prior = TxLedgerView(tx).event(opening_id(account))
    assert prior is not None  # every opening has this id
    return Replayed(prior)


def import_balance(
    tx: Tx, account: MemberAccount, points: int, *, at: datetime, now: datetime
) -> Admission:
    """A migrated balance: the account's opening entry of ``points`` dated ``at``; if a till
    already opened it at zero, an ``import`` of the points instead (nothing for 0)."""
    tx.lock_keys([openings.LOCK])
    view = TxLedgerView(tx)
    opening = kinds.opening(
        event_id=opening_id(account), at=at, origin=HQ_ORIGIN, account=account, points=points
    )
    prior = view.event(opening.event_id)
    if prior is None:
        return book(tx, opening, policy=POLICY, booked_at=now)
    if replace(opening, at=prior.at) == prior or points == 0:
        return Replayed(prior)
    event = kinds.imported(
        event_id=f"import:{account.programme}:{account.member}:{account.category.value}",
        at=at,
        origin=HQ_ORIGIN,
        account=account,
        points=points,
    )
    return _book(tx, event, now=now)


def award_chunks(members: Sequence[str]) -> list[list[str]]:
    """``members`` deduplicated, in member order, cut into ``BULK_CHUNK``s: chunk ``n`` is
    the award's event ``n`` (so the same list always makes the same events)."""
    ordered = sorted(set(members))
    return [ordered[i : i + BULK_CHUNK] for i in range(0, len(ordered), BULK_CHUNK)]


def bulk_award(
    tx: Tx,
    *,
    programme: str,
    campaign: str,
    award: str,
    chunk: int,
    members: Sequence[str],
    points: int,
    category: Category = Category.REGULAR,
    at: datetime,
    now: datetime,
) -> Admission:
    """``points`` to each of ``members`` (``award_chunks(...)[chunk]``): one event, in the
    caller's transaction; the CLI gives each chunk a transaction of its own."""
    accounts = [MemberAccount(programme, m, category) for m in members]
    event = kinds.bulk_award(
        event_id=f"bulk:{programme}:{campaign}:{award}:{chunk}",
        at=at,
        origin=HQ_ORIGIN,
        accounts=accounts,
        points=points,
        campaign=campaign,
    )
    return _credit_then_book(tx, event, accounts, now=now)


def transfer(
    tx: Tx,
    *,
    programme: str,
    transfer_id: str,
    sender: str,
    recipient: str,
    points: int,
    category: Category = Category.REGULAR,
    at: datetime,
    now: datetime,
) -> Admission:
    to = MemberAccount(programme, recipient, category)
    event = kinds.transfer(
        event_id=f"transfer:{programme}:{transfer_id}",
        at=at,
        origin=HQ_ORIGIN,
        sender=MemberAccount(programme, sender, category),
        recipient=to,
        points=points,
    )
    return _credit_then_book(tx, event, [to], now=now)


def referral_award(
    tx: Tx,
    *,
    programme: str,
    referral_id: str,
    member: str,
    points: int,
    campaign: str | None = None,
    at: datetime,
    now: datetime,
) -> Admission:
    account = MemberAccount(programme, member)
    event = kinds.referral_award(
        event_id=f"referral:{programme}:{referral_id}",
        at=at,
        origin=HQ_ORIGIN,
        account=account,
        points=points,
        campaign=campaign,
    )
    return _credit_then_book(tx, event, [account], now=now)


def referral_return(
    tx: Tx,
    *,
    programme: str,
    referral_id: str,
    member: str,
    points: int,
    at: datetime,
    now: datetime,
) -> Admission:
    event = kinds.referral_return(
        event_id=f"referral-return:{programme}:{referral_id}",
        at=at,
        origin=HQ_ORIGIN,
        account=MemberAccount(programme, member),
        points=points,
    )
    return _book(tx, event, now=now)


def conversion(
    tx: Tx,
    *,
    programme: str,
    conversion_id: str,
    member: str,
    points: int,
    at: datetime,
    now: datetime,
) -> Admission:
    """Promised points become regular ones (the promised account must hold them)."""
    event = kinds.conversion(
        event_id=f"conversion:{programme}:{conversion_id}",
        at=at,
        origin=HQ_ORIGIN,
        programme=programme,
        member=member,
        points=points,
    )
    return _credit_then_book(tx, event, [MemberAccount(programme, member)], now=now)


def refund_return(
    tx: Tx,
    *,
    programme: str,
    refund_id: str,
    member: str,
    returned: int,
    restored: int,
    at: datetime,
    now: datetime,
) -> Admission:
    """A refund handled at HQ (e-commerce, customer service): points returned and restored."""
    event = kinds.refund_return(
        event_id=f"refund:{programme}:{refund_id}",
        at=at,
        origin=HQ_ORIGIN,
        account=MemberAccount(programme, member),
        returned=returned,
        restored=restored,
    )
    return _book(tx, event, now=now)


def merge(
    tx: Tx, *, programme: str, victim: str, survivor: str, at: datetime, now: datetime
) -> Admission:
    """Customer merge: the victim's balance in every open category moves to the survivor
    (``kinds.merge``: a negative one moves as a debt). Once per victim."""
    tx.lock_keys([openings.LOCK])
    view = TxLedgerView(tx)
    prior = view.event(f"merge:{programme}:{victim}")
    if prior is not None:
        return Replayed(prior)
    balances = {
        Category(str(c)): int(b)
        for c, b in tx.query(
            "SELECT category, balance FROM ledger_accounts "
            "WHERE programme = ? AND holder = ? AND opened_at IS NOT NULL",
            (programme, victim),
        )
    }
    if not balances:
        # The victim must have a ledger to merge: its final entry needs an open account.
        ensure_open(tx, MemberAccount(programme, victim), booked_at=now)
    event = kinds.merge(
        event_id=f"merge:{programme}:{victim}",
        at=at,
        origin=HQ_ORIGIN,
        programme=programme,
        victim=victim,
        survivor=survivor,
        victim_balances=balances,
    )
    survivors = [
        a for a in event.accounts() if isinstance(a, MemberAccount) and a.member == survivor
    ]
    return _credit_then_book(tx, event, survivors, now=now)


def _credit_then_book(
    tx: Tx, event: LedgerEvent, credited: Sequence[MemberAccount], *, now: datetime
) -> Admission:
    """Book ``event`` after opening the accounts it credits (unless it is a rerun)."""
    tx.lock_keys([openings.LOCK])
    replayed = _rerun(tx, event)
    if replayed is not None:
        return replayed
    for account in credited:
        ensure_open(tx, account, booked_at=now)
    return book(tx, event, policy=POLICY, booked_at=now)
