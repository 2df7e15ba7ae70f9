"""The points service: quote, checkout, void and return at the till; durable and idempotent.

Theory of operation
-------------------
Every method is synchronous and runs on the one thread that owns the ``CodeCache``, like the
redemption service. The rules are pure (``edge_agent/domain/points_rules``); this module reads
the facts, asks the rules, and books what they decide.

**What the box knows of a member.** HQ's balance and marks (``balances.py``), plus this box's
own postings after its mark: ``known``; ``available`` adds the configured offline allowance
(``offline_bound``). A burn never takes more than ``available``. Members are the cache's
``members`` table (HQ's): a member not in it is refused ``unknown_member``, and their tier is
what the earn rules multiply by.

**quote** reads only: the balance, the earn on the basket, and the burn plan: what may be
burned on it and, when less than asked, why (``BurnPlan.shortfall``).

**checkout** runs in ONE ``BEGIN IMMEDIATE`` transaction: the stored answer of the sale (till,
transaction id) is returned as it was (``replayed``) when the request is the same, and another
request under the same sale is a 409 (``IdempotencyConflictError``); otherwise the burn is
planned first (points do not earn points: the earn is computed on what the points left to
pay), a burn that cannot be granted whole is refused with its reason and numbers (the POS's
tender must be exact, so the box never silently grants less), and then the earn event and the
burn event (each only when it moves points) are booked with the sale's row and its answer.

**void** cancels what is left of a sale's points (what returns have not already reversed) as
one ``refund_return`` event, idempotent by the sale. **return_lines** reverses exactly the
returned units' share of the sale's earn and burn (``points_rules.returns``), as one
``refund_return`` event keyed by the returning till's return id, and adds the units to those
already returned; a return of more than was sold, of a line the sale did not have, or on a
voided sale is a refusal with its numbers. Refusals book nothing and are not stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from pydantic import TypeAdapter

from edge_agent.cache import idempotency
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import to_us
from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import MemberAccount
from edge_agent.domain.points.event import Channel, LedgerEvent, Origin
from edge_agent.domain.points_rules.burn import BurnPlan, plan_burn
from edge_agent.domain.points_rules.earn import EarnResult, compute_earn
from edge_agent.domain.points_rules.offline_bound import Availability, availability
from edge_agent.domain.points_rules.policy import PointsPolicy
from edge_agent.domain.points_rules.returns import (
    ReturnedLine,
    ReturnRefused,
    Reversal,
    reverse,
)
from edge_agent.errors import MissingTransactionError
from edge_agent.events.event_log import Attribution
from edge_agent.points import points_schema, posting
from edge_agent.points.errors import SaleNotFoundError, UnknownMemberError
from edge_agent.points.outcomes import (
    CHECKOUT_FORM,
    RETURN_FORM,
    SALE_VOIDED,
    UNKNOWN_MEMBER,
    VOID_FORM,
    BalanceView,
    BurnOffer,
    PointsCheckoutOutcome,
    PointsLine,
    PointsQuote,
    PointsReturnOutcome,
    PointsVoidOutcome,
    Return,
    Sale,
    burn_lines,
    earn_lines,
)

_EARN = TypeAdapter(EarnResult)
_BURN = TypeAdapter(BurnPlan)


def _sale_fingerprint(sale: Sale) -> str:
    """What a retry must repeat: the member, the basket (costs too) and the points asked."""
    return idempotency.fingerprint(
        {
            "member_id": sale.member_id,
            "lines": [
                [x.sku, x.category, x.quantity, x.unit_price, x.margin_band, x.unit_cost]
                for x in sale.basket.lines
            ],
            "burn": sale.burn_points or 0,
        }
    )


def _aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")


class PointsService:
    """Points at this store's tills over one cache. See the module docstring."""

    def __init__(self, cache: CodeCache, *, policy: PointsPolicy, programme: str) -> None:
        self.cache = cache
        self.policy = policy
        self.programme = programme

    # -- reads --------------------------------------------------------------------------------

    def balance(self, member_id: str) -> BalanceView:
        """The member's points as this box knows them; UnknownMemberError if not a member."""
        if self.cache.member(member_id) is None:
            raise UnknownMemberError(member_id)
        return self._balance(self.cache.conn, member_id)

    def quote(self, sale: Sale) -> PointsQuote:
        """Balance, earn and what may be burned on the basket (``burn_points`` None: as much
        as possible), without changing anything."""
        _aware(sale.now)
        member = self.cache.member(sale.member_id)
        if member is None:
            return PointsQuote(
                ok=False,
                reason=UNKNOWN_MEMBER,
                message=_unknown(sale.member_id),
                member_id=sale.member_id,
                balance=None,
            )
        available, mark = self._known(self.cache.conn, sale.member_id)
        plan = plan_burn(self.policy.burn, sale.basket, available, sale.burn_points)
        paid = plan.discount_by_line() if sale.burn_points else None
        earn = compute_earn(self.policy.earn, sale.basket, member, sale.now, paid)
        return PointsQuote(
            ok=True,
            reason=None,
            message=_quote_message(earn.points, plan),
            member_id=sale.member_id,
            balance=BalanceView.of(sale.member_id, self.programme, mark, available),
            earn_points=earn.points,
            earn_lines=earn_lines(earn),
            rules_version=earn.rules_version,
            variant=earn.variant,
            burn=BurnOffer.of(plan),
        )

    # -- writes -------------------------------------------------------------------------------

    def checkout(self, sale: Sale) -> PointsCheckoutOutcome:
        """Earn, and burn ``burn_points``, on a sale, in one transaction; idempotent per sale."""
        if not sale.transaction_id:
            raise MissingTransactionError("a points checkout needs a transaction_id")
        _aware(sale.now)
        digest = _sale_fingerprint(sale)
        with self.cache.transaction() as conn:
            row = conn.execute(
                points_schema.SALE_SQL, (sale.till_id, sale.transaction_id)
            ).fetchone()
            if row is not None:
                key = {"till_id": sale.till_id, "transaction_id": sale.transaction_id}
                answer = idempotency.checked_answer(
                    (row[4], row[5]), digest, {**key, "code": "", "operation": "points checkout"}
                )
                return CHECKOUT_FORM.replay(answer)
            member = self.cache.member(sale.member_id)
            if member is None:
                return self._refused(sale, UNKNOWN_MEMBER, _unknown(sale.member_id), {})
            available, mark = self._known(conn, sale.member_id)
            plan = None
            if sale.burn_points:
                plan = plan_burn(self.policy.burn, sale.basket, available, sale.burn_points)
                if plan.shortfall is not None:
                    return self._short(sale, plan, mark)
            paid = None if plan is None else plan.discount_by_line()
            earn = compute_earn(self.policy.earn, sale.basket, member, sale.now, paid)
            return self._book_sale(conn, sale, earn, plan, digest)

    def void(
        self, *, till_id: str, transaction_id: str, cashier_id: str, now: datetime
    ) -> PointsVoidOutcome:
        """Cancel what is left of a sale's points (its returns already reversed the rest)."""
        _aware(now)
        with self.cache.transaction() as conn:
            sale = self._sale(conn, till_id, transaction_id)
            if sale.void_response is not None:
                return VOID_FORM.replay(sale.void_response)
            returned = self._returned(conn, till_id, transaction_id)
            rest = tuple(
                ReturnedLine(index=x.index, quantity=x.quantity - returned.get(x.index, 0))
                for x in sale.earn.lines
                if x.quantity - returned.get(x.index, 0) > 0
            )
            reversal = reverse(
                earn=sale.earn, burn=sale.burn, returning=rest, already_returned=returned
            )
            assert isinstance(reversal, Reversal), reversal  # the rest of each line, exactly
            event_id = None
            if reversal.points_taken_back or reversal.points_given_back:
                event = kinds.refund_return(
                    event_id=posting.event_key(
                        self.cache.store_id, till_id, transaction_id, "void"
                    ),
                    at=now,
                    origin=Origin(Channel.IN_STORE, self.cache.store_id, till_id),
                    account=self._account(sale.member_id),
                    returned=reversal.points_taken_back,
                    restored=reversal.points_given_back,
                )
                self._book_reversal(
                    conn,
                    event,
                    sale=sale,
                    reversal=reversal,
                    till_id=till_id,
                    cashier_id=cashier_id,
                    transaction_id=transaction_id,
                )
                event_id = event.event_id
            outcome = PointsVoidOutcome(
                transaction_id=transaction_id,
                till_id=till_id,
                taken_back=reversal.points_taken_back,
                given_back=reversal.points_given_back,
                event_id=event_id,
                voided_at=now,
            )
            conn.execute(points_schema.VOID_SQL, (VOID_FORM.dump(outcome), till_id, transaction_id))
            return outcome

    def return_lines(self, r: Return) -> PointsReturnOutcome:
        """A return of some units of a sale: its exact share of the sale's points reversed."""
        _aware(r.now)
        digest = idempotency.fingerprint(
            {
                "sale_till_id": r.sale_till_id,
                "transaction_id": r.transaction_id,
                "lines": sorted([x.index, x.quantity] for x in r.lines),
            }
        )
        with self.cache.transaction() as conn:
            row = conn.execute(points_schema.RETURN_SQL, (r.till_id, r.return_id)).fetchone()
            if row is not None:
                key = {"till_id": r.till_id, "transaction_id": r.return_id}
                answer = idempotency.checked_answer(
                    (row[0], row[1]), digest, {**key, "code": "", "operation": "points return"}
                )
                return RETURN_FORM.replay(answer)
            sale = self._sale(conn, r.sale_till_id, r.transaction_id)
            if sale.void_response is not None:
                return _return_refused(
                    r, SALE_VOIDED, f"sale {r.transaction_id} was voided: nothing to return", {}
                )
            returned = self._returned(conn, r.sale_till_id, r.transaction_id)
            reversal = reverse(
                earn=sale.earn, burn=sale.burn, returning=r.lines, already_returned=returned
            )
            if isinstance(reversal, ReturnRefused):
                return _return_refused(
                    r,
                    reversal.problem.value,
                    _return_problem(reversal),
                    {
                        "line": reversal.index,
                        "quantity": reversal.quantity,
                        "sold": reversal.sold,
                        "already_returned": reversal.already_returned,
                    },
                )
            event_id = None
            if reversal.points_taken_back or reversal.points_given_back:
                event = kinds.refund_return(
                    event_id=posting.event_key(
                        self.cache.store_id, r.till_id, "return", r.return_id
                    ),
                    at=r.now,
                    origin=Origin(Channel.IN_STORE, self.cache.store_id, r.till_id),
                    account=self._account(sale.member_id),
                    returned=reversal.points_taken_back,
                    restored=reversal.points_given_back,
                )
                self._book_reversal(
                    conn,
                    event,
                    sale=sale,
                    reversal=reversal,
                    till_id=r.till_id,
                    cashier_id=r.cashier_id,
                    transaction_id=r.transaction_id,
                )
                event_id = event.event_id
            for line in reversal.lines:
                conn.execute(
                    points_schema.ADD_RETURNED_SQL,
                    (r.sale_till_id, r.transaction_id, line.index, line.quantity),
                )
            outcome = PointsReturnOutcome(
                ok=True,
                reason=None,
                message=(
                    f"Return: {reversal.points_taken_back} points taken back, "
                    f"{reversal.points_given_back} given back."
                ),
                return_id=r.return_id,
                transaction_id=r.transaction_id,
                sale_till_id=r.sale_till_id,
                taken_back=reversal.points_taken_back,
                given_back=reversal.points_given_back,
                net=reversal.net,
                discount_reversed=sum(x.discount_reversed for x in reversal.lines),
                lines=_reversal_lines(sale, reversal),
                event_id=event_id,
            )
            conn.execute(
                points_schema.INSERT_RETURN_SQL,
                (r.till_id, r.return_id, r.sale_till_id, r.transaction_id, digest,
                 RETURN_FORM.dump(outcome), to_us(r.now)),
            )  # fmt: skip
            return outcome

    # -- steps --------------------------------------------------------------------------------

    def _account(self, member_id: str) -> MemberAccount:
        return MemberAccount(self.programme, member_id)

    def _known(self, conn: sqlite3.Connection, member_id: str) -> tuple[Availability, int]:
        synced, mark, unsynced = conn.execute(
            points_schema.KNOWN_SQL, (member_id, self.programme)
        ).fetchone()
        found = availability(
            synced_balance=int(synced),
            unsynced_postings=(int(unsynced),),
            allowance=self.policy.offline_allowance,
        )
        return found, int(mark)

    def _balance(self, conn: sqlite3.Connection, member_id: str) -> BalanceView:
        found, mark = self._known(conn, member_id)
        return BalanceView.of(member_id, self.programme, mark, found)

    def _attribution(
        self, *, till_id: str, cashier_id: str, transaction_id: str, member_id: str, variant: str
    ) -> Attribution:
        return Attribution(
            store_id=self.cache.store_id,
            till_id=till_id,
            cashier_id=cashier_id,
            transaction_id=transaction_id,
            member_id=member_id,
            variant=variant,
            channel=posting.CHANNEL,
        )

    def _book_sale(
        self,
        conn: sqlite3.Connection,
        sale: Sale,
        earn: EarnResult,
        plan: BurnPlan | None,
        digest: str,
    ) -> PointsCheckoutOutcome:
        store, till, txn = self.cache.store_id, sale.till_id, sale.transaction_id
        origin = Origin(Channel.IN_STORE, store, till)
        account = self._account(sale.member_id)
        attribution = self._attribution(
            till_id=till,
            cashier_id=sale.cashier_id,
            transaction_id=txn,
            member_id=sale.member_id,
            variant=earn.variant,
        )
        booked: list[str] = []
        earned, spent = earn_lines(earn), burn_lines(plan)
        if earn.points > 0:
            campaigns = {x.campaign_id for x in earned} - {None}
            event = kinds.earn(
                event_id=posting.event_key(store, till, txn, "earn"),
                at=sale.now,
                origin=origin,
                account=account,
                points=earn.points,
                campaign=campaigns.pop() if len(campaigns) == 1 else None,
            )
            posting.book(
                conn, box_id=self.cache.box_id, event=event, member_id=sale.member_id,
                attribution=attribution, lines=earned, rules_version=earn.rules_version,
                variant=earn.variant, amount=0,
            )  # fmt: skip
            booked.append(event.event_id)
        if plan is not None and plan.granted > 0:
            event = kinds.burn(
                event_id=posting.event_key(store, till, txn, "burn"),
                at=sale.now,
                origin=origin,
                account=account,
                points=plan.granted,
            )
            posting.book(
                conn, box_id=self.cache.box_id, event=event, member_id=sale.member_id,
                attribution=attribution, lines=spent, rules_version=None, variant=None,
                amount=plan.discount,
            )  # fmt: skip
            booked.append(event.event_id)
        burned = 0 if plan is None else plan.granted
        outcome = PointsCheckoutOutcome(
            ok=True,
            reason=None,
            message=f"{earn.points} points earned, {burned} burned.",
            transaction_id=txn,
            member_id=sale.member_id,
            earned=earn.points,
            burned=burned,
            discount=0 if plan is None else plan.discount,
            lines=[*earned, *spent],
            rules_version=earn.rules_version,
            variant=earn.variant,
            event_ids=booked,
            balance=self._balance(conn, sale.member_id),
        )
        conn.execute(
            points_schema.INSERT_SALE_SQL,
            (till, txn, sale.member_id, self.programme, _EARN.dump_json(earn).decode(),
             None if plan is None else _BURN.dump_json(plan).decode(), digest,
             CHECKOUT_FORM.dump(outcome), to_us(sale.now)),
        )  # fmt: skip
        return outcome

    def _book_reversal(
        self,
        conn: sqlite3.Connection,
        event: LedgerEvent,
        *,
        sale: _StoredSale,
        reversal: Reversal,
        till_id: str,
        cashier_id: str,
        transaction_id: str,
    ) -> None:
        posting.book(
            conn,
            box_id=self.cache.box_id,
            event=event,
            member_id=sale.member_id,
            attribution=self._attribution(
                till_id=till_id,
                cashier_id=cashier_id,
                transaction_id=transaction_id,
                member_id=sale.member_id,
                variant=sale.earn.variant,
            ),
            lines=_reversal_lines(sale, reversal),
            rules_version=sale.earn.rules_version,
            variant=sale.earn.variant,
            amount=sum(x.discount_reversed for x in reversal.lines),
        )

    def _sale(self, conn: sqlite3.Connection, till_id: str, transaction_id: str) -> _StoredSale:
        row = conn.execute(points_schema.SALE_SQL, (till_id, transaction_id)).fetchone()
        if row is None:
            raise SaleNotFoundError(till_id=till_id, transaction_id=transaction_id)
        member_id, _programme, earn, burn, _fp, _response, void_response = row
        return _StoredSale(
            member_id=str(member_id),
            earn=_EARN.validate_json(earn),
            burn=None if burn is None else _BURN.validate_json(burn),
            void_response=None if void_response is None else str(void_response),
        )

    @staticmethod
    def _returned(conn: sqlite3.Connection, till_id: str, transaction_id: str) -> dict[int, int]:
        rows = conn.execute(points_schema.RETURNED_SQL, (till_id, transaction_id))
        return {int(line): int(units) for line, units in rows}

    def _refused(
        self, sale: Sale, reason: str, message: str, details: dict[str, int | str | None]
    ) -> PointsCheckoutOutcome:
        return PointsCheckoutOutcome(
            ok=False,
            reason=reason,
            message=message,
            transaction_id=sale.transaction_id,
            member_id=sale.member_id,
            details=details,
        )

    def _short(self, sale: Sale, plan: BurnPlan, mark: int) -> PointsCheckoutOutcome:
        short = plan.shortfall
        assert short is not None
        a = short.availability
        return PointsCheckoutOutcome(
            ok=False,
            reason=short.reason.value,
            message=_burn_message(plan),
            transaction_id=sale.transaction_id,
            member_id=sale.member_id,
            balance=BalanceView.of(sale.member_id, self.programme, mark, a),
            details={
                "requested": short.requested,
                "max_burnable": plan.max_burnable,
                "eligible": short.eligible,
                "known": a.known,
                "allowance": a.allowance,
                "available": a.available,
            },
        )


class _StoredSale:
    """A sale's row as the reversals need it."""

    __slots__ = ("burn", "earn", "member_id", "void_response")

    def __init__(
        self, *, member_id: str, earn: EarnResult, burn: BurnPlan | None, void_response: str | None
    ) -> None:
        self.member_id = member_id
        self.earn = earn
        self.burn = burn
        self.void_response = void_response


def _reversal_lines(sale: _StoredSale, reversal: Reversal) -> list[PointsLine]:
    sold = {x.index: x for x in sale.earn.lines}
    out: list[PointsLine] = []
    for x in reversal.lines:
        line = sold[x.index]
        if x.earn_taken_back:
            out.append(
                PointsLine(line=x.index, sku=line.sku, band=line.band.value, side="earn",
                           points=x.earn_taken_back, campaign_id=line.campaign_id)
            )  # fmt: skip
        if x.burn_given_back:
            out.append(
                PointsLine(line=x.index, sku=line.sku, band=line.band.value, side="burn",
                           points=x.burn_given_back, discount=x.discount_reversed)
            )  # fmt: skip
    return out


def _return_refused(
    r: Return, reason: str, message: str, details: dict[str, int | str | None]
) -> PointsReturnOutcome:
    return PointsReturnOutcome(
        ok=False,
        reason=reason,
        message=message,
        return_id=r.return_id,
        transaction_id=r.transaction_id,
        sale_till_id=r.sale_till_id,
        details=details,
    )


def _unknown(member_id: str) -> str:
    return f"Member {member_id} is not known at this store yet: no points this time."


def _return_problem(refused: ReturnRefused) -> str:
    return (
        f"Line {refused.index}: {refused.quantity} returned, but the sale had {refused.sold} "
        f"and {refused.already_returned} came back already ({refused.problem.value})."
    )


def _burn_message(plan: BurnPlan) -> str:
    short = plan.shortfall
    if short is None:
        return f"Up to {plan.max_burnable} points may be burned on this basket."
    a = short.availability
    why = {
        "insufficient_balance": f"the member has {a.known} points",
        "offline_allowance_exceeded": (
            f"the member has {a.known} points as this store knows them, plus an offline "
            f"allowance of {a.allowance}"
        ),
        "margin_floor": f"the basket's margin floors allow {short.eligible}",
        "nothing_eligible": "no line of this basket may be paid with points",
        "invalid_request": "a negative number of points was asked",
    }[short.reason.value]
    return f"{short.requested} points asked, at most {plan.max_burnable} allowed: {why}."


def _quote_message(earned: int, plan: BurnPlan) -> str:
    return f"Earns {earned} points. {_burn_message(plan)}"


__all__: Sequence[str] = ("PointsService",)
