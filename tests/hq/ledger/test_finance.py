"""Finance on both backends: the breakage Monte-Carlo (deterministic, and sane at the
extremes), the liability's valuation in integers, per campaign and band totals, the CSV
round trip of the export."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloud_sync.hq.finance import breakage, campaign_report, entries_csv, liability
from cloud_sync.hq.finance.face_value import FaceValue, rounded_div
from cloud_sync.hq.ingest.event_store import EventStore, Tx
from cloud_sync.hq.ledger.book import book
from cloud_sync.hq.ledger_api import entries
from cloud_sync.hq.ledger_api.view import View
from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import breakage as breakage_account
from edge_agent.domain.points.accounts import liability as liability_account
from edge_agent.domain.points.admission import Admitted, OverdraftPolicy
from edge_agent.domain.points.event import LedgerEvent
from edge_agent.domain.points.expiry import expiry
from edge_agent.domain.points.ledger import Ledger
from tests.hq.ledger.history import History, build, end_of_history
from tests.points.factories import HQ, T0, TILL, P, acct

POLICY = OverdraftPolicy()
YEAR = timedelta(days=365)


def _book_all(store: EventStore, events: list[LedgerEvent], ledger: Ledger) -> None:
    for e in events:
        assert isinstance(ledger.apply(e), Admitted)

    def write(tx: Tx) -> None:
        for e in events:
            assert isinstance(book(tx, e, policy=POLICY, booked_at=T0), Admitted)

    store.run(write)


def _cohorts(store: EventStore, *, members: int, redeem: bool, month: int) -> Ledger:
    """``members`` members joining in 2025-``month``, each earning 200 and, a year later,
    burning it (``redeem``) or letting it expire; each then earns 100, outstanding."""
    ledger = Ledger(policy=POLICY)
    start = T0.replace(month=month)
    tag = f"{month}-{'r' if redeem else 'x'}"
    first: list[LedgerEvent] = []
    for i in range(members):
        a = acct(f"m{tag}-{i}")
        first += [
            kinds.opening(event_id=f"o{tag}-{i}", at=start, origin=HQ, account=a),
            kinds.earn(event_id=f"e{tag}-{i}", at=start, origin=TILL, account=a, points=200),
        ]
    _book_all(store, first, ledger)
    later: list[LedgerEvent] = []
    for i in range(members):
        a = acct(f"m{tag}-{i}")
        at = start + YEAR + timedelta(days=1)
        if redeem:
            later.append(
                kinds.burn(event_id=f"b{tag}-{i}", at=at, origin=TILL, account=a, points=200)
            )
        else:
            gone = expiry(event_id=f"x{tag}-{i}", now=at, origin=HQ, account=a,
                          entries=ledger.entries(a), validity=YEAR)  # fmt: skip
            assert gone is not None
            later.append(gone)
        later.append(kinds.earn(event_id=f"n{tag}-{i}", at=at, origin=TILL, account=a, points=100))
    _book_all(store, later, ledger)
    return ledger


def test_breakage_is_near_one_for_a_cohort_that_never_redeems_near_zero_for_one_that_does(
    store: EventStore,
) -> None:
    _cohorts(store, members=200, redeem=False, month=1)
    _cohorts(store, members=200, redeem=True, month=2)
    cohorts = store.run(lambda tx: breakage.read_cohorts(tx, programme=P))
    assert [(c.month, c.members, c.outstanding) for c in cohorts] == [
        ("2025-01", 200, 20_000), ("2025-02", 200, 20_000),
    ]  # fmt: skip
    never, always = breakage.forecast(cohorts, seed=7)
    assert (never.burned, never.expired, always.burned, always.expired) == (0, 40_000, 40_000, 0)
    assert never.breakage_bp >= 9_500 and never.observed_redemption_bp == 0
    assert always.breakage_bp <= 500 and always.observed_redemption_bp == 10_000
    # The prudent end: the 95th percentile liability is at least the mean's.
    assert never.breakage_bp <= never.mean_breakage_bp
    assert always.breakage_bp <= always.mean_breakage_bp


def test_a_refund_that_gives_burned_points_back_is_a_burn_undone(store: EventStore) -> None:
    """A till's partial return: 125 burned, 50 of them given back with 60 earned taken back;
    the cohort burned 75 (the campaign report's net burn), not 125."""
    a = acct("returner")
    at = T0 + timedelta(hours=1)
    _book_all(
        store,
        [
            kinds.opening(event_id="o", at=T0, origin=HQ, account=a),
            kinds.earn(event_id="e", at=T0, origin=TILL, account=a, points=200),
            kinds.burn(event_id="b", at=at, origin=TILL, account=a, points=125),
            kinds.refund_return(event_id="r", at=at, origin=TILL, account=a, returned=60,
                                restored=50),
        ],
        Ledger(policy=POLICY),
    )  # fmt: skip
    (cohort,) = store.run(lambda tx: breakage.read_cohorts(tx, programme=P))
    assert (cohort.burned, cohort.expired, cohort.outstanding) == (75, 0, 65)


def test_the_monte_carlo_is_deterministic_for_a_seed(store: EventStore, history: History) -> None:
    del history
    cohorts = store.run(lambda tx: breakage.read_cohorts(tx, programme=P))
    assert cohorts and all(c.outstanding > 0 for c in cohorts)
    first = breakage.forecast(cohorts, seed=42)
    assert breakage.forecast(cohorts, seed=42) == first
    others = {
        tuple(f.mean_breakage_bp for f in breakage.forecast(cohorts, seed=s)) for s in range(8)
    }
    assert len(others) > 1  # the seed matters: the draws are not constant
    # A cohort's forecast does not depend on the other cohorts.
    assert breakage.forecast(cohorts[-1:], seed=42) == first[-1:]


@pytest.fixture
def history(store: EventStore) -> History:
    return build(store)


def test_the_liability_is_face_value_times_one_minus_breakage(
    store: EventStore, history: History
) -> None:
    face = FaceValue(points_per_unit=80, minor_per_unit=100)
    got = store.run(lambda tx: liability.value(tx, programme=P, face=face, seed=3))
    ledger = history.ledger
    assert got.liability_account == ledger.balance(liability_account(P))
    assert got.breakage_account == ledger.balance(breakage_account(P))
    assert -(got.liability_account + got.breakage_account) == got.member_balances
    held = [b for m in ("ann", "bob", "cy") for b in ledger.member_balances(P, m).values()]
    assert got.member_balances == sum(held)
    assert got.outstanding == sum(c.forecast.outstanding for c in got.cohorts)
    for c in got.cohorts:
        assert c.face_minor == rounded_div(c.forecast.outstanding * 100, 80)
        assert c.value_minor == rounded_div(
            c.face_minor * (10_000 - c.forecast.breakage_bp), 10_000
        )
    assert got.value_minor == sum(c.value_minor for c in got.cohorts) <= got.face_minor
    assert (got.runs, got.seed) == (1_000, 3)


def test_face_value_rounds_half_to_even() -> None:
    assert [FaceValue().minor(p) for p in (0, 1, 150, 250)] == [0, 1, 150, 250]
    half = FaceValue(points_per_unit=200, minor_per_unit=1)
    assert [half.minor(p) for p in (100, 300, 101, 299)] == [0, 2, 1, 1]
    with pytest.raises(ValueError, match="points_per_unit"):
        FaceValue(points_per_unit=0)


def test_points_per_campaign_and_band(store: EventStore, history: History) -> None:
    def lines(tx: Tx) -> None:
        pos = {str(r[1]): int(r[0]) for r in tx.query("SELECT pos, kind FROM ledger_events")}
        earn, burn, refund = pos["earn"], pos["burn"], pos["refund_return"]
        tx.insert_many(
            "ledger_lines",
            ("pos", "line", "side", "band", "campaign_id", "points"),
            [
                (earn, 0, "earn", "A", "SPRING", 50),
                (earn, 1, "earn", "C", None, 0),
                (earn, 2, "earn", "B", "SPRING", 7),
                (burn, 0, "burn", "C", None, 30),
                (burn, 1, "burn", "A", "SPRING", 4),
                (refund, 0, "earn", "A", "SPRING", 20),
                (refund, 0, "burn", "C", None, 10),
            ],
        )

    store.run(lines)
    end = end_of_history(history) + timedelta(seconds=1)
    got = store.run(lambda tx: campaign_report.report(tx, programme=P, start=T0, end=end))
    campaigns = {t.key: t for t in got.campaigns}
    assert campaigns["SPRING"] == campaign_report.Totals(
        key="SPRING", earned=57, earn_reversed=20, burned=4
    )
    assert campaigns[""] == campaign_report.Totals(key="", earned=0, burned=30, burn_reversed=10)
    bands = {t.key: (t.net_earned, t.net_burned) for t in got.bands}
    assert bands == {"A": (30, 4), "B": (7, 0), "C": (0, 20)}
    empty = store.run(lambda tx: campaign_report.report(tx, programme=P, start=end, end=end + YEAR))
    assert empty.campaigns == empty.bands == ()


def test_the_csv_export_round_trips(store: EventStore, history: History) -> None:
    view = View.of(programme=P, holder=None, now=end_of_history(history) + YEAR, start=T0)
    every = list(entries.walk(store, view))
    text = "".join(entries_csv.lines(every))
    assert text.startswith(",".join(entries_csv.COLUMNS) + "\r\n")
    assert entries_csv.parse(text) == every
    assert len(every) == sum(len(e.postings) for e in history.booked)
    for bad in ("", "entry_id\r\n", text.replace("credit", "sideways", 1)):
        with pytest.raises(entries_csv.CsvFormatError):
            entries_csv.parse(bad)
