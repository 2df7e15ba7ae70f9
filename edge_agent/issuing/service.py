"""The issue service: decide, mint and record a receipt coupon at checkout, in one transaction.

Theory of operation
-------------------
``issue`` runs on the thread that owns the ``CodeCache``, in ONE ``BEGIN IMMEDIATE`` transaction:

1. A stored answer for the sale (till and transaction id) is returned as it was (``replayed``):
   a retried checkout never gets a second coupon. A retry must be the same checkout (member and
   basket); another one under the same sale is refused (``IdempotencyConflictError``, 409).
2. The facts are read: the member's profile (segment), their recent issue times from
   ``coupon_issues`` and, as HQ told it, from the fleet's other boxes (``issues_elsewhere``),
   and the cached promotions of the policy's campaigns; ``offer_policy.decide`` (pure) decides.
   Campaigns it passed over are logged (once per campaign and reason).
3. Grant: first the minting namespace: the one HQ's registry assigned to this store, recorded
   from the last snapshot (``CodeCache.minting_namespace``). None, one that does not fit the
   code format, or one other than the config's ``store.namespace`` (a cross-check when set):
   no coupon, reason NO_NAMESPACE, logged once per cause; a store never mints in another
   minter's space. Then a code is minted offline in that namespace (``code_format.new_code``),
   new to the ``codes`` table and to our own issues (retried on the astronomically rare collision),
   signed into the QR payload by the injected ``sign`` (``minter.py``: the same rules as every
   code this box mints), then written: the code row (bound to the
   member, channel "receipt", the variant, the expiry), the ``coupon.issued`` event with
   its outbox row, and the issue row holding the answer. Finally the injected ``on_issued`` runs
   on the same connection (the print job is enqueued there), so coupon and print job commit
   together; if it raises, nothing of the issue remains.
   Holdout: no code; a ``coupon.withheld`` event records the offer they would have had, and the
   issue row counts toward the member's caps like a real issue.
   Refusal: nothing is written (see ``issue_schema.py``).

Errors (refusals are values in ``IssueOutcome``; these are requests that cannot be served)::

    StoreError                          edge_agent.errors
    ├── RequestError
    │   └── MissingTransactionError     a checkout without a transaction id
    └── IssueError (minter.py)          issuing failed; nothing was written
        └── CodeSpaceExhaustedError     every minting attempt collided: the namespace is full
                                        (HQ must assign a fresh one)

Exceptions raised by ``sign`` or ``on_issued`` propagate unchanged after the rollback.
``ValueError`` marks a programming error: a naive ``now``, or a ``mint`` outside our namespace.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta

from edge_agent.cache import idempotency
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import from_us, to_us
from edge_agent.domain.code_format import CodeFormat, display
from edge_agent.domain.coupon_token import CouponClaims
from edge_agent.domain.offer_policy import (
    Grant,
    NoCouponReason,
    Offer,
    OfferDecision,
    OfferPolicy,
    Skip,
    Withhold,
    decide,
)
from edge_agent.errors import IdempotencyConflictError, MissingTransactionError
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from edge_agent.follow import issues_elsewhere
from edge_agent.issuing import issue_schema
from edge_agent.issuing.minter import Minter
from edge_agent.issuing.outcome import (
    STORED_FORM,
    Checkout,
    HoldoutInfo,
    IssuedCoupon,
    IssueOutcome,
)

log = logging.getLogger(__name__)

_PUT_CODE_SQL = "INSERT INTO codes VALUES (?, ?, ?, 'active', ?, ?, ?, ?, NULL)"
# Enough rows to report an honest count for any plausible cap.
_RECENT_ROWS = 100

Signer = Callable[[CouponClaims], str]
OnIssued = Callable[[sqlite3.Connection, IssuedCoupon], None]


def _no_hook(conn: sqlite3.Connection, coupon: IssuedCoupon) -> None:
    del conn, coupon


def _event_details(offer: Offer, holdout: HoldoutInfo) -> dict[str, object]:
    """The same keys for issued and withheld events, so HQ compares the groups directly."""
    return {
        "segment": offer.segment,
        "cohort": offer.cohort,
        "offer_text": offer.text,
        "discount": offer.discount,
        "issued_at": offer.issued_at.isoformat(),
        "expires_at": offer.expires_at.isoformat(),
        "remind_at": None if offer.remind_at is None else offer.remind_at.isoformat(),
        "holdout_share_bp": holdout.share_bp,
        "in_holdout": holdout.in_holdout,
    }


class IssueService:
    """Receipt coupons issued at checkout on one store's cache. See the module docstring."""

    def __init__(
        self,
        cache: CodeCache,
        *,
        fmt: CodeFormat,
        expected_namespace: str | None = None,
        policy: OfferPolicy,
        sign: Signer,
        on_issued: OnIssued | None = None,
        mint: Callable[[], str] | None = None,
    ) -> None:
        """``expected_namespace`` (config ``store.namespace``) must equal the namespace the
        snapshot assigned, when given. ``mint`` draws one candidate code (default:
        ``new_code(fmt, namespace)``); it exists so tests can force a collision. Whatever it
        returns must be a well-formed code of ``fmt`` in the assigned namespace."""
        self.minter = Minter(cache, fmt=fmt, expected_namespace=expected_namespace, draw=mint)
        self.cache = cache
        self.fmt = fmt
        self.expected_namespace = expected_namespace
        self.policy = policy
        self._sign = sign
        self._on_issued = on_issued or _no_hook
        self._logged_skips: set[Skip] = set()
        self._logged_namespace: str | None = None

    def namespace_problem(self) -> str | None:
        """Why this box may not mint now (None: it may, in ``cache.minting_namespace()``)."""
        return self.minter.problem()

    # -- public API ---------------------------------------------------------------------------

    def issue(self, checkout: Checkout) -> IssueOutcome:
        """The coupon for this checkout, or why none; idempotent per transaction id."""
        if not checkout.transaction_id:
            raise MissingTransactionError("issuing a receipt coupon needs a transaction_id")
        if checkout.now.tzinfo is None:
            raise ValueError("checkout.now must be an aware datetime")
        with self.cache.transaction() as conn:
            digest = idempotency.fingerprint(
                {"member_id": checkout.member_id, "lines": idempotency.basket_doc(checkout.basket)}
            )
            row = conn.execute(
                issue_schema.STORED_SQL, (checkout.till_id, checkout.transaction_id)
            ).fetchone()
            if row is not None and row[0] not in (digest, ""):  # "": stored before v7
                raise IdempotencyConflictError(
                    till_id=checkout.till_id,
                    transaction_id=checkout.transaction_id,
                    code="",
                    operation="receipt coupon",
                )
            if row is not None:
                return STORED_FORM.replay(str(row[1]))
            decision = self._decide(conn, checkout)
            self._log_skips(decision)
            if isinstance(decision, Grant):
                problem = self.namespace_problem()
                if problem is not None:  # nothing written: a refusal, like the others
                    return self._no_namespace(checkout, problem)
                return self._grant(conn, checkout, decision, digest)
            if isinstance(decision, Withhold):
                return self._withhold(conn, checkout, decision, digest)
            return IssueOutcome(
                transaction_id=checkout.transaction_id,
                coupon=None,
                reason=decision.reason,
                message=decision.message,
                details=decision.details,
                retry_after=decision.retry_after,
            )

    def recent_issues(self, member_id: str, now: datetime) -> tuple[datetime, ...]:
        """The member's issue times (held-out ones included) within the policy's lookback,
        newest first, at this box and, as HQ told it, at the fleet's others: the facts the
        caps count."""
        since = to_us(now - self.policy.lookback)
        rows = self.cache.conn.execute(issue_schema.RECENT_SQL, (member_id, since, _RECENT_ROWS))
        return tuple(from_us(us) for (us,) in rows)

    def prune(self, now: datetime) -> int:
        """Housekeeping: forget issues whose coupon expired over a day ago and that every cap
        window has left, and other boxes' issues that every cap window has left. Returns how
        many rows went."""
        horizon = to_us(now - self.policy.lookback)
        with self.cache.transaction() as conn:
            own = issue_schema.prune(
                conn,
                expired_before_s=int((now - timedelta(days=1)).timestamp()),
                issued_before_us=horizon,
            )
            return own + issues_elsewhere.prune(conn, issued_before_us=horizon)

    # -- steps --------------------------------------------------------------------------------

    def _no_namespace(self, checkout: Checkout, problem: str) -> IssueOutcome:
        if problem != self._logged_namespace:  # once per cause, not once per sale
            self._logged_namespace = problem
            log.warning("receipt coupons are off: %s", problem)
        return IssueOutcome(
            transaction_id=checkout.transaction_id,
            coupon=None,
            reason=NoCouponReason.NO_NAMESPACE,
            message=f"No receipt coupon: {problem}.",
            details={"namespace": self.cache.minting_namespace()},
            retry_after=None,
        )

    def _decide(self, conn: sqlite3.Connection, checkout: Checkout) -> OfferDecision:
        member_id = checkout.member_id
        campaigns = self.cache.promotions(self.policy.campaign_ids())
        return decide(
            self.policy,
            member_id=member_id,
            member=None if member_id is None else self.cache.member(member_id),
            recent_issues=() if member_id is None else self.recent_issues(member_id, checkout.now),
            basket=checkout.basket,
            campaigns=campaigns,
            store_id=self.cache.store_id,
            transaction_id=checkout.transaction_id,
            now=checkout.now,
        )

    def _log_skips(self, decision: OfferDecision) -> None:
        for skip in decision.skipped:
            # Once per campaign and reason: a missing campaign would otherwise log every sale.
            if skip not in self._logged_skips:
                self._logged_skips.add(skip)
                log.warning("receipt offer campaign %s skipped: %s", skip.campaign_id, skip.why)

    def _attribution(self, checkout: Checkout, offer: Offer) -> Attribution:
        return Attribution(
            store_id=self.cache.store_id,
            till_id=checkout.till_id,
            cashier_id=checkout.cashier_id,
            transaction_id=checkout.transaction_id,
            member_id=offer.member_id,
            campaign_id=offer.campaign_id,
            variant=offer.variant,
            channel=issue_schema.CHANNEL,
        )

    def _grant(
        self, conn: sqlite3.Connection, checkout: Checkout, decision: Grant, digest: str
    ) -> IssueOutcome:
        offer = decision.offer
        code = self.minter.mint(conn)
        claims = CouponClaims(
            code=code,
            campaign_id=offer.campaign_id,
            member_id=offer.member_id,
            store_id=self.cache.store_id,
            issued_at=offer.issued_at,
            expires_at=offer.expires_at,
        )
        qr_payload = self._sign(claims)
        expires_s = int(offer.expires_at.timestamp())
        conn.execute(
            _PUT_CODE_SQL,
            (code, offer.campaign_id, offer.member_id, issue_schema.CHANNEL, offer.variant,
             int(offer.issued_at.timestamp()), expires_s),
        )  # fmt: skip
        holdout = HoldoutInfo(cohort=offer.cohort, share_bp=decision.holdout_bp, in_holdout=False)
        event = event_log.append(
            conn,
            box_id=self.cache.box_id,
            type=EventType.COUPON_ISSUED,
            occurred_at=checkout.now,
            code=code,
            attribution=self._attribution(checkout, offer),
            details=_event_details(offer, holdout),
        )
        coupon = IssuedCoupon(
            code=code,
            display=display(code, self.fmt),
            qr_payload=qr_payload,
            campaign_id=offer.campaign_id,
            campaign_name=offer.campaign_name,
            segment=offer.segment,
            variant=offer.variant,
            channel=issue_schema.CHANNEL,
            member_id=offer.member_id,
            offer_text=offer.text,
            discount=offer.discount,
            stacking_terms=offer.stacking_terms,
            issued_at=offer.issued_at,
            expires_at=offer.expires_at,
            remind_at=offer.remind_at,
            store_id=self.cache.store_id,
            till_id=checkout.till_id,
            cashier_id=checkout.cashier_id,
            transaction_id=checkout.transaction_id,
            event_id=event.event_id,
        )
        outcome = IssueOutcome(
            transaction_id=checkout.transaction_id,
            coupon=coupon,
            reason=None,
            message=f"Coupon issued: {offer.text}",
            holdout=holdout,
        )
        conn.execute(
            issue_schema.INSERT_SQL,
            (checkout.till_id, checkout.transaction_id, 0, offer.member_id, offer.campaign_id,
             offer.variant, code, to_us(checkout.now), expires_s, STORED_FORM.dump(outcome),
             digest),
        )  # fmt: skip
        self._on_issued(conn, coupon)
        return outcome

    def _withhold(
        self, conn: sqlite3.Connection, checkout: Checkout, decision: Withhold, digest: str
    ) -> IssueOutcome:
        offer = decision.offer
        holdout = HoldoutInfo(cohort=offer.cohort, share_bp=decision.holdout_bp, in_holdout=True)
        event = event_log.append(
            conn,
            box_id=self.cache.box_id,
            type=EventType.COUPON_WITHHELD,
            occurred_at=checkout.now,
            code=None,
            attribution=self._attribution(checkout, offer),
            details=_event_details(offer, holdout),
        )
        pct = f"{decision.holdout_bp / 100:g}%"
        outcome = IssueOutcome(
            transaction_id=checkout.transaction_id,
            coupon=None,
            reason=NoCouponReason.HOLDOUT,
            message=(
                f"No coupon this time: this customer is in the control group of {offer.cohort} "
                f"({pct} of customers get no receipt coupon so the offer's effect can be "
                "measured)."
            ),
            details={"cohort": offer.cohort, "share_bp": decision.holdout_bp},
            holdout=HoldoutInfo(
                cohort=offer.cohort,
                share_bp=decision.holdout_bp,
                in_holdout=True,
                would_have=offer,
                event_id=event.event_id,
            ),
        )
        conn.execute(
            issue_schema.INSERT_SQL,
            (checkout.till_id, checkout.transaction_id, 1, offer.member_id, offer.campaign_id,
             offer.variant, None, to_us(checkout.now), int(offer.expires_at.timestamp()),
             STORED_FORM.dump(outcome), digest),
        )  # fmt: skip
        return outcome
