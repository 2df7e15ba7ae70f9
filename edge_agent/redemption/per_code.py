"""The per-code transaction that ``reserve`` and ``commit`` share.

Theory of operation
-------------------
One ``BEGIN IMMEDIATE`` transaction per request; the write lock is taken before anything is read.
The stored answer (``cache/idempotency.py``) for every scanned code is looked up first: if every
code has one, the request is a retry and gets those answers. Otherwise the request is decided
afresh and walked code by code. A code with a stored answer gets it again; an accepted code is
applied (the operation's state change) and its answer stored; anything else, and any repeat of a
code earlier in the same request, is answered with its decision and changes nothing. Refusals
are not stored (they changed nothing), so a till may retry after fixing the basket. Last, the
refusals feed the till throttle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.idempotency import (
    request_fingerprint,
    store_answer,
    stored_answer,
    stored_answers,
)
from edge_agent.cache.timestamps import to_us
from edge_agent.domain.code_record import CodeFacts
from edge_agent.domain.decision import Accepted, Decision, ValidationRequest
from edge_agent.redemption.decider import Decider


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
