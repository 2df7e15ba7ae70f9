"""One constructor per kind of ledger event (DOMAIN.md section 5, "Ledger behaviour").

Each returns a balanced ``LedgerEvent``; feature code never writes postings by hand. Who is
credited and who debited, with ``L`` the programme's liability account and ``B`` its breakage:

    ===============  ================================  ================================
    kind             credit                            debit
    ===============  ================================  ================================
    opening          member (migrated balance, or 0)   L     (signs swap if negative)
    earn             member                            L
    burn             L                                 member
    burn_reversal    member                            L
    transfer         recipient                         sender
    referral_award   referrer                          L
    referral_return  L                                 referrer
    conversion       member, regular                   member, promised  (net zero)
    import           member (or L if negative)         L (or member)
    bulk_award       every member                      L, the total once
    refund_return    member: redemption restored;      member: points returned;
                     L: points returned                L: redemption restored
    expiry           B                                 member (``expiry.expiry``)
    merge            survivor (per category)           victim   (signs swap if negative)
    ===============  ================================  ================================

A refund return keeps its two member postings rather than netting them, so the ledger shows
both facts; ``LedgerEvent.member_net`` is the net the till shows. Every amount an earn, burn or
award moves must be positive: an event of nothing is a caller's bug (``InvalidPointsError``),
except the opening entry of a new member (zero) and a merge of an empty account, which record
a fact with 0-point postings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from edge_agent.domain.points.accounts import Category, MemberAccount, liability
from edge_agent.domain.points.errors import MalformedEventError
from edge_agent.domain.points.event import (
    EventKind,
    LedgerEvent,
    Origin,
    Posting,
    Side,
    check_points,
)

CREDIT, DEBIT = Side.CREDIT, Side.DEBIT


def _event(
    kind: EventKind,
    *,
    event_id: str,
    at: datetime,
    origin: Origin,
    programme: str,
    postings: Iterable[Posting],
    campaign: str | None = None,
) -> LedgerEvent:
    return LedgerEvent(
        event_id=event_id,
        kind=kind,
        at=at,
        programme=programme,
        origin=origin,
        postings=tuple(postings),
        campaign=campaign,
    )


def _against_liability(
    kind: EventKind,
    *,
    event_id: str,
    at: datetime,
    origin: Origin,
    account: MemberAccount,
    points: int,
    member_side: Side,
    campaign: str | None = None,
) -> LedgerEvent:
    """A member posting of ``points`` on ``member_side`` and its mirror on the liability."""
    check_points(f"{kind} {event_id!r}", points, positive=True)
    return _event(
        kind,
        event_id=event_id,
        at=at,
        origin=origin,
        programme=account.programme,
        campaign=campaign,
        postings=(
            Posting(account, member_side, points),
            Posting(liability(account.programme), member_side.flipped(), points),
        ),
    )


def _signed_against_liability(
    kind: EventKind,
    *,
    event_id: str,
    at: datetime,
    origin: Origin,
    account: MemberAccount,
    points: int,
) -> LedgerEvent:
    """A member credit of ``points`` (a debit when negative) against the liability."""
    if type(points) is not int:
        check_points(f"{kind} {event_id!r}", points)
    side = CREDIT if points >= 0 else DEBIT
    return _event(
        kind,
        event_id=event_id,
        at=at,
        origin=origin,
        programme=account.programme,
        postings=(
            Posting(account, side, abs(points)),
            Posting(liability(account.programme), side.flipped(), abs(points)),
        ),
    )


def opening(
    *, event_id: str, at: datetime, origin: Origin, account: MemberAccount, points: int = 0
) -> LedgerEvent:
    """The first entry of ``account``: 0 at registration, or the balance migrated from the
    programme's old system (negative if the member owed points), against the liability."""
    return _signed_against_liability(
        EventKind.OPENING, event_id=event_id, at=at, origin=origin, account=account, points=points
    )


def imported(
    *, event_id: str, at: datetime, origin: Origin, account: MemberAccount, points: int
) -> LedgerEvent:
    """Points brought in from elsewhere (credit) or written off by an import (debit: negative)."""
    if points == 0:
        check_points(f"import {event_id!r}", points, positive=True)
    return _signed_against_liability(
        EventKind.IMPORT, event_id=event_id, at=at, origin=origin, account=account, points=points
    )


def earn(
    *,
    event_id: str,
    at: datetime,
    origin: Origin,
    account: MemberAccount,
    points: int,
    campaign: str | None = None,
) -> LedgerEvent:
    return _against_liability(
        EventKind.EARN,
        event_id=event_id,
        at=at,
        origin=origin,
        account=account,
        points=points,
        member_side=CREDIT,
        campaign=campaign,
    )


def burn(
    *, event_id: str, at: datetime, origin: Origin, account: MemberAccount, points: int
) -> LedgerEvent:
    """A redemption: points spent as tender."""
    return _against_liability(
        EventKind.BURN,
        event_id=event_id,
        at=at,
        origin=origin,
        account=account,
        points=points,
        member_side=DEBIT,
    )


def burn_reversal(
    *, event_id: str, at: datetime, origin: Origin, account: MemberAccount, points: int
) -> LedgerEvent:
    """A redemption undone (a void, or the tender given back)."""
    return _against_liability(
        EventKind.BURN_REVERSAL,
        event_id=event_id,
        at=at,
        origin=origin,
        account=account,
        points=points,
        member_side=CREDIT,
    )


def referral_award(
    *,
    event_id: str,
    at: datetime,
    origin: Origin,
    account: MemberAccount,
    points: int,
    campaign: str | None = None,
) -> LedgerEvent:
    return _against_liability(
        EventKind.REFERRAL_AWARD,
        event_id=event_id,
        at=at,
        origin=origin,
        account=account,
        points=points,
        member_side=CREDIT,
        campaign=campaign,
    )


def referral_return(
    *, event_id: str, at: datetime, origin: Origin, account: MemberAccount, points: int
) -> LedgerEvent:
    """A referral award taken back (the referred member left, or it was abuse)."""
    return _against_liability(
        EventKind.REFERRAL_RETURN,
        event_id=event_id,
        at=at,
        origin=origin,
        account=account,
        points=points,
        member_side=DEBIT,
    )


def transfer(
    *,
    event_id: str,
    at: datetime,
    origin: Origin,
    sender: MemberAccount,
    recipient: MemberAccount,
    points: int,
) -> LedgerEvent:
    """Points given by one member to another, in one programme and category each."""
    check_points(f"transfer {event_id!r}", points, positive=True)
    if sender == recipient:
        raise MalformedEventError(f"transfer {event_id!r}: sender and recipient are one account")
    return _event(
        EventKind.TRANSFER,
        event_id=event_id,
        at=at,
        origin=origin,
        programme=sender.programme,
        postings=(Posting(sender, DEBIT, points), Posting(recipient, CREDIT, points)),
    )


def conversion(
    *, event_id: str, at: datetime, origin: Origin, programme: str, member: str, points: int
) -> LedgerEvent:
    """Promised points become regular (spendable) points: one debit, one credit, net zero."""
    check_points(f"conversion {event_id!r}", points, positive=True)
    return _event(
        EventKind.CONVERSION,
        event_id=event_id,
        at=at,
        origin=origin,
        programme=programme,
        postings=(
            Posting(MemberAccount(programme, member, Category.PROMISED), DEBIT, points),
            Posting(MemberAccount(programme, member, Category.REGULAR), CREDIT, points),
        ),
    )


def bulk_award(
    *,
    event_id: str,
    at: datetime,
    origin: Origin,
    accounts: Sequence[MemberAccount],
    points: int,
    campaign: str | None = None,
) -> LedgerEvent:
    """A campaign's award of ``points`` to each of ``accounts`` (distinct, one programme)."""
    check_points(f"bulk award {event_id!r}", points, positive=True)
    if not accounts or len(set(accounts)) != len(accounts):
        raise MalformedEventError(f"bulk award {event_id!r}: no accounts, or one twice")
    programme = accounts[0].programme
    return _event(
        EventKind.BULK_AWARD,
        event_id=event_id,
        at=at,
        origin=origin,
        programme=programme,
        campaign=campaign,
        postings=(
            *(Posting(a, CREDIT, points) for a in accounts),
            Posting(liability(programme), DEBIT, points * len(accounts)),
        ),
    )


def refund_return(
    *,
    event_id: str,
    at: datetime,
    origin: Origin,
    account: MemberAccount,
    returned: int,
    restored: int,
) -> LedgerEvent:
    """A refund: the points the sale earned go back (``returned``, a debit) and the points it
    burned come back to the member (``restored``, a credit), either or both at once."""
    check_points(f"refund return {event_id!r} returned", returned)
    check_points(f"refund return {event_id!r} restored", restored)
    check_points(f"refund return {event_id!r}", returned + restored, positive=True)
    owed = liability(account.programme)
    postings: list[Posting] = []
    if returned:
        postings += [Posting(account, DEBIT, returned), Posting(owed, CREDIT, returned)]
    if restored:
        postings += [Posting(account, CREDIT, restored), Posting(owed, DEBIT, restored)]
    return _event(
        EventKind.REFUND_RETURN,
        event_id=event_id,
        at=at,
        origin=origin,
        programme=account.programme,
        postings=postings,
    )


def merge(
    *,
    event_id: str,
    at: datetime,
    origin: Origin,
    programme: str,
    victim: str,
    survivor: str,
    victim_balances: Mapping[Category, int],
) -> LedgerEvent:
    """Customer merge: the victim's last entry in each category moves its balance to the
    survivor's account of that category (a negative balance moves as a debt: the signs swap).
    The two ledgers stay separate. ``victim_balances`` is ``Ledger.member_balances`` of the
    victim; an all-empty victim still gets its (0-point) final entry, so the merge is recorded.
    """
    if victim == survivor:
        raise MalformedEventError(f"merge {event_id!r}: victim and survivor are one member")
    for balance in victim_balances.values():
        if type(balance) is not int:
            check_points(f"merge {event_id!r} victim balance", balance)
    moved = {c: b for c, b in sorted(victim_balances.items()) if b != 0} or {Category.REGULAR: 0}
    postings: list[Posting] = []
    for category, balance in moved.items():
        side = DEBIT if balance >= 0 else CREDIT
        postings += [
            Posting(MemberAccount(programme, victim, category), side, abs(balance)),
            Posting(MemberAccount(programme, survivor, category), side.flipped(), abs(balance)),
        ]
    return _event(
        EventKind.MERGE,
        event_id=event_id,
        at=at,
        origin=origin,
        programme=programme,
        postings=postings,
    )
