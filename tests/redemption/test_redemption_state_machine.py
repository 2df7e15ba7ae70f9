"""A stateful test of the redemption service (STYLE.md: "a stateful test for the ledger").

Hypothesis drives the real ``RedemptionService`` on a real SQLite cache file (a fresh temporary
directory per example) through random sequences of validate, reserve, commit (with and without a
prior hold), retries of earlier commits, holds, voids and returns, full and partial reversals
(retried by return id, and too large), outbox acknowledgements, hold housekeeping, a cache
re-open, and a clock that only moves forward (so holds lapse, exactly at their ``until`` too).

A small model runs alongside. It predicts every decision (accepted with its discount, or the
refusal's reason) from first principles, and after every step the cache must equal the model:
use counters, member counters, campaign counters, holds, redemptions, stored answers and the
exact event log (type, code, transaction of every event, in order). Independently of the model,
the invariants below are checked on the file alone: counters equal committed minus fully
reversed redemptions, a single-use code is never redeemed twice unless fully reversed in
between, live holds never exceed what is left of a code, the sequence is gap-free from 1, and
the outbox holds exactly the events not acknowledged. A failing run prints its steps (and
``--hypothesis-seed`` reproduces it).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
)

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import to_us
from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.decision import Accepted, Decision, Reason, Refused
from edge_agent.domain.promotion import Limits, Member
from edge_agent.domain.throttle import ThrottleConfig
from edge_agent.errors import (
    IdempotencyConflictError,
    RedemptionNotFoundError,
    RequestError,
    ReversalTooLargeError,
)
from edge_agent.redemption.outcomes import VoidOutcome
from edge_agent.redemption.service import RedemptionService
from tests.cache.factories import FMT, NOW, STORE, A, B, code, promotion, req

HOLD = timedelta(minutes=5)
FIXED_OFF = 500  # the promotions' benefit: 500 off, capped by the bill


@dataclass(frozen=True, slots=True)
class Spec:
    """What the model knows of a code in the cache."""

    campaign: str
    owner: str | None  # member-bound to
    total: int  # total_uses_per_code
    per_member: int | None = None
    budget_money: int | None = None


U = code("UNB4ND")  # single use, bound to nobody
G = code("GENRC2")  # generic: several uses, two per member, a money budget
X = code("ZZZZZ9")  # well formed, not in the cache
SPECS = {
    A: Spec("C1", "M1", 1),
    B: Spec("C1", "M2", 1),
    U: Spec("C1", None, 1),
    G: Spec("G1", None, 4, per_member=2, budget_money=1500),
}
SINGLE_USE = [c for c, s in SPECS.items() if s.total == 1]
BASKETS = {
    "big": Basket(lines=(BasketLine(sku="SKU1", category="food", quantity=2, unit_price=1500),)),
    "small": Basket(lines=(BasketLine(sku="SKU2", category="food", quantity=1, unit_price=300),)),
    "empty": Basket(),
}
baskets = st.sampled_from(["big", "big", "small", "empty"])

codes = st.sampled_from([A, B, U, G, G, X])  # the generic code has the most limits
known_codes = st.sampled_from([A, B, U, G, G])
members = st.sampled_from(["M1", "M1", "M2", None])
txns = st.sampled_from(["T-1", "T-2", "T-3", "T-4", "T-5"])
tills = st.sampled_from(["till-1", "till-2", "till-3"])
return_ids = st.sampled_from(["R-1", "R-2", "R-3"])
# Clock steps straddle the hold: just before, exactly at (a hold stops counting at its until)
# and after. The total stays far inside the 24 h cache-age bound and the campaign.
ticks = st.sampled_from(
    [timedelta(seconds=1), timedelta(minutes=1), HOLD - timedelta(seconds=1), HOLD,
     timedelta(minutes=7), timedelta(minutes=16)]
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sale:
    """A request the machine made and was accepted: what a retry repeats. A sale is (till,
    transaction id): another till's sale of the same number is another sale."""

    till: str
    txn: str
    code: str
    member: str | None
    basket: str


@dataclass(frozen=True, slots=True)
class Return:
    """A return the machine made: the returning till's own return id, the sale it names."""

    till: str
    return_id: str
    code: str
    sale_till: str
    txn: str
    amount: int | None


@dataclass(slots=True)
class Red:
    """A redemption as the model knows it."""

    amount: int
    member: str | None
    campaign: str
    reversed: int = 0
    full: bool = False


def open_store(path: Path) -> CodeCache:
    cache = CodeCache.open(path, store_id=STORE)
    cache.put_campaign(promotion("C1"))
    cache.put_campaign(
        promotion("G1", limits=Limits(total_uses_per_code=4, uses_per_member=2), budget_money=1500)
    )
    cache.put_member(Member(member_id="M1", segment="loyal"))
    cache.put_member(Member(member_id="M2", segment="champion"))
    cache.put_codes(
        CodeRecord(code=c, campaign_id=s.campaign, member_id=s.owner) for c, s in SPECS.items()
    )
    cache.set_synced_at(NOW - timedelta(minutes=1))
    return cache


def new_service(cache: CodeCache) -> RedemptionService:
    # The till throttle (in memory, tested on its own) is kept out of the way: WRONG_MEMBER and
    # NOT_FOUND refusals here are part of the story, not guesses.
    return RedemptionService(
        cache, fmt=FMT, hold=HOLD, throttle=ThrottleConfig(max_failures=1_000_000)
    )


_STATE_TABLES = (
    "code_usage",
    "member_code_usage",
    "campaign_usage",
    "reservations",
    "redemptions",
    "reversals",
    "requests",
    "events",
    "outbox",
)


def dump(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store's own state, in a stable order."""
    out = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in _STATE_TABLES}
    out["meta"] = sorted(conn.execute("SELECT key, value FROM meta").fetchall())
    return out


class RedemptionMachine(RuleBasedStateMachine):
    sales = Bundle("sales")  # accepted commits: Sale
    holds_made = Bundle("holds_made")  # accepted reserves: Sale
    voids = Bundle("voids")  # (till, txn, code) of voids that released a hold
    returns = Bundle("returns")  # Return of applied reversals

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="storeside-sm-"))
        self.path = self.dir / "cache.db"
        self.cache = open_store(self.path)
        self.service = new_service(self.cache)
        self.now = NOW
        # -- the model --
        self.uses: Counter[str] = Counter()
        self.member_uses: Counter[tuple[str, str]] = Counter()
        self.campaign_uses: Counter[str] = Counter()
        self.campaign_money: Counter[str] = Counter()
        # (code, till, txn) -> until, lapsed too
        self.holds: dict[tuple[str, str, str], datetime] = {}
        self.redemptions: dict[tuple[str, str, str], Red] = {}  # (code, till, txn)
        # (code, sale till, sale txn, returning till, return id, amount)
        self.reversal_rows: set[tuple[str, str, str, str, str, int]] = set()
        # (till, txn or return id, code, operation) -> (outcome, the request it answered)
        self.answers: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self.events: list[tuple[str, str | None, str | None]] = []  # (type, code, txn)
        self.acked = 0

    def teardown(self) -> None:
        self.cache.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model's predictions ---------------------------------------------------------------

    def predict(
        self, c: str, member: str | None, till: str, txn: str | None, basket: str
    ) -> tuple[Reason | None, int]:
        """The decision the service must give: (None, discount) or (reason, 0)."""
        spec = SPECS.get(c)
        if spec is None:
            return Reason.NOT_FOUND, 0
        if spec.owner is not None:
            if member is None:
                return Reason.MEMBER_REQUIRED, 0
            if member != spec.owner:
                return Reason.WRONG_MEMBER, 0
        uses = self.uses[c]
        if uses >= spec.total:
            return (Reason.ALREADY_REDEEMED if spec.total == 1 else Reason.CODE_LIMIT_REACHED), 0
        others = [
            (k, t)
            for (h, k, t), until in self.holds.items()
            if h == c and (k, t) != (till, txn) and until > self.now
        ]
        if others and uses + len(others) >= spec.total:
            return Reason.RESERVED_ELSEWHERE, 0
        if (
            member is not None
            and spec.per_member is not None
            and self.member_uses[(c, member)] >= spec.per_member
        ):
            return Reason.MEMBER_LIMIT_REACHED, 0
        money = self.campaign_money[spec.campaign]
        if spec.budget_money is not None and money >= spec.budget_money:
            return Reason.CAMPAIGN_BUDGET_EXHAUSTED, 0
        bill = BASKETS[basket].total
        if bill == 0:
            return Reason.NO_ELIGIBLE_ITEMS, 0
        amount = min(FIXED_OFF, bill)
        if spec.budget_money is not None and money + amount > spec.budget_money:
            return Reason.CAMPAIGN_BUDGET_EXHAUSTED, 0
        return None, amount

    def check_decision(
        self, op: str, decision: Decision, expected: tuple[Reason | None, int]
    ) -> None:
        reason, amount = expected
        event(f"{op}: {reason or 'accepted'}")  # --hypothesis-show-statistics
        if reason is None:
            assert isinstance(decision, Accepted), decision
            assert decision.discount == amount
            assert sum(line.amount for line in decision.lines) == amount
        else:
            assert isinstance(decision, Refused), (decision, reason)
            assert decision.reason is reason, (decision.reason, reason)
            assert decision.cashier_message and decision.customer_message

    def request(self, c: str, member: str | None, txn: str | None, basket: str, till: str) -> Any:
        return req(c, txn=txn, till=till, member=member, now=self.now, basket=BASKETS[basket])

    def unchanged_since(self, before: dict[str, list[tuple[Any, ...]]]) -> None:
        assert dump(self.cache.conn) == before

    # -- rules -----------------------------------------------------------------------------------

    @rule(step=ticks)
    def tick(self, step: timedelta) -> None:
        self.now += step

    @rule(c=codes, member=members, txn=st.one_of(st.none(), txns), basket=baskets, till=tills)
    def validate(self, c: str, member: str | None, txn: str | None, basket: str, till: str) -> None:
        before = dump(self.cache.conn)
        expected = self.predict(c, member, till, txn, basket)
        first = self.service.validate(self.request(c, member, txn, basket, till))
        again = self.service.validate(self.request(c, member, txn, basket, till))
        assert len(first) == 1 and first == again  # stable, reason and all
        self.check_decision("validate", first[0], expected)
        self.unchanged_since(before)

    @rule(target=holds_made, c=codes, member=members, txn=txns, basket=baskets, till=tills)
    def reserve(self, c: str, member: str | None, txn: str, basket: str, till: str) -> Any:
        return self._reserve(Sale(till, txn, c, member, basket))

    def _reserve(self, sale: Sale) -> Any:
        c, txn, till = sale.code, sale.txn, sale.till
        before = dump(self.cache.conn)
        request = self.request(c, sale.member, txn, sale.basket, till)
        if self.retried(before, "reserve", sale, lambda: self.service.reserve(request)):
            return multiple()
        committed = self.answers.get((till, txn, c, "commit"))
        if committed is not None:  # a late reserve of a sale already paid: no new hold
            event("reserve: after the same sale's commit")
            (out,) = self.service.reserve(request)
            assert out.decision == committed[0].decision and out.hold_until is None
            assert out.replayed
            self.unchanged_since(before)
            return multiple()
        expected = self.predict(c, sale.member, till, txn, sale.basket)
        (out,) = self.service.reserve(request)
        self.check_decision("reserve", out.decision, expected)
        if expected[0] is not None:
            assert out.hold_until is None
            self.unchanged_since(before)
            return multiple()
        assert out.hold_until == self.now + HOLD and not out.replayed
        for key, until in list(self.holds.items()):  # the reserve sweeps the code's lapsed holds
            if key[0] == c and until <= self.now:
                del self.holds[key]
        self.holds[(c, till, txn)] = self.now + HOLD
        self.answers[(till, txn, c, "reserve")] = (out, (sale.member, sale.basket))
        self.events.append(("code.reserved", c, txn))
        return sale

    def retried(self, before: Any, op: str, sale: Sale, call: Any) -> bool:
        """If the sale already has an ``op`` answer for the code: an identical request gets it
        again as a replay, any other is refused as a reused key; nothing is written."""
        stored = self.answers.get((sale.till, sale.txn, sale.code, op))
        if stored is None:
            return False
        answer, asked = stored
        if asked == (sale.member, sale.basket):
            event(f"{op}: retried")
            (out,) = call()
            assert out == replace(answer, replayed=True)
        else:
            event(f"{op}: key reused for another request")
            with pytest.raises(IdempotencyConflictError):
                call()
        self.unchanged_since(before)
        return True

    @rule(sale=holds_made, basket=baskets)
    def retry_reserve(self, sale: Sale, basket: str) -> None:
        """A retry may come later, maybe with the basket changed (then it is not a retry)."""
        self._reserve(replace(sale, basket=basket))

    @rule(target=sales, c=codes, member=members, txn=txns, basket=baskets, till=tills)
    def commit(self, c: str, member: str | None, txn: str, basket: str, till: str) -> Any:
        return self._commit(Sale(till, txn, c, member, basket))

    @rule(target=sales, sale=holds_made)
    def commit_held(self, sale: Sale) -> Any:
        """Payment for a sale that reserved at scan (its hold may have lapsed meanwhile)."""
        return self._commit(sale)

    def _commit(self, sale: Sale) -> Any:
        c, txn, till = sale.code, sale.txn, sale.till
        before = dump(self.cache.conn)
        request = self.request(c, sale.member, txn, sale.basket, till)
        if self.retried(before, "commit", sale, lambda: self.service.commit(request)):
            return multiple()
        expected = self.predict(c, sale.member, till, txn, sale.basket)
        (out,) = self.service.commit(request)
        self.check_decision("commit", out.decision, expected)
        if expected[0] is not None:
            assert out.redemption is None
            self.unchanged_since(before)
            return multiple()
        amount = expected[1]
        spec = SPECS[c]
        subject = sale.member or spec.owner
        r = out.redemption
        assert r is not None and not out.replayed
        assert (r.code, r.transaction_id, r.amount, r.member_id) == (c, txn, amount, subject)
        assert r.campaign_id == spec.campaign and r.till_id == till and r.redeemed_at == self.now
        assert r.seq == len(self.events) + 1
        self.uses[c] += 1
        if subject is not None:
            self.member_uses[(c, subject)] += 1
        self.campaign_uses[spec.campaign] += 1
        self.campaign_money[spec.campaign] += amount
        self.holds.pop((c, till, txn), None)  # the commit consumes its hold, live or lapsed
        self.redemptions[(c, till, txn)] = Red(
            amount=amount, member=subject, campaign=spec.campaign
        )
        self.answers[(till, txn, c, "commit")] = (out, (sale.member, sale.basket))
        self.events.append(("code.redeemed", c, txn))
        return sale

    @rule(sale=sales, basket=baskets)
    def retry_commit(self, sale: Sale, basket: str) -> None:
        """The identical stored answer, whatever happened since (holds, returns); with a new
        basket it is not a retry but a reused key."""
        self._commit(replace(sale, basket=basket))

    @rule(target=voids, txn=txns, c=st.one_of(st.none(), known_codes), till=tills)
    def void(self, txn: str, c: str | None, till: str) -> Any:
        before = dump(self.cache.conn)
        now_us = to_us(self.now)
        if c is None:
            # Every code the sale holds now, and every code an earlier void of it released: a
            # repeated void-all answers as the first did. Other tills' sales are not touched.
            targets = sorted(
                {h for (h, k, t), u in self.holds.items() if (k, t) == (till, txn) and u > self.now}
                | {h for (k, t, h, op) in self.answers if (k, t, op) == (till, txn, "void")}
            )
        else:
            targets = [c]
        out = self.service.void(
            transaction_id=txn, code=c, store_id=STORE, till_id=till, cashier_id="k", now=self.now
        )
        assert [o.code for o in out] == targets
        released = []
        for o, h in zip(out, targets, strict=True):
            stored = self.answers.get((till, txn, h, "void"))
            if stored is not None:
                assert o == replace(stored[0], replayed=True)
                continue
            until = self.holds.pop((h, till, txn), None)  # deletes the hold, live or lapsed
            if until is None or to_us(until) <= now_us:
                event("void: nothing live to release")
                assert o == VoidOutcome(code=h, transaction_id=txn, released=False)
                continue
            event("void: released")
            assert o.released and o.voided_at == self.now and o.event_id is not None
            self.answers[(till, txn, h, "void")] = (o, None)
            self.events.append(("code.voided", h, txn))
            released.append((till, txn, h))
        if not released:
            live_before = [r for r in before["reservations"] if r[7] > now_us]
            live_after = [r for r in dump(self.cache.conn)["reservations"] if r[7] > now_us]
            assert live_after == live_before
        return multiple(*released)

    @rule(done=voids)
    def retry_void(self, done: tuple[str, str, str]) -> None:
        till, txn, c = done
        before = dump(self.cache.conn)
        (out,) = self.service.void(
            transaction_id=txn, code=c, store_id=STORE, till_id=till, cashier_id="k", now=self.now
        )
        assert out == replace(self.answers[(till, txn, c, "void")][0], replayed=True)
        self.unchanged_since(before)

    @rule(
        target=returns,
        sale=sales,
        return_id=return_ids,
        how=st.sampled_from(["all", "remaining", "one", "some", "too_much"]),
        till=tills,
    )
    def reverse(self, sale: Sale, return_id: str, how: str, till: str) -> Any:
        """A return of ``sale``, taken at ``till`` (the sale's own or another: the service
        desk), keyed by that till's ``return_id``."""
        c, txn = sale.code, sale.txn
        red = self.redemptions[(c, sale.till, txn)]
        remaining = 0 if red.full else red.amount - red.reversed
        amount = {
            "all": None,
            "remaining": max(remaining, 1),
            "one": 1,
            "some": max(remaining // 2, 1),
            "too_much": remaining + 1,
        }[how]
        ret = Return(till, return_id, c, sale.till, txn, amount)
        before = dump(self.cache.conn)
        if self.return_retried(before, ret):
            return multiple()
        wanted = remaining if amount is None else amount
        if red.full or wanted > remaining:
            event("reverse: too large")
            with pytest.raises(ReversalTooLargeError) as err:
                self._reverse(ret)
            assert (err.value.requested, err.value.remaining) == (wanted, remaining)
            self.unchanged_since(before)
            return multiple()
        out = self._reverse(ret)
        red.reversed += wanted
        red.full = red.reversed >= red.amount
        assert (out.code, out.transaction_id, out.sale_till_id, out.return_id) == (
            c,
            txn,
            sale.till,
            return_id,
        )
        assert (out.amount, out.remaining, out.fully_reversed) == (
            wanted,
            red.amount - red.reversed,
            red.full,
        )
        assert not out.replayed
        self.campaign_money[red.campaign] -= wanted
        if red.full:  # the use comes back: code, member and campaign counts
            self.uses[c] -= 1
            self.campaign_uses[red.campaign] -= 1
            if red.member is not None:
                self.member_uses[(c, red.member)] -= 1
        event(f"reverse: {'full' if red.full else 'partial'}")
        self.reversal_rows.add((c, sale.till, txn, till, return_id, wanted))
        self.answers[(till, return_id, c, "reverse")] = (out, (sale.till, txn, amount))
        self.events.append(("code.reversed", c, txn))
        return ret

    def return_retried(self, before: Any, ret: Return) -> bool:
        """If the returning till's return id already has an answer for the code: the same
        return (sale and amount) gets it again as a replay, any other is a reused key."""
        stored = self.answers.get((ret.till, ret.return_id, ret.code, "reverse"))
        if stored is None:
            return False
        answer, asked = stored
        if asked == (ret.sale_till, ret.txn, ret.amount):
            event("reverse: retried")
            assert self._reverse(ret) == replace(answer, replayed=True)
        else:
            event("reverse: return id reused for another return")
            with pytest.raises(IdempotencyConflictError):
                self._reverse(ret)
        self.unchanged_since(before)
        return True

    @rule(done=returns, amount=st.one_of(st.none(), st.integers(1, 600)))
    def retry_reverse(self, done: Return, amount: int | None) -> None:
        """The same return again, or its id reused with another amount."""
        before = dump(self.cache.conn)
        assert self.return_retried(before, done)
        assert self.return_retried(before, replace(done, amount=amount))

    @rule(
        c=known_codes,
        txn=txns,
        sale_till=tills,
        return_id=return_ids,
        amount=st.sampled_from([None, 0, 1]),
    )
    def reverse_what_was_never_sold(
        self, c: str, txn: str, sale_till: str, return_id: str, amount: int | None
    ) -> None:
        if (c, sale_till, txn) in self.redemptions and amount != 0:
            return  # covered by ``reverse``
        before = dump(self.cache.conn)
        expected = RequestError if amount == 0 else RedemptionNotFoundError
        with pytest.raises(expected):
            # The service desk (a till that never sells here, so its return ids are unused).
            self._reverse(Return("desk", return_id, c, sale_till, txn, amount))
        self.unchanged_since(before)

    def _reverse(self, ret: Return) -> Any:
        return self.service.reverse(
            code=ret.code,
            transaction_id=ret.txn,
            sale_till_id=ret.sale_till,
            return_id=ret.return_id,
            amount=ret.amount,
            store_id=STORE,
            till_id=ret.till,
            cashier_id="k",
            now=self.now,
        )

    @rule(fraction=st.sampled_from([0.0, 0.5, 1.0]))
    def ack(self, fraction: float) -> None:
        """HQ acknowledges part of what it has received (possibly an old watermark again)."""
        up_to = int(len(self.events) * fraction)
        assert self.cache.ack_outbox(up_to) == max(0, up_to - self.acked)
        self.acked = max(self.acked, up_to)

    @rule()
    def expire_holds(self) -> None:
        lapsed = [k for k, until in self.holds.items() if until <= self.now]
        assert self.service.expire_holds(self.now) == len(lapsed)
        for k in lapsed:
            del self.holds[k]

    @rule()
    def reopen(self) -> None:
        """Close the file and open it again (a restart): everything persists."""
        before = dump(self.cache.conn)
        self.cache.close()
        self.cache = CodeCache.open(self.path, store_id=STORE)
        self.service = new_service(self.cache)
        self.unchanged_since(before)

    # -- invariants: the file equals the model -----------------------------------------------------

    @invariant()
    def counters_match_the_model(self) -> None:
        conn = self.cache.conn
        uses = {c: n for c, n, _ in conn.execute("SELECT * FROM code_usage")}
        assert {c: uses.get(c, 0) for c in SPECS} == {c: self.uses[c] for c in SPECS}
        member_uses = {(c, m): n for c, m, n in conn.execute("SELECT * FROM member_code_usage")}
        assert {k: v for k, v in member_uses.items() if v} == +self.member_uses
        campaigns = {c: (u, m, s) for c, u, m, s in conn.execute("SELECT * FROM campaign_usage")}
        for campaign in ("C1", "G1"):
            u, m, s = campaigns.get(campaign, (0, 0, 0))
            assert (u, m, s) == (
                self.campaign_uses[campaign],
                self.campaign_money[campaign],
                self.campaign_uses[campaign],
            )

    @invariant()
    def holds_redemptions_and_answers_match_the_model(self) -> None:
        conn = self.cache.conn
        holds = {
            (c, k, t): u
            for c, k, t, u in conn.execute(
                "SELECT code, till_id, transaction_id, until_us FROM reservations"
            )
        }
        assert holds == {k: to_us(u) for k, u in self.holds.items()}
        reds = {
            (c, k, t): (a, r, bool(f), m)
            for c, k, t, a, r, f, m in conn.execute(
                "SELECT code, till_id, transaction_id, amount, reversed_amount, fully_reversed, "
                "member_id FROM redemptions"
            )
        }
        assert reds == {
            k: (r.amount, r.reversed, r.full, r.member) for k, r in self.redemptions.items()
        }
        rows = set(
            conn.execute(
                "SELECT r.code, r.till_id, r.transaction_id, v.till_id, v.return_id, v.amount "
                "FROM reversals AS v JOIN redemptions AS r ON r.id = v.redemption_id"
            )
        )
        assert rows == self.reversal_rows
        stored = set(conn.execute("SELECT till_id, transaction_id, code, operation FROM requests"))
        assert stored == set(self.answers)

    @invariant()
    def events_match_the_model_and_outbox_is_unacked(self) -> None:
        conn = self.cache.conn
        rows = conn.execute("SELECT seq, type, code, body FROM events ORDER BY seq").fetchall()
        assert [s for s, *_ in rows] == list(range(1, len(rows) + 1))  # gap-free from 1
        next_seq = conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0]
        assert int(next_seq) == len(rows) + 1
        seen = []
        for seq, type_, c, body in rows:
            doc = json.loads(body)
            assert (doc["seq"], doc["type"], doc["code"]) == (seq, type_, c)
            seen.append((type_, c, doc["transaction_id"]))
        assert seen == self.events  # one event per state change; retries and refusals add none
        outbox = conn.execute("SELECT seq, payload FROM outbox ORDER BY seq").fetchall()
        assert outbox == [(s, body) for s, _, _, body in rows if s > self.acked]

    @invariant()
    def invariants_of_the_file_alone(self) -> None:
        """What must hold whatever the model says."""
        conn = self.cache.conn
        now_us = to_us(self.now)
        for c, spec in SPECS.items():
            live = conn.execute(
                "SELECT count(*) FROM redemptions WHERE code = ? AND fully_reversed = 0", (c,)
            ).fetchone()[0]
            row = conn.execute("SELECT uses FROM code_usage WHERE code = ?", (c,)).fetchone()
            assert (0 if row is None else row[0]) == live <= spec.total
            # Live holds never promise more than is left of the code: no hold of one
            # transaction lets another take the last use.
            holders = conn.execute(
                "SELECT count(*) FROM reservations WHERE code = ? AND until_us > ?",
                (c, now_us),
            ).fetchone()[0]
            assert live + holders <= spec.total, (c, live, holders)
        for campaign, uses, money in conn.execute(
            "SELECT campaign_id, uses, money FROM campaign_usage"
        ):
            sums = conn.execute(
                "SELECT count(*) FILTER (WHERE fully_reversed = 0), "
                "coalesce(sum(amount - reversed_amount), 0) FROM redemptions WHERE campaign_id = ?",
                (campaign,),
            ).fetchone()
            assert (uses, money) == tuple(sums)
        # A single-use code is taken again only after a full reversal of its previous use.
        taken: dict[str, bool] = {}
        for type_, c, body in conn.execute(
            "SELECT type, code, body FROM events WHERE code IN (?, ?, ?) ORDER BY seq",
            SINGLE_USE,
        ):
            if type_ == "code.redeemed":
                assert not taken.get(c), f"{c} redeemed twice without a full reversal"
                taken[c] = True
            elif type_ == "code.reversed" and json.loads(body)["details"]["fully_reversed"]:
                taken[c] = False


RedemptionMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_redemption_state_machine = RedemptionMachine.TestCase
