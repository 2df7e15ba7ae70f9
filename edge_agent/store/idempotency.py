"""The idempotent per-code transaction that ``reserve`` and ``commit`` share.

Theory of operation
-------------------
One ``BEGIN IMMEDIATE`` transaction per request; the write lock is taken before anything is read.
The stored answer to (transaction id, code, operation) is looked up first for every scanned
code: if every code has one, the request is a retry and gets those answers, changing nothing.
Otherwise the request is decided afresh and walked code by code. A code with a stored answer gets
it again; an accepted code is applied (the operation's state change) and its answer stored in
the same transaction; anything else, and any repeat of a code earlier in the same request, is
answered with its decision and changes nothing. Refusals are not stored (they changed nothing),
so a till may retry after fixing the basket. Last, the refusals feed the till throttle.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Protocol, TypeVar

from edge_agent.domain.code_record import CodeFacts
from edge_agent.domain.decision import Accepted, Decision, ValidationRequest
from edge_agent.store.cache import CodeCache
from edge_agent.store.deciding import Decider
from edge_agent.store.ledger import to_us

_STORED_SQL = (
    "SELECT response FROM requests WHERE transaction_id = ? AND code = ? AND operation = ?"
)
_STORE_SQL = "INSERT INTO requests VALUES (?, ?, ?, ?, ?)"


class _Outcome(Protocol):
    @property
    def decision(self) -> Decision: ...


OutcomeT = TypeVar("OutcomeT", bound=_Outcome)


def run_per_code(
    cache: CodeCache,
    request: ValidationRequest,
    *,
    operation: str,
    decider: Decider,
    apply: Callable[[Accepted, CodeFacts, bool], OutcomeT],
    unchanged: Callable[[Decision], OutcomeT],
    to_json: Callable[[OutcomeT], str],
    from_json: Callable[[str], OutcomeT],
    settled_by: tuple[str, Callable[[str], OutcomeT]] | None = None,
) -> tuple[OutcomeT, ...]:
    """One outcome per scanned code of ``request``, in order (see the module docstring).

    ``apply`` writes an accepted code's state change in the open transaction (its third
    argument: only a token vouches for the code, which is not in ``codes`` yet) and returns its
    outcome; ``unchanged`` is the outcome of a code that changes nothing; ``to_json`` and
    ``from_json`` are the stored form of an outcome. ``settled_by`` names a later operation
    whose stored answer settles the code for this transaction, and how to answer from it: a
    reserve arriving after the same sale's commit (a late network retry) must not hold the
    code again, so it is answered from the commit and changes nothing.
    """
    scans = decider.scan(request)
    with cache.transaction() as conn:
        stored: list[str | None] = []
        settled: list[OutcomeT | None] = []
        for scan in scans:
            stored.append(_stored_answer(conn, request.transaction_id, scan.key, operation))
            later = None
            if settled_by is not None and stored[-1] is None:
                later_op, answer_from = settled_by
                found = _stored_answer(conn, request.transaction_id, scan.key, later_op)
                later = None if found is None else answer_from(found)
            settled.append(later)
        answered = [
            from_json(s) if s is not None else t
            for s, t in zip(stored, settled, strict=True)
            if s is not None or t is not None
        ]
        answered_all: list[OutcomeT] = [a for a in answered if a is not None]
        if len(answered_all) == len(scans):  # a retry: every code already has its answer
            return tuple(answered_all)
        if all(s is not None for s in stored):
            return tuple(from_json(s) for s in stored if s is not None)
        decided = decider.decide(request, scans)
        result: list[OutcomeT] = []
        seen: set[str] = set()
        for scan, decision, fact, old, done in zip(
            scans, decided.decisions, decided.facts, stored, settled, strict=True
        ):
            key = scan.key
            first = key not in seen  # a code scanned twice is applied once
            seen.add(key)
            if old is not None and first:
                result.append(from_json(old))
            elif done is not None and first:
                result.append(done)
            elif isinstance(decision, Accepted) and fact is not None and first:
                code = fact.record.code
                outcome = apply(decision, fact, code in decided.foreign)
                # Stored in the change's own transaction: a retry sees both or neither.
                conn.execute(
                    _STORE_SQL,
                    (request.transaction_id, code, operation, to_json(outcome), to_us(request.now)),
                )
                result.append(outcome)
            else:
                result.append(unchanged(decision))
        decider.record_failures(request, [o.decision for o in result])
    return tuple(result)


def _stored_answer(
    conn: sqlite3.Connection, transaction_id: str | None, code: str, operation: str
) -> str | None:
    row = conn.execute(_STORED_SQL, (transaction_id, code, operation)).fetchone()
    return None if row is None else str(row[0])
