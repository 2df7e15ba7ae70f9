"""Stored answers: what makes every write of the POS API safe to retry, and only that.

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

``run_per_code`` is the per-code transaction that ``reserve`` and ``commit`` share. One
``BEGIN IMMEDIATE`` transaction per request; the write lock is taken before anything is read.
The stored answer for every scanned code is looked up first: if every code has one, the request
is a retry and gets those answers. Otherwise the request is decided afresh and walked code by
code. A code with a stored answer gets it again; an accepted code is applied (the operation's
state change) and its answer stored; anything else, and any repeat of a code earlier in the same
request, is answered with its decision and changes nothing. Refusals are not stored (they
changed nothing), so a till may retry after fixing the basket. Last, the refusals feed the till
throttle.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from typing import Protocol, TypeVar

from edge_agent.domain.basket import Basket
from edge_agent.domain.code_record import CodeFacts
from edge_agent.domain.decision import Accepted, Decision, ValidationRequest
from edge_agent.store.cache import CodeCache
from edge_agent.store.deciding import Decider
from edge_agent.store.errors import IdempotencyConflictError
from edge_agent.store.event_log import to_us

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
    return _checked(row, fingerprint, {**key, "operation": operation})


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
        None if own is None else _checked(own, fingerprint, {**key, "operation": operation}),
        None if settled is None else str(settled[1]),
    )


def _checked(row: tuple[str, str], fingerprint: str | None, key: dict[str, str]) -> str:
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


class _Outcome(Protocol):
    @property
    def decision(self) -> Decision: ...


OutcomeT = TypeVar("OutcomeT", bound=_Outcome)


def run_per_code(
    cache: CodeCache,
    request: ValidationRequest,
    *,
    transaction_id: str,
    operation: str,
    decider: Decider,
    apply: Callable[[Accepted, CodeFacts, bool], OutcomeT],
    unchanged: Callable[[Decision], OutcomeT],
    to_json: Callable[[OutcomeT], str],
    replay: Callable[[str], OutcomeT],
    settled_by: tuple[str, Callable[[str], OutcomeT]] | None = None,
) -> tuple[OutcomeT, ...]:
    """One outcome per scanned code of ``request``, in order (see the module docstring).

    ``apply`` writes an accepted code's state change in the open transaction (its third
    argument: only a token vouches for the code, which is not in ``codes`` yet) and returns its
    outcome; ``unchanged`` is the outcome of a code that changes nothing; ``to_json`` is the
    stored form of an outcome and ``replay`` the replayed outcome read back from it.
    ``settled_by`` names a later operation whose stored answer settles the code for this sale,
    and how to answer from it: a reserve arriving after the same sale's commit (a late network
    retry, with the basket as it was at scan) must not hold the code again, so it is answered
    from the commit and changes nothing.
    """
    scans = decider.scan(request)
    till = request.till_id
    digest = request_fingerprint(request)
    with cache.transaction() as conn:
        prior: list[OutcomeT | None] = []
        for scan in scans:
            key = {"till_id": till, "transaction_id": transaction_id, "code": scan.key}
            if settled_by is None:
                text = stored_answer(conn, **key, operation=operation, fingerprint=digest)
                prior.append(None if text is None else replay(text))
                continue
            later_op, answer_from = settled_by
            own, later = stored_answers(
                conn, key, operation=operation, fingerprint=digest, later=later_op
            )
            if own is not None:
                prior.append(replay(own))
            else:
                prior.append(None if later is None else answer_from(later))
        answered = [p for p in prior if p is not None]
        if len(answered) == len(scans):  # a retry: every code already has its answer
            return tuple(answered)
        decided = decider.decide(request, scans)
        result: list[OutcomeT] = []
        seen: set[str] = set()
        for scan, decision, fact, old in zip(
            scans, decided.decisions, decided.facts, prior, strict=True
        ):
            first = scan.key not in seen  # a code scanned twice is applied once
            seen.add(scan.key)
            if old is not None and first:
                result.append(old)
            elif isinstance(decision, Accepted) and fact is not None and first:
                code = fact.record.code
                outcome = apply(decision, fact, code in decided.foreign)
                store_answer(
                    conn,
                    till_id=till,
                    transaction_id=transaction_id,
                    code=code,
                    operation=operation,
                    fingerprint=digest,
                    response=to_json(outcome),
                    created_us=to_us(request.now),
                )
                result.append(outcome)
            else:
                result.append(unchanged(decision))
        decider.record_failures(request, [o.decision for o in result])
    return tuple(result)
