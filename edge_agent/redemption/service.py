"""The redemption service: validate, reserve, commit, void, reverse, link; durable and idempotent.

Theory of operation
-------------------
Every method is synchronous and runs on the one thread that owns the ``CodeCache``.

* ``validate`` is read-only: look the codes up, ``evaluate`` them, report.
* ``reserve`` (at scan), ``commit`` (at payment), ``void`` (cancel) and ``reverse`` (a return)
  each run in ONE ``BEGIN IMMEDIATE`` transaction that reads the facts, decides, writes the
  state change, its event and outbox row, and the idempotency record. Taking the write
  lock before reading is what stops two tills (or two processes) from both taking a code.
  ``decider`` holds the deciding step (tokens, lookups, throttle, evaluation) and
  ``per_code`` the per-code transaction that ``reserve`` and ``commit`` share. When the
  agent's DB thread groups concurrent tills' writes (``runtime/db_thread.py``), that
  transaction is a SAVEPOINT of the group's one transaction: still all-or-nothing, durable at
  the group's COMMIT, and answered only after it.
* A sale is (till, transaction id): one till can never replay, commit or void another till's
  sale, even when both number a sale ``T-1001``. A return names the sale it gives money back on
  (its till and transaction id) and is keyed by the returning till's own return id.
* Idempotency (``cache/idempotency.py``): the answer to (till, transaction id, code, operation) that
  changed state is stored with the request's fingerprint; an identical retry gets that stored
  answer (``replayed``) and changes nothing, a different request under the same key is refused
  (409). Refusals are not stored (they changed nothing), so a till may retry after fixing the
  basket.
* A hold counts until its ``until``; after that it simply stops counting (lookups ignore it and
  the next reserve of the code deletes it). ``commit`` without a live hold validates and
  commits in one go. ``commit`` removes the hold it consumes.
* A full reversal gives the use back (code, member, campaign and store counts) and the money; a
  partial one gives back money only, until the partial returns add up to the whole discount.
* Guess-like refusals feed the per-till throttle; a blocked till is refused TILL_THROTTLED (except
  for codes its own transaction already holds) and a ``till.throttled`` event flags it to HQ.
* A scanned signed token (``token_scan``) is verified before any lookup: forged, altered,
  unreadable or untrusted tokens are refused as such (and count as guesses); a genuine one stands
  for its code, plus its member binding and expiry. A genuine coupon of another store whose code
  this cache lacks is validated from its claims, and ``commit`` writes its code into ``codes``
  in the redemption's transaction, so it is single use here too.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import datetime, timedelta

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import to_us
from edge_agent.cache.trusted_keys import TrustedKeys
from edge_agent.domain import messages, token_check
from edge_agent.domain.code_format import CodeFormat, Malformed, normalise, parse
from edge_agent.domain.code_record import CodeFacts
from edge_agent.domain.decision import Accepted, Decision, ValidationRequest
from edge_agent.domain.throttle import ThrottleConfig, TillThrottle
from edge_agent.errors import MissingTransactionError, UnknownCodeError
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from edge_agent.redemption import code_status, holds, outcomes, reversals, token_scan
from edge_agent.redemption.decider import Decider
from edge_agent.redemption.outcomes import (
    CodeStatusView,
    CommitOutcome,
    LinkOutcome,
    Redemption,
    ReserveOutcome,
    ReverseOutcome,
    VoidOutcome,
)
from edge_agent.redemption.per_code import run_per_code


class RedemptionService:
    """Validation and durable redemption on one store's cache. See the module docstring."""

    def __init__(
        self,
        cache: CodeCache,
        *,
        fmt: CodeFormat,
        hold: timedelta = timedelta(minutes=5),
        throttle: ThrottleConfig | None = None,
        trusted_keys: TrustedKeys | None = None,
    ) -> None:
        if hold <= timedelta(0):
            raise ValueError("hold must be positive")
        self.cache = cache
        self.fmt = fmt
        self.hold = hold
        # Whatever the config counts, a forged or untrusted token is always a guess.
        throttle = throttle or ThrottleConfig()
        self.throttle = TillThrottle(
            config=dataclasses.replace(
                throttle, counted=throttle.counted | token_check.TOKEN_GUESS_REASONS
            )
        )
        self.trusted_keys = trusted_keys or TrustedKeys(cache.conn)
        self.decider = Decider(
            cache=cache, fmt=fmt, throttle=self.throttle, trusted_keys=self.trusted_keys
        )

    def _attribution(self, request: ValidationRequest, facts: CodeFacts) -> Attribution:
        r = facts.record
        return Attribution(
            store_id=request.store_id,
            till_id=request.till_id,
            cashier_id=request.cashier_id,
            transaction_id=request.transaction_id,
            member_id=request.member_id or r.linked_member_id or r.member_id,
            campaign_id=r.campaign_id,
            variant=r.variant,
            channel=r.channel,
        )

    # -- public API ---------------------------------------------------------------------------

    def validate(self, request: ValidationRequest) -> tuple[Decision, ...]:
        """Read-only: one decision per code of ``request.codes``, in order."""
        decided = self.decider.decide(request, self.decider.scan(request))
        self.decider.record_failures(request, decided.decisions)
        return tuple(decided.decisions)

    def reserve(self, request: ValidationRequest) -> tuple[ReserveOutcome, ...]:
        """Validate and hold each accepted code for this transaction for ``hold``."""
        txn = _require_txn(request)

        def hold(decision: Accepted, fact: CodeFacts, _foreign: bool) -> ReserveOutcome:
            return self._hold(self.cache.conn, request, txn, decision, fact)

        return run_per_code(
            self.cache,
            request,
            transaction_id=txn,
            operation="reserve",
            decider=self.decider,
            apply=hold,
            unchanged=lambda decision: ReserveOutcome(decision=decision),
            to_json=outcomes.RESERVED.dump,
            replay=outcomes.RESERVED.replay,
            settled_by=(
                "commit",
                lambda text: ReserveOutcome(
                    decision=outcomes.COMMITTED.replay(text).decision, replayed=True
                ),
            ),
        )

    def commit(self, request: ValidationRequest) -> tuple[CommitOutcome, ...]:
        """Redeem each accepted code for this transaction (validating again: the basket at
        payment is what counts). A code not held is validated and committed in one go."""
        txn = _require_txn(request)

        def redeem(decision: Accepted, fact: CodeFacts, foreign: bool) -> CommitOutcome:
            conn = self.cache.conn
            if foreign:
                token_scan.remember(conn, fact.record)  # same transaction as the use
            return self._redeem(conn, request, txn, decision, fact)

        return run_per_code(
            self.cache,
            request,
            transaction_id=txn,
            operation="commit",
            decider=self.decider,
            apply=redeem,
            unchanged=lambda decision: CommitOutcome(decision=decision),
            to_json=outcomes.COMMITTED.dump,
            replay=outcomes.COMMITTED.replay,
        )

    def _hold(
        self,
        conn: sqlite3.Connection,
        request: ValidationRequest,
        txn: str,
        decision: Accepted,
        fact: CodeFacts,
    ) -> ReserveOutcome:
        code = fact.record.code
        until = request.now + self.hold
        conn.execute(
            "DELETE FROM reservations WHERE code = ? AND until_us <= ?",
            (code, to_us(request.now)),
        )
        conn.execute(
            "INSERT OR REPLACE INTO reservations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (code, request.till_id, txn, request.store_id, request.cashier_id,
             request.member_id, to_us(request.now), to_us(until)),
        )  # fmt: skip
        event_log.append(
            conn,
            box_id=self.cache.box_id,
            type=EventType.RESERVED,
            occurred_at=request.now,
            code=code,
            attribution=self._attribution(request, fact),
            amount=decision.discount,
            details={"until": messages.iso(until)},
        )
        return ReserveOutcome(decision=decision, hold_until=until)

    def _redeem(
        self,
        conn: sqlite3.Connection,
        request: ValidationRequest,
        txn: str,
        decision: Accepted,
        fact: CodeFacts,
    ) -> CommitOutcome:
        code = fact.record.code
        attribution = self._attribution(request, fact)
        now_us = to_us(request.now)
        redemption_id = conn.execute(
            "INSERT INTO redemptions (code, transaction_id, campaign_id, member_id, store_id, "
            "till_id, cashier_id, channel, variant, amount, redeemed_us) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (code, txn, fact.record.campaign_id, attribution.member_id, request.store_id,
             request.till_id, request.cashier_id, fact.record.channel, fact.record.variant,
             decision.discount, now_us),
        ).fetchone()[0]  # fmt: skip
        conn.execute(
            "INSERT INTO code_usage (code, uses, last_redemption_id) VALUES (?, 1, ?) "
            "ON CONFLICT (code) DO UPDATE SET uses = uses + 1, "
            "last_redemption_id = excluded.last_redemption_id",
            (code, redemption_id),
        )
        if attribution.member_id is not None:
            conn.execute(
                "INSERT INTO member_code_usage VALUES (?, ?, 1) "
                "ON CONFLICT (code, member_id) DO UPDATE SET uses = uses + 1",
                (code, attribution.member_id),
            )
        conn.execute(
            "INSERT INTO campaign_usage VALUES (?, 1, ?, 1) ON CONFLICT (campaign_id) DO UPDATE "
            "SET uses = uses + 1, money = money + excluded.money, store_uses = store_uses + 1",
            (fact.record.campaign_id, decision.discount),
        )
        conn.execute(
            "DELETE FROM reservations WHERE code = ? AND till_id = ? AND transaction_id = ?",
            (code, request.till_id, txn),
        )
        event = event_log.append(
            conn,
            box_id=self.cache.box_id,
            type=EventType.REDEEMED,
            occurred_at=request.now,
            code=code,
            attribution=attribution,
            amount=decision.discount,
            # HQ sees every store's redemptions: with the code's limit it can tell when stores
            # that were offline together used a code more often than it allows (a conflict).
            details=_use_limit(fact.promotion.limits.total_uses_per_code),
        )
        return CommitOutcome(
            decision=decision,
            redemption=Redemption(
                code=code,
                transaction_id=txn,
                campaign_id=fact.record.campaign_id,
                member_id=attribution.member_id,
                amount=decision.discount,
                redeemed_at=request.now,
                store_id=request.store_id,
                till_id=request.till_id,
                cashier_id=request.cashier_id,
                event_id=event.event_id,
                seq=event.seq,
            ),
        )

    def void(
        self,
        *,
        transaction_id: str,
        code: str | None,
        store_id: str,
        till_id: str,
        cashier_id: str,
        now: datetime,
    ) -> tuple[VoidOutcome, ...]:
        """Release this till's sale ``transaction_id``'s hold on ``code``, or on every code it
        holds (None). Idempotent: a repeated void answers as the first did."""
        return holds.void(
            self.cache,
            transaction_id=transaction_id,
            codes=None if code is None else [_canonical(code, self.fmt)],
            attribution=Attribution(store_id=store_id, till_id=till_id, cashier_id=cashier_id),
            now=now,
        )

    def expire_holds(self, now: datetime) -> int:
        """Housekeeping: delete holds past their time (they already stopped counting)."""
        return holds.expire_holds(self.cache, now)

    def reverse(
        self,
        *,
        code: str,
        transaction_id: str,
        return_id: str,
        amount: int | None,
        store_id: str,
        till_id: str,
        cashier_id: str,
        now: datetime,
        sale_till_id: str | None = None,
    ) -> ReverseOutcome:
        """Give back ``amount`` (None: all that remains) of the discount redeemed on sale
        ``transaction_id`` of till ``sale_till_id`` (None: the returning till itself), for the
        returning till ``till_id``'s return ``return_id``. Idempotent per return."""
        return reversals.reverse(
            self.cache,
            code=_canonical(code, self.fmt),
            transaction_id=transaction_id,
            sale_till_id=till_id if sale_till_id is None else sale_till_id,
            return_id=return_id,
            amount=amount,
            attribution=Attribution(store_id=store_id, till_id=till_id, cashier_id=cashier_id),
            now=now,
        )

    def link(
        self,
        *,
        code: str,
        member_id: str,
        store_id: str,
        till_id: str,
        cashier_id: str,
        now: datetime,
        mode: str = "next_checkout",
    ) -> LinkOutcome:
        """Link a physical code to a member, so it applies at their next checkout."""
        return code_status.link(
            self.cache,
            code=_canonical(code, self.fmt),
            member_id=member_id,
            mode=mode,
            attribution=Attribution(store_id=store_id, till_id=till_id, cashier_id=cashier_id),
            now=now,
        )

    def status(self, code: str, now: datetime) -> CodeStatusView:
        """The code as the cache knows it: record, uses, live holds, redemptions, history."""
        return code_status.status(self.cache, _canonical(code, self.fmt), now)


def _require_txn(request: ValidationRequest) -> str:
    if not request.transaction_id:
        raise MissingTransactionError("reserve and commit need a transaction_id")
    return request.transaction_id


def _canonical(raw: str, fmt: CodeFormat) -> str:
    """Our canonical form, or the normalised literal (brand/generic codes are stored so)."""
    parsed = parse(raw, fmt)
    if isinstance(parsed, Malformed):
        if not parsed.normalised:
            raise UnknownCodeError(normalise(raw))
        return parsed.normalised
    return parsed


def _use_limit(limit: int | None) -> dict[str, int]:
    """A redemption's details: the code's total use limit, none when it has no limit."""
    return {} if limit is None else {"use_limit": limit}
