"""A stateful test of the points ledger (issue 11's invariants).

Hypothesis drives one ``Ledger`` through random sequences of earn, burn, refund return,
transfer, promised-to-regular conversion, merge and expiry runs for four members (regular and
promised accounts each, opened with a random migrated balance), with a clock that only moves
forward, replays of applied events and conflicting reuses of their ids.

A model runs alongside, written from first principles: balances as plain sums, and FIFO lots as
a queue per account (the clock only moves forward, so the order applied is the time order and a
queue is the whole story). It predicts whether each event is admitted or overdrawn (a member
account left below zero and lower than before, by a kind the policy does not allow) and what an
expiry run debits. After every step:

* every applied event's postings sum to zero, and the ledger holds exactly the model's events,
  in order, unchanged (a replay or a refusal changed nothing; entries never change);
* every account's balance equals the fold of its entries, now and at every instant an entry of
  it was dated (and just before), and all balances sum to zero;
* no member account went below zero by a kind the policy does not allow (checked as each event
  is applied).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import Account, Category, MemberAccount
from edge_agent.domain.points.admission import Admitted, Overdrawn, Replayed
from edge_agent.domain.points.errors import EventConflictError
from edge_agent.domain.points.event import LedgerEvent, Origin
from edge_agent.domain.points.expiry import expiry
from edge_agent.domain.points.ledger import Ledger
from tests.points.factories import HQ, T0, TILL, P, acct

MEMBERS = ("m0", "m1", "m2", "m3")
CATEGORIES = (Category.REGULAR, Category.PROMISED)
VALIDITY = timedelta(days=30)
members = st.sampled_from(MEMBERS)
categories = st.sampled_from(CATEGORIES)
points = st.integers(1, 120)
US = timedelta(microseconds=1)


@dataclass(slots=True)
class _Lot:
    """The model's own lot: points credited at ``at``, not yet spent or expired."""

    at: datetime
    points: int


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger()
        self.now = T0
        self.n = 0
        # -- the model --
        self.applied: list[LedgerEvent] = []
        self.balances: Counter[Account] = Counter()
        self.lots: dict[Account, deque[_Lot]] = {}
        self.deficit: Counter[Account] = Counter()

    def next_id(self, kind: str) -> str:
        self.n += 1
        return f"{kind}-{self.n}"

    # -- the model -----------------------------------------------------------------------------

    def book(self, event: LedgerEvent) -> None:
        self.applied.append(event)
        for p in event.postings:
            self.balances[p.account] += p.signed
            if not isinstance(p.account, MemberAccount):
                continue
            queue = self.lots.setdefault(p.account, deque())
            if p.signed >= 0:
                paid = min(p.signed, self.deficit[p.account])
                self.deficit[p.account] -= paid
                if p.signed > paid:
                    queue.append(_Lot(at=event.at, points=p.signed - paid))
                continue
            wanted = -p.signed
            while wanted and queue:
                taken = min(wanted, queue[0].points)
                queue[0].points -= taken
                wanted -= taken
                if queue[0].points == 0:
                    queue.popleft()
            self.deficit[p.account] += wanted

    def overdraws(self, event: LedgerEvent) -> bool:
        if event.kind in self.ledger.policy.may_go_negative:
            return False
        for account in event.accounts():
            if isinstance(account, MemberAccount):
                after = self.balances[account] + event.net(account)
                if after < 0 and after < self.balances[account]:
                    return True
        return False

    def offer(self, event: LedgerEvent) -> None:
        expected_refusal = self.overdraws(event)
        outcome = self.ledger.apply(event)
        if expected_refusal:
            assert isinstance(outcome, Overdrawn), outcome
            assert outcome.shortfall > 0
            assert outcome.balance == self.balances[outcome.account]
            return
        assert outcome == Admitted(event)
        self.book(event)
        if event.kind not in self.ledger.policy.may_go_negative:
            for account in event.accounts():
                if isinstance(account, MemberAccount) and self.balances[account] < 0:
                    assert event.net(account) >= 0, "a disallowed kind overdrew an account"

    def offer_net_zero(self, event: LedgerEvent) -> None:
        """A transfer, conversion or merge moves points between members, never in or out."""
        assert event.member_net() == 0
        self.offer(event)

    # -- rules ---------------------------------------------------------------------------------

    @initialize(opening=st.lists(st.integers(0, 60), min_size=8, max_size=8))
    def open_accounts(self, opening: list[int]) -> None:
        for i, (m, c) in enumerate((m, c) for m in MEMBERS for c in CATEGORIES):
            self.offer(
                kinds.opening(
                    event_id=f"open-{m}-{c}",
                    at=T0,
                    origin=HQ,
                    account=acct(m, c),
                    points=opening[i],
                )
            )

    @rule(hours=st.integers(0, 24 * 20))
    def tick(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @rule(m=members, c=categories, pts=points)
    def earn(self, m: str, c: Category, pts: int) -> None:
        self.offer(
            kinds.earn(
                event_id=self.next_id("earn"),
                at=self.now,
                origin=TILL,
                account=acct(m, c),
                points=pts,
            )
        )

    @rule(m=members, pts=st.integers(1, 200))
    def burn(self, m: str, pts: int) -> None:
        self.offer(
            kinds.burn(
                event_id=self.next_id("burn"), at=self.now, origin=TILL, account=acct(m), points=pts
            )
        )

    @rule(m=members, returned=st.integers(0, 80), restored=st.integers(0, 80))
    def refund(self, m: str, returned: int, restored: int) -> None:
        if returned + restored == 0:
            returned = 1
        event = kinds.refund_return(
            event_id=self.next_id("refund"),
            at=self.now,
            origin=TILL,
            account=acct(m),
            returned=returned,
            restored=restored,
        )
        assert event.member_net() == restored - returned
        self.offer(event)

    @rule(a=members, b=members, c=categories, pts=st.integers(1, 150))
    def transfer(self, a: str, b: str, c: Category, pts: int) -> None:
        if a == b:
            return
        event = kinds.transfer(
            event_id=self.next_id("transfer"),
            at=self.now,
            origin=Origin(TILL.channel, "S002", "T9"),
            sender=acct(a, c),
            recipient=acct(b, c),
            points=pts,
        )
        self.offer_net_zero(event)

    @rule(m=members, pts=st.integers(1, 150))
    def convert(self, m: str, pts: int) -> None:
        self.offer_net_zero(
            kinds.conversion(
                event_id=self.next_id("convert"), at=self.now, origin=HQ, programme=P, member=m,
                points=pts,
            )
        )  # fmt: skip

    @rule(victim=members, survivor=members)
    def merge(self, victim: str, survivor: str) -> None:
        if victim == survivor:
            return
        before = self.ledger.member_balances(P, victim)
        moved = {c: self.balances[acct(survivor, c)] + before[c] for c in CATEGORIES}
        event = kinds.merge(
            event_id=self.next_id("merge"),
            at=self.now,
            origin=HQ,
            programme=P,
            victim=victim,
            survivor=survivor,
            victim_balances=before,
        )
        self.offer_net_zero(event)
        assert self.ledger.member_balances(P, victim) == dict.fromkeys(CATEGORIES, 0)
        assert self.ledger.member_balances(P, survivor) == moved

    @rule(m=members, c=categories)
    def expire(self, m: str, c: Category) -> None:
        account = acct(m, c)
        due = sum(lot.points for lot in self.lots.get(account, ()) if lot.at <= self.now - VALIDITY)

        def run() -> LedgerEvent | None:
            return expiry(
                event_id=self.next_id("expiry"), now=self.now, origin=HQ, account=account,
                entries=self.ledger.entries(account), validity=VALIDITY,
            )  # fmt: skip

        event = run()
        if due == 0:
            assert event is None
            return
        assert event is not None
        assert event.net(account) == -due
        self.offer(event)
        assert run() is None  # the run took exactly what was due

    @precondition(lambda self: self.applied)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        event = data.draw(st.sampled_from(self.applied))
        assert self.ledger.apply(event) == Replayed(event)

    @precondition(lambda self: self.applied)
    @rule(data=st.data(), how=st.sampled_from(["points", "time", "till"]))
    def reuse_an_id(self, data: st.DataObject, how: str) -> None:
        event = data.draw(st.sampled_from(self.applied))
        if how == "points":
            bumped = tuple(replace(p, points=p.points + 1) for p in event.postings)
            other = replace(event, postings=bumped)
        elif how == "time":
            other = replace(event, at=event.at + US)
        else:
            other = replace(event, origin=Origin(TILL.channel, "S003", "T7"))
        with pytest.raises(EventConflictError):
            self.ledger.apply(other)

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def events_are_balanced_and_unchanged(self) -> None:
        assert self.ledger.events == tuple(self.applied)
        for event in self.ledger.events:
            assert sum(p.signed for p in event.postings) == 0

    @invariant()
    def balances_are_the_fold_of_their_entries_at_every_instant(self) -> None:
        entries = [e for ev in self.applied for e in ev.entries()]
        assert sum(self.ledger.balance(a) for a in self.ledger.accounts()) == 0
        for account in self.ledger.accounts():
            mine = [e for e in entries if e.posting.account == account]
            assert self.ledger.entries(account) == tuple(mine)
            assert self.ledger.balance(account) == self.balances[account]
            for t in {e.at for e in mine}:
                for instant in (t - US, t):
                    expected = sum(e.posting.signed for e in mine if e.at <= instant)
                    assert self.ledger.balance(account, as_of=instant) == expected


LedgerMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_ledger_state_machine = LedgerMachine.TestCase
