"""The redemption service: validate, reserve, commit, void, reverse, link; durable and idempotent.

Theory of operation
-------------------
Every method is synchronous and runs on the one thread that owns the ``CodeCache``.

* ``validate`` is read-only: look the codes up, ``evaluate`` them, report.
* ``reserve`` (at scan), ``commit`` (at payment), ``void`` (cancel) and ``reverse`` (a return)
  each run in ONE ``BEGIN IMMEDIATE`` transaction that reads the facts, decides, writes the
  state change, its ledger event and outbox row, and the idempotency record. Taking the write
  lock before reading is what stops two tills (or two processes) from both taking a code.
* Idempotency: the answer to (transaction id, code, operation) that changed state is stored; a
  retry gets that stored answer and changes nothing. Refusals are not stored (they changed
  nothing), so a till may retry after fixing the basket.
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
import logging
import sqlite3
from datetime import datetime, timedelta

from edge_agent.domain import messages, token_check, validation
from edge_agent.domain.code_format import CodeFormat, Malformed, normalise, parse
from edge_agent.domain.code_record import CodeFacts
from edge_agent.domain.decision import (
    Accepted,
    Audience,
    Decision,
    Reason,
    Refused,
    ValidationRequest,
)
from edge_agent.domain.disclosure import disclose
from edge_agent.store import code_status, holds, ledger, outcomes, reversals, token_scan
from edge_agent.store.cache import CodeCache
from edge_agent.store.errors import MissingTransactionError, UnknownCodeError
from edge_agent.store.ledger import Attribution, EventType, to_us
from edge_agent.store.outcomes import (
    CodeStatusView,
    CommitOutcome,
    LinkOutcome,
    Redemption,
    ReserveOutcome,
    ReverseOutcome,
    VoidOutcome,
)
from edge_agent.store.throttle import ThrottleConfig, TillThrottle
from edge_agent.store.token_scan import Scan
from edge_agent.store.trusted_keys import TrustedKeys

log = logging.getLogger(__name__)

_STORED_SQL = (
    "SELECT response FROM requests WHERE transaction_id = ? AND code = ? AND operation = ?"
)
_STORE_SQL = "INSERT INTO requests VALUES (?, ?, ?, ?, ?)"


def _throttled(code: str, till_id: str, until: datetime) -> Refused:
    return Refused(
        code=code,
        reason=Reason.TILL_THROTTLED,
        cashier_message=(
            f"Till {till_id} had too many failed code checks; checks resume at "
            f"{messages.when(until)}. A supervisor has been alerted."
        ),
        customer_message=messages.CUSTOMER[Reason.TILL_THROTTLED],
        details={"till_id": till_id, "until": messages.iso(until)},
        retry_after=until,
    )


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

    # -- deciding -----------------------------------------------------------------------------

    def _scan(self, request: ValidationRequest) -> list[Scan]:
        """Verify the tokens among the scanned strings, before anything is looked up."""
        return [token_scan.scan(raw, self.trusted_keys, request.now) for raw in request.codes]

    def _decide(
        self, request: ValidationRequest, scans: list[Scan]
    ) -> tuple[list[Decision], list[CodeFacts | None], set[str]]:
        """Evaluate every code of the request; facts per position (None: malformed/unknown/
        refused token); the codes that only a token vouches for (not in ``codes`` yet)."""
        canon: list[str | None] = []
        facts: dict[str, CodeFacts] = {}
        foreign: set[str] = set()
        pre: dict[int, Refused] = {}  # positions decided by their token alone
        for pos, s in enumerate(scans):
            if s.refusal is None and s.claims is not None:
                refusal = self._token_facts(request, s, facts, foreign)
            else:
                refusal = s.refusal
            if refusal is not None:
                pre[pos] = refusal
                canon.append(None)
                continue
            if s.claims is not None:
                canon.append(s.claims.code)
                continue
            raw = s.raw
            parsed = parse(raw, self.fmt)
            # Not our format, but maybe a brand-supplied or generic literal code held verbatim.
            code = parsed.normalised if isinstance(parsed, Malformed) else parsed
            if code in facts:
                canon.append(code)
                continue
            found = self.cache.lookup(code, request.member_id, request.now) if code else None
            if found is None:
                canon.append(None if isinstance(parsed, Malformed) else code)
                continue
            canon.append(code)
            facts[code] = self._without_own_holds(found, request.transaction_id)
        blocked = self.throttle.blocked_until(request.till_id, request.now)
        held = set() if blocked is None else {c for c in facts if self._holds(c, request)}
        if blocked is not None and not held:
            return (
                [_throttled(s.key, request.till_id, blocked) for s in scans],
                [None] * len(scans),
                set(),
            )
        # Tokens are evaluated as the code they stand for; refused ones are not evaluated.
        positions = [p for p in range(len(scans)) if p not in pre]
        evaluated = validation.evaluate(
            dataclasses.replace(request, codes=tuple(_as_code(scans[p]) for p in positions)),
            facts,
            fmt=self.fmt,
            store_cache_synced_at=self.cache.synced_at(),
        )
        by_position = dict(zip(positions, evaluated, strict=True))
        decisions = [
            by_position[p] if p in by_position else self._pre(request, scans[p], pre[p])
            for p in range(len(scans))
        ]
        per_position = [facts.get(c) if c is not None else None for c in canon]
        for i, (decision, fact) in enumerate(zip(decisions, per_position, strict=True)):
            if blocked is not None and canon[i] not in held:
                decisions[i] = _throttled(decision.code, request.till_id, blocked)
            elif isinstance(decision, Accepted) and fact is not None:
                decisions[i] = _with_issuer(self._capacity_guard(decision, fact), scans[i])
        return decisions, per_position, foreign

    def _token_facts(
        self,
        request: ValidationRequest,
        s: Scan,
        facts: dict[str, CodeFacts],
        foreign: set[str],
    ) -> Refused | None:
        """Check a genuine token's binding and expiry and gather its code's facts."""
        claims = s.claims
        assert claims is not None
        refusal = token_check.check_binding(claims, request.member_id) or (
            token_check.check_expiry(claims, request.now)
        )
        if refusal is not None or claims.code in facts:
            return refusal
        found = self.cache.lookup(claims.code, request.member_id, request.now)
        if found is None:
            got = token_scan.foreign_facts(self.cache, claims, request.member_id, request.now)
            if isinstance(got, Refused):
                return got
            found = got
            foreign.add(claims.code)
        facts[claims.code] = self._without_own_holds(found, request.transaction_id)
        return None

    @staticmethod
    def _pre(request: ValidationRequest, s: Scan, refusal: Refused) -> Decision:
        """A token's own refusal, in the customer-safe view on a customer channel."""
        if request.audience is not Audience.CUSTOMER:
            return refusal
        claims = s.claims
        proven = (
            claims is not None
            and request.member_id is not None
            and (not claims.bound or claims.binds(request.member_id))
        )
        return refusal if proven else disclose(refusal, owned_by_other=True)

    def _holds(self, code: str, request: ValidationRequest) -> bool:
        """Whether this request's transaction holds ``code`` right now."""
        if request.transaction_id is None:
            return False
        row = self.cache.conn.execute(
            "SELECT 1 FROM reservations WHERE code = ? AND transaction_id = ? AND until_us > ?",
            (code, request.transaction_id, to_us(request.now)),
        ).fetchone()
        return row is not None

    @staticmethod
    def _without_own_holds(facts: CodeFacts, transaction_id: str | None) -> CodeFacts:
        # Our own hold is not someone else's: validation must not refuse us over it.
        own = [h for h in facts.usage.reservations if h.transaction_id == transaction_id]
        if not own:
            return facts
        others = tuple(h for h in facts.usage.reservations if h.transaction_id != transaction_id)
        return dataclasses.replace(
            facts, usage=dataclasses.replace(facts.usage, reservations=others)
        )

    @staticmethod
    def _capacity_guard(decision: Accepted, facts: CodeFacts) -> Decision:
        """Storage invariant, whatever the rules said: uses plus other tills' live holds never
        exceed the code's use limit, so two tills can never both take the last use."""
        limit = facts.promotion.limits.total_uses_per_code
        holds = facts.usage.reservations
        if limit is None or not holds or facts.usage.code_uses + len(holds) < limit:
            return decision
        return messages.reserved_elsewhere(decision.code, min(holds, key=lambda h: h.until))

    def _record_failures(self, request: ValidationRequest, decisions: list[Decision]) -> None:
        reasons = [d.reason for d in decisions if isinstance(d, Refused)]
        flag = self.throttle.record_failures(request.till_id, reasons, request.now)
        if flag is None:
            return
        log.warning(
            "till %s throttled: %d failed validations since %s, blocked until %s",
            flag.till_id,
            flag.failures,
            flag.since.isoformat(),
            flag.blocked_until.isoformat(),
        )
        conn = self.cache.conn
        details = {
            "failures": flag.failures,
            "since": messages.iso(flag.since),
            "blocked_until": messages.iso(flag.blocked_until),
        }
        attribution = Attribution(
            store_id=request.store_id, till_id=request.till_id, cashier_id=request.cashier_id
        )
        own_txn = not conn.in_transaction
        if own_txn:
            conn.execute("BEGIN IMMEDIATE")
        ledger.append(
            conn,
            box_id=self.cache.box_id,
            type=EventType.TILL_THROTTLED,
            occurred_at=request.now,
            code=None,
            attribution=attribution,
            details=details,
        )
        if own_txn:
            conn.execute("COMMIT")

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
        decisions, _, _ = self._decide(request, self._scan(request))
        self._record_failures(request, decisions)
        return tuple(decisions)

    def reserve(self, request: ValidationRequest) -> tuple[ReserveOutcome, ...]:
        """Validate and hold each accepted code for this transaction for ``hold``."""
        txn = _require_txn(request)
        conn = self.cache.conn
        until = request.now + self.hold
        scans = self._scan(request)
        with self.cache.transaction():
            stored = self._stored(request, "reserve", scans)
            if all(s is not None for s in stored):
                return tuple(outcomes.reserve_from_json(s) for s in stored if s is not None)
            decisions, facts, _ = self._decide(request, scans)
            result: list[ReserveOutcome] = []
            seen: set[str] = set()
            for scan, decision, fact, old in zip(scans, decisions, facts, stored, strict=True):
                key = scan.key
                first = key not in seen
                seen.add(key)
                if old is not None and first:
                    result.append(outcomes.reserve_from_json(old))
                elif isinstance(decision, Accepted) and fact is not None and first:
                    code = fact.record.code
                    conn.execute(
                        "DELETE FROM reservations WHERE code = ? AND until_us <= ?",
                        (code, to_us(request.now)),
                    )
                    conn.execute(
                        "INSERT OR REPLACE INTO reservations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (code, txn, request.store_id, request.till_id, request.cashier_id,
                         request.member_id, to_us(request.now), to_us(until)),
                    )  # fmt: skip
                    ledger.append(
                        conn,
                        box_id=self.cache.box_id,
                        type=EventType.RESERVED,
                        occurred_at=request.now,
                        code=code,
                        attribution=self._attribution(request, fact),
                        amount=decision.discount,
                        details={"until": messages.iso(until)},
                    )
                    outcome = ReserveOutcome(decision=decision, hold_until=until)
                    conn.execute(
                        _STORE_SQL,
                        (
                            txn,
                            code,
                            "reserve",
                            outcomes.reserve_to_json(outcome),
                            to_us(request.now),
                        ),
                    )
                    result.append(outcome)
                else:
                    result.append(ReserveOutcome(decision=decision))
            self._record_failures(request, [o.decision for o in result])
        return tuple(result)

    def commit(self, request: ValidationRequest) -> tuple[CommitOutcome, ...]:
        """Redeem each accepted code for this transaction (validating again: the basket at
        payment is what counts). A code not held is validated and committed in one go."""
        txn = _require_txn(request)
        conn = self.cache.conn
        scans = self._scan(request)
        with self.cache.transaction():
            stored = self._stored(request, "commit", scans)
            if all(s is not None for s in stored):
                return tuple(outcomes.commit_from_json(s) for s in stored if s is not None)
            decisions, facts, foreign = self._decide(request, scans)
            result: list[CommitOutcome] = []
            seen: set[str] = set()
            for scan, decision, fact, old in zip(scans, decisions, facts, stored, strict=True):
                key = scan.key
                first = key not in seen
                seen.add(key)
                if old is not None and first:
                    result.append(outcomes.commit_from_json(old))
                elif isinstance(decision, Accepted) and fact is not None and first:
                    if fact.record.code in foreign:
                        token_scan.remember(conn, fact.record)  # same transaction as the use
                    result.append(self._redeem(conn, request, txn, decision, fact))
                else:
                    result.append(CommitOutcome(decision=decision))
            self._record_failures(request, [o.decision for o in result])
        return tuple(result)

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
        conn.execute("DELETE FROM reservations WHERE code = ? AND transaction_id = ?", (code, txn))
        event = ledger.append(
            conn,
            box_id=self.cache.box_id,
            type=EventType.REDEEMED,
            occurred_at=request.now,
            code=code,
            attribution=attribution,
            amount=decision.discount,
        )
        outcome = CommitOutcome(
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
        conn.execute(_STORE_SQL, (txn, code, "commit", outcomes.commit_to_json(outcome), now_us))
        return outcome

    def _stored(
        self, request: ValidationRequest, operation: str, scans: list[Scan]
    ) -> list[str | None]:
        """The stored answer per position, for codes this transaction already changed."""
        out: list[str | None] = []
        for scan in scans:
            row = self.cache.conn.execute(
                _STORED_SQL, (request.transaction_id, scan.key, operation)
            ).fetchone()
            out.append(None if row is None else str(row[0]))
        return out

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
        """Release this transaction's hold on ``code``, or on every code it holds (None).
        Idempotent: a repeated void answers as the first did."""
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
    ) -> ReverseOutcome:
        """Give back ``amount`` (None: all that remains) of the discount redeemed on sale
        ``transaction_id``, for the return ``return_id``. Idempotent per return."""
        return reversals.reverse(
            self.cache,
            code=_canonical(code, self.fmt),
            transaction_id=transaction_id,
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


def _as_code(scan: Scan) -> str:
    return scan.claims.code if scan.claims is not None else scan.raw


def _with_issuer(decision: Decision, scan: Scan) -> Decision:
    """An accepted token names the store and key that vouched for it (for the audit trail)."""
    claims = scan.claims
    if claims is None or not isinstance(decision, Accepted):
        return decision
    details = {**decision.details, "token_store_id": claims.store_id, "token_key_id": claims.key_id}
    return dataclasses.replace(decision, details=details)


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
