"""The deciding step that validate, reserve and commit share: scanned strings in, decisions out.

Theory of operation
-------------------
``scan`` verifies the signed tokens among the scanned strings before anything is looked up.
``decide`` then, per position: takes a token's own refusal as final; otherwise checks a genuine
token's binding and expiry and gathers its code's facts (from ``codes``, or from its claims when
only the token vouches for the code); parses a typed code and looks it up. A blocked till is
refused TILL_THROTTLED, except for codes its own sale already holds. Everything else is
``evaluate``d together; an acceptance then passes the storage capacity guard and, for a token,
names the store and key that vouched for it. ``record_failures`` feeds the refusals back to the
till throttle and writes a ``till.throttled`` event the one time a till becomes blocked.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import to_us
from edge_agent.cache.trusted_keys import TrustedKeys
from edge_agent.domain import messages, token_check, validation
from edge_agent.domain.code_format import CodeFormat, Malformed, parse
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
from edge_agent.domain.throttle import TillThrottle
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from edge_agent.redemption import token_scan
from edge_agent.redemption.token_scan import Scan

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decided:
    decisions: list[Decision]  # one per scanned string, in order
    facts: list[CodeFacts | None]  # per position; None: malformed, unknown or a refused token
    foreign: set[str]  # codes only a token vouches for (not in ``codes`` yet)


class Decider:
    """Decides the codes of a request on one store's cache. See the module docstring."""

    def __init__(
        self,
        *,
        cache: CodeCache,
        fmt: CodeFormat,
        throttle: TillThrottle,
        trusted_keys: TrustedKeys,
    ) -> None:
        self.cache = cache
        self.fmt = fmt
        self.throttle = throttle
        self.trusted_keys = trusted_keys

    def scan(self, request: ValidationRequest) -> list[Scan]:
        """Verify the tokens among the scanned strings, before anything is looked up."""
        return [token_scan.scan(raw, self.trusted_keys, request.now) for raw in request.codes]

    def decide(self, request: ValidationRequest, scans: list[Scan]) -> Decided:
        """Evaluate every code of the request (see the module docstring)."""
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
            facts[code] = _without_own_holds(found, request)
        blocked = self.throttle.blocked_until(request.till_id, request.now)
        held = set() if blocked is None else {c for c in facts if self._holds(c, request)}
        if blocked is not None and not held:
            return Decided(
                decisions=[_throttled(s.key, request.till_id, blocked) for s in scans],
                facts=[None] * len(scans),
                foreign=set(),
            )
        # Tokens are evaluated as the code they stand for; refused ones are not evaluated.
        positions = [p for p in range(len(scans)) if p not in pre]
        codes = tuple(_as_code(scans[p]) for p in positions)
        evaluated = validation.evaluate(
            # The usual request (plain codes, no tokens) is evaluated as it came: replace()
            # rebuilds the request through its __init__ for nothing, on every till request.
            request if codes == request.codes else dataclasses.replace(request, codes=codes),
            facts,
            fmt=self.fmt,
            store_cache_synced_at=self.cache.synced_at(),
        )
        by_position = dict(zip(positions, evaluated, strict=True))
        decisions = [
            by_position[p] if p in by_position else _pre(request, scans[p], pre[p])
            for p in range(len(scans))
        ]
        per_position = [facts.get(c) if c is not None else None for c in canon]
        for i, (decision, fact) in enumerate(zip(decisions, per_position, strict=True)):
            if blocked is not None and canon[i] not in held:
                decisions[i] = _throttled(decision.code, request.till_id, blocked)
            elif isinstance(decision, Accepted) and fact is not None:
                decisions[i] = _with_issuer(_capacity_guard(decision, fact), scans[i])
        return Decided(decisions=decisions, facts=per_position, foreign=foreign)

    def record_failures(self, request: ValidationRequest, decisions: list[Decision]) -> None:
        """Feed the refusals to the till throttle; flag a till that just became blocked."""
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
        # Inside reserve/commit the flag is a savepoint of their transaction; after a read-only
        # validate it is a transaction of its own (rolled back whole if the append fails).
        with self.cache.transaction():
            event_log.append(
                conn,
                box_id=self.cache.box_id,
                type=EventType.TILL_THROTTLED,
                occurred_at=request.now,
                code=None,
                attribution=attribution,
                details=details,
            )

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
        facts[claims.code] = _without_own_holds(found, request)
        return None

    def _holds(self, code: str, request: ValidationRequest) -> bool:
        """Whether this request's transaction holds ``code`` right now."""
        if request.transaction_id is None:
            return False
        row = self.cache.conn.execute(
            "SELECT 1 FROM reservations WHERE code = ? AND till_id = ? AND transaction_id = ? "
            "AND until_us > ?",
            (code, request.till_id, request.transaction_id, to_us(request.now)),
        ).fetchone()
        return row is not None


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


def _without_own_holds(facts: CodeFacts, request: ValidationRequest) -> CodeFacts:
    # Our own sale's hold is not someone else's: validation must not refuse us over it. Only a
    # hold of this till's sale is ours; another till's sale of the same number is someone else.
    if request.transaction_id is None:
        return facts
    sale = (request.till_id, request.transaction_id)
    holds = facts.usage.reservations
    others = tuple(h for h in holds if (h.till_id, h.transaction_id) != sale)
    if len(others) == len(holds):
        return facts
    return dataclasses.replace(facts, usage=dataclasses.replace(facts.usage, reservations=others))


def _capacity_guard(decision: Accepted, facts: CodeFacts) -> Decision:
    """Storage invariant, whatever the rules said: uses plus other tills' live holds never
    exceed the code's use limit, so two tills can never both take the last use."""
    limit = facts.promotion.limits.total_uses_per_code
    holds = facts.usage.reservations
    if limit is None or not holds or facts.usage.code_uses + len(holds) < limit:
        return decision
    return messages.reserved_elsewhere(decision.code, min(holds, key=lambda h: h.until))


def _as_code(scan: Scan) -> str:
    return scan.claims.code if scan.claims is not None else scan.raw


def _with_issuer(decision: Decision, scan: Scan) -> Decision:
    """An accepted token names the store and key that vouched for it (for the audit trail)."""
    claims = scan.claims
    if claims is None or not isinstance(decision, Accepted):
        return decision
    details = {**decision.details, "token_store_id": claims.store_id, "token_key_id": claims.key_id}
    return dataclasses.replace(decision, details=details)
