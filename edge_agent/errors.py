"""Typed failures of the box's cache and services (redemption, issuing, snapshots).

Refusals of a code (expired, limit reached...) are ``Decision`` values, never exceptions. These
exceptions are for requests that cannot be carried out at all; the HTTP layer maps each to a 4xx
(or a 5xx for ``CacheError`` itself):

    StoreError                       base of every failure of the box's cache and services
    ├── CacheError                   the cache file cannot be used
    │   ├── SchemaTooNewError        written by a newer agent; refuse rather than corrupt it
    │   ├── StoreMismatchError       the file belongs to another store
    │   └── TransactionLostError     SQLite (or a bug) ended a transaction early: none of it
    │                                happened, and nothing more may be written in its name
    ├── SnapshotError                a snapshot was refused whole; the old cache is untouched
    └── RequestError                 a well-formed request that cannot apply (4xx)
        ├── MissingTransactionError  reserve/commit without a transaction id (422)
        ├── UnknownCodeError         the code is malformed or not in the cache (404)
        ├── RedemptionNotFoundError  reversing a redemption that never happened (404)
        ├── ReversalTooLargeError    returning more than is left of the discount (409)
        ├── IdempotencyConflictError a sale's key reused for a different request (409)
        └── LinkConflictError        linking a code bound or linked to someone else (409)
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every failure raised by the box's cache and services."""


class CacheError(StoreError):
    """The cache file cannot be used."""


class SchemaTooNewError(CacheError):
    def __init__(self, *, found: int, supported: int) -> None:
        super().__init__(
            f"cache schema version {found} is newer than this agent supports ({supported}); "
            "upgrade the agent instead of opening this file"
        )
        self.found = found
        self.supported = supported


class StoreMismatchError(CacheError):
    def __init__(self, *, file_store: str, wanted: str) -> None:
        super().__init__(f"cache file belongs to store {file_store!r}, not {wanted!r}")
        self.file_store = file_store
        self.wanted = wanted


class BoxMismatchError(CacheError):
    def __init__(self, *, file_box: str, wanted: str) -> None:
        super().__init__(
            f"cache file holds the events of box {file_box!r}, not {wanted!r}: set "
            f"store.box_id to {file_box!r}, or give box {wanted!r} a cache file of its own"
        )
        self.file_box = file_box
        self.wanted = wanted


class TransactionLostError(CacheError):
    """The transaction a block ran in ended under it (``cache/transaction.py``)."""


class SnapshotError(StoreError):
    """A malformed or foreign snapshot; nothing of it was applied."""


class RequestError(StoreError):
    """A request that cannot be carried out as asked."""


class MissingTransactionError(RequestError):
    pass


class UnknownCodeError(RequestError):
    def __init__(self, code: str) -> None:
        super().__init__(f"no such code: {code!r}")
        self.code = code


class RedemptionNotFoundError(RequestError):
    def __init__(self, *, code: str, transaction_id: str, till_id: str) -> None:
        super().__init__(
            f"code {code!r} was not redeemed in transaction {transaction_id!r} of till {till_id!r}"
        )
        self.code = code
        self.transaction_id = transaction_id
        self.till_id = till_id


class ReversalTooLargeError(RequestError):
    def __init__(self, *, requested: int, remaining: int) -> None:
        super().__init__(
            f"cannot reverse {requested} minor units: only {remaining} remain on this redemption"
        )
        self.requested = requested
        self.remaining = remaining


class LinkConflictError(RequestError):
    def __init__(self, *, code: str, member_id: str, holder: str) -> None:
        super().__init__(f"code {code!r} already belongs to member {holder!r}, not {member_id!r}")
        self.code = code
        self.member_id = member_id
        self.holder = holder


class IdempotencyConflictError(RequestError):
    """The (till, transaction, code, operation) key already answered a different request."""

    def __init__(self, *, till_id: str, transaction_id: str, code: str, operation: str) -> None:
        what = "return" if operation == "reverse" else "transaction"
        for_code = f" for code {code!r}" if code else ""
        super().__init__(
            f"{what} {transaction_id!r} of till {till_id!r} already has a {operation} "
            f"answer{for_code}, given to a different request; a retry must repeat the request "
            f"exactly, and a new sale or return needs a new id"
        )
        self.till_id = till_id
        self.transaction_id = transaction_id
        self.code = code
        self.operation = operation
