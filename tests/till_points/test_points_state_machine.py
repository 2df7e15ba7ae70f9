"""Hypothesis stateful test of the box's points service alone, on a real cache file.

Random sequences of quotes, checkouts (earn, burn: what a quote offers, or any number asked),
partial returns, voids and retries of each, over two members whose HQ balances are drawn, with
a model of what each sale earned and burned and what came back of it. After every step:

* every ``points.posted`` event's postings sum to zero;
* the member's known balance is HQ's plus the sum of their postings (HQ's marks name none of
  this box's postings here) and the model's net of what was booked;
* no sale has more taken back than it earned or more given back than it burned, and a sale
  whose units all came back (by returns, and a void for the rest) has exactly its earn taken
  back and its burn given back.

And at each step: what a quote says may be burned is granted whole by a checkout asking for
it, and the checkout earns what the quote said; a checkout never burns more than the member
had available; a retry (same sale, same return, same void) answers exactly as the first time,
marked replayed, and books nothing.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.points_rules.returns import ReturnedLine
from edge_agent.points.outcomes import (
    PointsCheckoutOutcome,
    PointsReturnOutcome,
    PointsVoidOutcome,
    Return,
    Sale,
)
from edge_agent.points.service import PointsService
from tests.cache.factories import NOW
from tests.till_points import factories as f

NO_MARKS = '{"schema_version":1,"boxes":[]}'
MEMBERS = ("M1", "M2")  # standard, gold (2x)
BURN_LIMITS = {
    "insufficient_balance",
    "offline_allowance_exceeded",
    "margin_floor",
    "nothing_eligible",
}


@st.composite
def lines(draw: st.DrawFn) -> BasketLine:
    price = draw(st.integers(50, 3_000))
    margin = draw(st.sampled_from([60, 30, 10, 0]))  # bands A, B, C, and one at cost
    return BasketLine(
        sku=draw(st.sampled_from(["a", "b", "c"])),
        category="food",
        quantity=draw(st.integers(1, 5)),
        unit_price=price,
        unit_cost=price * (100 - margin) // 100,
    )


baskets = st.lists(lines(), min_size=1, max_size=4).map(lambda x: Basket(lines=tuple(x)))


@dataclass
class SaleModel:
    sale: Sale
    first: PointsCheckoutOutcome
    units: dict[int, int]  # line -> units sold
    returned: dict[int, int] = field(default_factory=dict)
    taken_back: int = 0
    given_back: int = 0
    voided: bool = False

    def rest(self) -> dict[int, int]:
        return {i: q - self.returned.get(i, 0) for i, q in self.units.items()}


class TillPoints(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="points-sm-"))
        self.cache = f.open_cache(self.dir / "c.db")
        self.svc: PointsService = f.service(self.cache, offline_allowance_points=30)
        self.hq = dict.fromkeys(MEMBERS, 0)
        self.net = dict.fromkeys(MEMBERS, 0)  # the model: what the box booked for each member
        self.sales: list[SaleModel] = []
        self.returns: list[tuple[Return, PointsReturnOutcome]] = []
        self.voids: list[tuple[SaleModel, PointsVoidOutcome]] = []
        self.n = 0
        self.checked_seq = 0

    def teardown(self) -> None:
        self.cache.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _id(self, kind: str) -> str:
        self.n += 1
        return f"{kind}-{self.n}"

    def _footprint(self) -> tuple[int, ...]:
        tables = ("events", "outbox", "points_postings", "points_sales", "points_returns")
        return tuple(f.count(self.cache, t) for t in tables)

    def _sale(self, member: str, basket: Basket, burn: int | None) -> Sale:
        return dataclasses.replace(
            f.sale(self._id("T"), member=member, basket=basket, burn=burn),
            till_id=f"till-{self.n % 2}",
        )

    def _booked(self, sale: Sale, out: PointsCheckoutOutcome) -> None:
        assert out.ok and not out.replayed
        self.net[sale.member_id] += out.earned - out.burned
        units = {i: x.quantity for i, x in enumerate(sale.basket.lines)}
        self.sales.append(SaleModel(sale=sale, first=out, units=units))

    # -- rules --------------------------------------------------------------------------------

    @initialize(a=st.integers(0, 5_000), b=st.integers(0, 5_000))
    def hq_balances(self, a: int, b: int) -> None:
        for member, balance in zip(MEMBERS, (a, b), strict=True):
            f.hq_says(self.cache, member, balance, NO_MARKS)
            self.hq[member] = balance

    @rule(member=st.sampled_from(MEMBERS), basket=baskets)
    def burn_what_the_quote_offers(self, member: str, basket: Basket) -> None:
        sale = self._sale(member, basket, None)
        offer = self.svc.quote(sale).burn
        assert offer is not None
        burn = offer.max_burnable
        quote = self.svc.quote(dataclasses.replace(sale, burn_points=burn))
        out = self.svc.checkout(dataclasses.replace(sale, burn_points=burn))
        assert out.ok, out
        assert out.burned == burn and out.earned == quote.earn_points
        self._booked(dataclasses.replace(sale, burn_points=burn), out)

    @rule(member=st.sampled_from(MEMBERS), basket=baskets, burn=st.none() | st.integers(0, 4_000))
    def checkout(self, member: str, basket: Basket, burn: int | None) -> None:
        sale = self._sale(member, basket, burn)
        available = self.svc.balance(member).available
        offer = self.svc.quote(dataclasses.replace(sale, burn_points=None)).burn
        assert offer is not None
        before = self._footprint()
        out = self.svc.checkout(sale)
        if out.ok:
            assert out.burned == (burn or 0) <= min(available, offer.max_burnable)
            self._booked(sale, out)
        else:
            assert out.reason in BURN_LIMITS, out
            assert burn is not None and burn > offer.max_burnable
            assert out.details["max_burnable"] == offer.max_burnable
            assert self._footprint() == before

    @precondition(lambda self: self.sales)
    @rule(data=st.data())
    def retry_a_checkout(self, data: st.DataObject) -> None:
        s = data.draw(st.sampled_from(self.sales))
        before = self._footprint()
        again = self.svc.checkout(s.sale)
        assert again == dataclasses.replace(s.first, replayed=True)
        assert self._footprint() == before

    @precondition(lambda self: self.sales)
    @rule(data=st.data())
    def partial_return(self, data: st.DataObject) -> None:
        s = data.draw(st.sampled_from(self.sales[-3:]))  # recent ones: so sales come back whole
        rest = s.rest()
        index = data.draw(st.sampled_from(sorted(rest)))
        quantity = data.draw(st.integers(1, max(1, rest[index]) + 1))  # at times one too many
        self._return(s, index, quantity)

    @precondition(lambda self: self.sales)
    @rule(data=st.data())
    def return_the_rest_unit_by_unit(self, data: st.DataObject) -> None:
        s = data.draw(st.sampled_from(self.sales))
        for index, left in s.rest().items():
            for _ in range(left):
                self._return(s, index, 1)

    def _return(self, s: SaleModel, index: int, quantity: int) -> None:
        rest = s.rest()
        r = Return(
            till_id="desk",
            return_id=self._id("R"),
            sale_till_id=s.sale.till_id,
            transaction_id=s.sale.transaction_id,
            cashier_id="c-2",
            lines=(ReturnedLine(index=index, quantity=quantity),),
            now=NOW,
        )
        before = self._footprint()
        out = self.svc.return_lines(r)
        if s.voided:
            assert not out.ok and out.reason == "sale_voided"
        elif quantity > rest[index]:
            assert not out.ok and out.reason == "more_than_sold"
        else:
            assert out.ok and out.net == out.given_back - out.taken_back
            s.returned[index] = s.returned.get(index, 0) + quantity
            s.taken_back += out.taken_back
            s.given_back += out.given_back
            self.net[s.sale.member_id] += out.net
            self.returns.append((r, out))
            return
        assert self._footprint() == before

    @precondition(lambda self: self.returns)
    @rule(data=st.data())
    def retry_a_return(self, data: st.DataObject) -> None:
        r, first = data.draw(st.sampled_from(self.returns))
        before = self._footprint()
        assert self.svc.return_lines(r) == dataclasses.replace(first, replayed=True)
        assert self._footprint() == before

    @precondition(lambda self: self.sales)
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        s = data.draw(st.sampled_from(self.sales))
        before = self._footprint()
        sale = s.sale
        out = self.svc.void(
            till_id=sale.till_id, transaction_id=sale.transaction_id, cashier_id="c-1", now=NOW
        )
        if s.voided:
            first = next(v for m, v in self.voids if m is s)
            assert out == dataclasses.replace(first, replayed=True)
            assert self._footprint() == before
            return
        assert not out.replayed
        s.voided = True
        s.taken_back += out.taken_back
        s.given_back += out.given_back
        s.returned = dict(s.units)
        self.net[sale.member_id] += out.given_back - out.taken_back
        self.voids.append((s, out))

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def every_event_balances(self) -> None:
        for seq, _, event in f.posted(self.cache):
            if seq > self.checked_seq:
                assert sum(p.signed for p in event.postings) == 0, event
                self.checked_seq = seq

    @invariant()
    def known_is_hq_plus_the_members_postings(self) -> None:
        for member in MEMBERS:
            (posted,) = self.cache.conn.execute(
                "SELECT coalesce(sum(member_net), 0) FROM points_postings WHERE member_id = ?",
                (member,),
            ).fetchone()
            view = self.svc.balance(member)
            assert view.known == self.hq[member] + posted == self.hq[member] + self.net[member]
            assert view.available == max(0, view.known + 30)

    @invariant()
    def returns_never_reverse_more_than_the_sale(self) -> None:
        for s in self.sales:
            assert 0 <= s.taken_back <= s.first.earned
            assert 0 <= s.given_back <= s.first.burned
            if all(q == 0 for q in s.rest().values()):
                assert (s.taken_back, s.given_back) == (s.first.earned, s.first.burned)


TillPoints.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_till_points_state_machine = TillPoints.TestCase
