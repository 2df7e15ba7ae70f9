"""Typed failures of the points ledger.

An event that cannot exist, or cannot be applied at all, is an exception: it is a caller's bug
or a corrupt message, never a business answer. A member short of points is *not* here: that is
the refusal value ``ledger.Overdrawn``, because a till asks it on purpose.

    LedgerError                     base of every failure of the points ledger
    ├── MalformedEventError         the event cannot be built (also a ValueError)
    │   ├── UnbalancedEventError    its postings do not sum to zero
    │   ├── InvalidPointsError      points not an int, negative, or zero where a kind needs some
    │   └── ForeignAccountError     an account of another programme than the event's
    ├── EventConflictError          an event id seen before, with other content
    └── AccountStateError           the event does not fit the account's life
        ├── AccountNotOpenError     a member account posted to before its opening entry
        ├── AccountAlreadyOpenError a second opening entry for one account
        └── BeforeOpeningError      an entry dated before the account's opening entry
"""

from __future__ import annotations

from datetime import datetime


class LedgerError(Exception):
    """Base of every failure raised by the points ledger."""


class MalformedEventError(LedgerError, ValueError):
    """The event cannot be built: nothing of it may be stored or applied."""


class UnbalancedEventError(MalformedEventError):
    def __init__(self, *, event_id: str, total: int) -> None:
        super().__init__(f"event {event_id!r}: postings sum to {total}, not 0")
        self.event_id = event_id
        self.total = total


class InvalidPointsError(MalformedEventError):
    def __init__(self, *, what: str, points: object) -> None:
        super().__init__(f"{what}: {points!r} is not a valid number of points")
        self.what = what
        self.points = points


class ForeignAccountError(MalformedEventError):
    def __init__(self, *, event_id: str, programme: str, account_programme: str) -> None:
        super().__init__(
            f"event {event_id!r} of programme {programme!r} posts to an account of "
            f"programme {account_programme!r}"
        )
        self.event_id = event_id
        self.programme = programme
        self.account_programme = account_programme


class EventConflictError(LedgerError):
    """The id was applied before with other content: exactly-once forbids both and either."""

    def __init__(self, *, event_id: str) -> None:
        super().__init__(f"event {event_id!r} was applied before with different content")
        self.event_id = event_id


class AccountStateError(LedgerError):
    """The event does not fit where the account is in its life."""

    def __init__(self, message: str, *, event_id: str, account: object) -> None:
        super().__init__(message)
        self.event_id = event_id
        self.account = account


class AccountNotOpenError(AccountStateError):
    def __init__(self, *, event_id: str, account: object) -> None:
        super().__init__(
            f"event {event_id!r} posts to {account} before its opening entry",
            event_id=event_id,
            account=account,
        )


class AccountAlreadyOpenError(AccountStateError):
    def __init__(self, *, event_id: str, account: object) -> None:
        super().__init__(
            f"event {event_id!r} opens {account}, which is already open",
            event_id=event_id,
            account=account,
        )


class BeforeOpeningError(AccountStateError):
    def __init__(self, *, event_id: str, account: object, opened_at: datetime) -> None:
        super().__init__(
            f"event {event_id!r} is dated before {account} was opened ({opened_at.isoformat()})",
            event_id=event_id,
            account=account,
        )
        self.opened_at = opened_at
