"""The breakage forecast: the share of each cohort's outstanding points that will never be
redeemed, by a Monte-Carlo of the cohort's members, taken at the 95th percentile liability.

Theory of operation
-------------------
A **cohort** is the UTC month of a member's first credit of points (their first earn,
award, import or transfer received; an opening of zero is no credit): members who joined
together age together, and their history says how such members treat their points.

The **history** of a cohort is what its members' points became once they were resolved:
``burned`` (burns less burn reversals and the burned points a refund gives back) and
``expired`` (expiry entries). Its observed
redemption rate is ``r = burned / (burned + expired)``. How much to trust ``r`` depends on how
many members it comes from, not on how many points (a few heavy members must not make it
look certain), so the evidence is ``n``, the members with any burn or expiry: the chance
``p`` that a member redeems their outstanding balance before it expires has the posterior
``Beta(r n + 1, (1 - r) n + 1)`` (a uniform prior: a cohort with no history at all is an even
chance, with wide uncertainty).

Each **run** draws ``p`` from that posterior, then lets each member with a positive balance
``b_i`` redeem it all (probability ``p``) or none: the run's liability is the sum of the
redeemed balances. This carries both the uncertainty of ``p`` and the lumpiness of a cohort
whose points sit with a few members. Over ``runs`` runs (1,000 by default) the forecast
takes the 95th percentile of the liability, the prudent end (DOMAIN.md section 5: too much
breakage would book revenue that may still be redeemed), and reports breakage as
``1 - liability_p95 / outstanding`` in integer basis points, rounded down (prudent again).

Members with a zero or negative balance owe nothing to the forecast: a debt is not points
to redeem. Everything is deterministic for a given ``seed``: each cohort's generator is
seeded by ``(seed, year, month)``, so one cohort's forecast does not change when another
cohort's members do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import numpy as np

from cloud_sync.hq.ingest.event_store import Tx, from_micros

RUNS: Final = 1_000
PERCENTILE: Final = 95
BASIS: Final = 10_000  # basis points in one
_CHUNK: Final = 2_048  # members drawn at once: runs x chunk uniforms in memory


@dataclass(frozen=True, slots=True, kw_only=True)
class Cohort:
    month: str  # "YYYY-MM"
    members: int
    burned: int
    expired: int
    resolved_members: int  # members with any burn or expiry: the evidence
    balances: tuple[int, ...] = field(repr=False)  # positive balances, one per member

    @property
    def outstanding(self) -> int:
        return sum(self.balances)


@dataclass(frozen=True, slots=True, kw_only=True)
class Forecast:
    month: str
    members: int
    outstanding: int
    burned: int
    expired: int
    observed_redemption_bp: int | None  # r in basis points; None without history
    liability_p95: int  # points
    breakage_bp: int  # 1 - liability_p95 / outstanding, basis points, rounded down
    mean_breakage_bp: int  # over the runs, for comparison


def month_of(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def read_cohorts(tx: Tx, *, programme: str) -> list[Cohort]:
    """Every cohort of ``programme`` with its members' balances and history."""
    firsts = tx.query(
        "SELECT holder, MIN(at) FROM ledger_entries WHERE programme = ? AND holder <> '' "
        "AND side = 'credit' AND points > 0 GROUP BY holder",
        (programme,),
    )
    held: dict[str, int] = dict(
        tx.query(
            "SELECT holder, SUM(balance) FROM ledger_accounts WHERE programme = ? "
            "AND holder <> '' GROUP BY holder",
            (programme,),
        )
    )
    resolved: dict[str, tuple[int, int]] = {}
    for holder, burned, expired in tx.query(
        "SELECT holder, "
        # A refund's credit gives back points the sale burned: a burn undone, as the
        # campaign report counts it (its debit takes back earned points: no burn at all).
        "SUM(CASE WHEN kind = 'burn' THEN points WHEN kind = 'burn_reversal' THEN -points "
        "WHEN kind = 'refund_return' AND side = 'credit' THEN -points ELSE 0 END), "
        "SUM(CASE kind WHEN 'expiry' THEN points ELSE 0 END) "
        "FROM ledger_entries WHERE programme = ? AND holder <> '' "
        "AND kind IN ('burn', 'burn_reversal', 'refund_return', 'expiry') GROUP BY holder",
        (programme,),
    ):
        resolved[str(holder)] = (int(burned), int(expired))
    by_month: dict[str, list[str]] = {}
    for holder, first in firsts:
        by_month.setdefault(month_of(from_micros(int(first))), []).append(str(holder))
    cohorts = []
    for month, members in sorted(by_month.items()):
        history = [resolved.get(m, (0, 0)) for m in members]
        cohorts.append(
            Cohort(
                month=month,
                members=len(members),
                burned=max(0, sum(b for b, _ in history)),
                expired=sum(e for _, e in history),
                resolved_members=sum(1 for b, e in history if b > 0 or e > 0),
                balances=tuple(int(held[m]) for m in sorted(members) if int(held.get(m) or 0) > 0),
            )
        )
    return cohorts


def _seed(seed: int, month: str) -> list[int]:
    year, mon = month.split("-")
    return [seed, int(year), int(mon)]


def forecast_cohort(
    cohort: Cohort, *, seed: int, runs: int = RUNS, percentile: int = PERCENTILE
) -> Forecast:
    rng = np.random.default_rng(_seed(seed, cohort.month))
    resolved = cohort.burned + cohort.expired
    rate = cohort.burned / resolved if resolved else 0.5
    n = cohort.resolved_members if resolved else 0
    p = rng.beta(rate * n + 1.0, (1.0 - rate) * n + 1.0, size=runs)
    balances = np.asarray(cohort.balances, dtype=np.int64)
    liability = np.zeros(runs, dtype=np.int64)
    for start in range(0, len(balances), _CHUNK):
        block = balances[start : start + _CHUNK]
        redeems = rng.random((runs, len(block))) < p[:, None]
        liability += redeems.astype(np.int64) @ block
    outstanding = cohort.outstanding
    p95 = int(np.percentile(liability, percentile, method="higher")) if runs else outstanding
    if outstanding:
        breakage_bp = (outstanding - p95) * BASIS // outstanding
        mean_bp = int((outstanding - float(liability.mean())) * BASIS / outstanding)
    else:
        breakage_bp = mean_bp = 0
    return Forecast(
        month=cohort.month,
        members=cohort.members,
        outstanding=outstanding,
        burned=cohort.burned,
        expired=cohort.expired,
        observed_redemption_bp=cohort.burned * BASIS // resolved if resolved else None,
        liability_p95=p95,
        breakage_bp=breakage_bp,
        mean_breakage_bp=mean_bp,
    )


def forecast(
    cohorts: Sequence[Cohort], *, seed: int, runs: int = RUNS, percentile: int = PERCENTILE
) -> list[Forecast]:
    return [forecast_cohort(c, seed=seed, runs=runs, percentile=percentile) for c in cohorts]
