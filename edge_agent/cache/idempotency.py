"""Stored answers: what makes every write of the box safe to retry, and only that.

Theory of operation
-------------------
A sale is (till, transaction id): a POS numbers its own sales, so two tills may both have a
``T-1001`` and neither may touch the other's. Every state-changing answer is stored under
(till, transaction id, code, operation) in the change's own transaction, with the fingerprint of
the request it answered (``request_fingerprint``). A later request under the same key is:

* the same request (same fingerprint): a retry, answered from the store (``replayed``), changing
  nothing;
* another request (another basket, other codes, another member): refused with
  ``IdempotencyConflictError`` (409), the way payment APIs treat a reused idempotency key; the
  till must repeat the request exactly, or use a new transaction id for a new sale.

Every operation that changes state (reserve, commit, void, reverse, receipt coupon issuing)
reads and writes its stored answers through ``stored_answer`` (``stored_answers`` reads two
operations' at once) and ``store_answer`` here; the per-code walk that reserve and commit
share is ``redemption/per_code.py``.

What is stored is the answer's own JSON (``StoredForm``): the pydantic serialisation of the
answer's one definition, the JSON the POS API sends for it, less ``replayed``. So there is no
hand-written codec to keep in step: a field added to an answer is stored and replayed with it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from edge_agent.domain.basket import Basket
from edge_agent.domain.decision import ValidationRequest
from edge_agent.errors import IdempotencyConflictError

_STORED_SQL = (
    "SELECT fingerprint, response FROM requests "
    "WHERE till_id = ? AND transaction_id = ? AND code = ? AND operation = ?"
)
# A reserve reads its own stored answer and the commit's that may settle it in one statement.
_STORED_EITHER_SQL = (
    "SELECT operation, fingerprint, response FROM requests "
    "WHERE till_id = ? AND transaction_id = ? AND code = ? AND operation IN (?, ?)"
)
_STORE_SQL = "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)"
# One encoder for every fingerprint: json.dumps with options builds a new one per call.
_CANONICAL = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
_NOT_STORED = {"replayed"}  # a stored answer is by definition the first one

AnswerT = TypeVar("AnswerT")
Upgrade = Callable[[dict[str, Any]], dict[str, Any]]


class StoredForm(Generic[AnswerT]):
    """The stored form of one answer type, derived from its definition (a dataclass with a
    ``replayed`` field) by a pydantic ``TypeAdapter``.

    ``dump`` writes the answer's JSON without ``replayed``; ``replay`` reads it back as the same
    answer with ``replayed`` set: ``replay(dump(a)) == replace(a, replayed=True)``. ``upgrade``
    turns a document stored by an older version of the box into today's shape, so an answer
    stored before an upgrade is still replayed, identically, after it.
    """

    def __init__(self, kind: type[AnswerT], *, upgrade: Upgrade | None = None) -> None:
        self._adapter = TypeAdapter(kind)
        self._upgrade = upgrade

    def dump(self, answer: AnswerT) -> str:
        # Key order is the definition's, and dict values (a decision's details) keep theirs.
        return self._adapter.dump_json(answer, exclude=_NOT_STORED).decode()

    def replay(self, text: str) -> AnswerT:
        doc = json.loads(text)
        if self._upgrade is not None:
            doc = self._upgrade(doc)
        return self._adapter.validate_python({**doc, "replayed": True})


def fingerprint(doc: object) -> str:
    """A short stable digest of a JSON-able request document."""
    return hashlib.sha256(_CANONICAL.encode(doc).encode()).hexdigest()[:32]


def basket_doc(basket: Basket) -> list[list[object]]:
    """A basket's lines as fingerprinted."""
    return [[x.sku, x.category, x.quantity, x.unit_price, x.margin_band] for x in basket.lines]


def request_fingerprint(request: ValidationRequest) -> str:
    """What a retry of ``request`` must repeat: the codes, the member, the basket, the POS's
    own promotions and the audience. Who pressed the key (the cashier) and when do not count."""
    return fingerprint(
        {
            "codes": list(request.codes),
            "member_id": request.member_id,
            "lines": basket_doc(request.basket),
            "applied": [[a.name, a.stacking_class, a.discount] for a in request.applied],
            "audience": request.audience.value,
        }
    )


def stored_answer(
    conn: sqlite3.Connection,
    *,
    till_id: str,
    transaction_id: str,
    code: str,
    operation: str,
    fingerprint: str | None,
) -> str | None:
    """The stored answer under this key, or None. ``fingerprint`` None: any request under the
    key is a retry (the key says it all); otherwise one that differs is refused."""
    row = conn.execute(_STORED_SQL, (till_id, transaction_id, code, operation)).fetchone()
    if row is None:
        return None
    key = {"till_id": till_id, "transaction_id": transaction_id, "code": code}
    return checked_answer(row, fingerprint, {**key, "operation": operation})


def stored_answers(
    conn: sqlite3.Connection, key: dict[str, str], *, operation: str, fingerprint: str, later: str
) -> tuple[str | None, str | None]:
    """``stored_answer`` under ``key`` (till_id, transaction_id, code) for ``operation``
    (checked against ``fingerprint``) and for the ``later`` operation (any request under the
    key), read in one statement."""
    args = (key["till_id"], key["transaction_id"], key["code"], operation, later)
    rows = {op: (fp, response) for op, fp, response in conn.execute(_STORED_EITHER_SQL, args)}
    own, settled = rows.get(operation), rows.get(later)
    return (
        None if own is None else checked_answer(own, fingerprint, {**key, "operation": operation}),
        None if settled is None else str(settled[1]),
    )


def checked_answer(row: tuple[str, str], fingerprint: str | None, key: dict[str, str]) -> str:
    """A stored ``(fingerprint, response)`` row's answer; 409 if it answered another request
    (``fingerprint`` None: any request under the key is a retry)."""
    if fingerprint is not None and row[0] != fingerprint:
        raise IdempotencyConflictError(**key)
    return str(row[1])


def store_answer(
    conn: sqlite3.Connection,
    *,
    till_id: str,
    transaction_id: str,
    code: str,
    operation: str,
    fingerprint: str,
    response: str,
    created_us: int,
) -> None:
    """Store an answer inside the caller's transaction: a retry sees the change and its answer,
    or neither."""
    if not conn.in_transaction:
        raise RuntimeError("store_answer must run inside the caller's transaction")
    conn.execute(
        _STORE_SQL, (till_id, transaction_id, code, operation, fingerprint, response, created_us)
    )
