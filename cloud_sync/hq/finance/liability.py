"""The programme's points liability, valued: per cohort, the face value of its outstanding
points times (1 - expected breakage), the breakage at the 95th percentile liability of the
Monte-Carlo (``breakage``). Integers of minor units throughout.

Beside the valuation, what the books say: the liability account's balance (minus every point
issued and not taken back), the breakage account's (points expired, as booked) and the
members' total (what they hold, debts included). ``-(liability + breakage) == members``
always: the accounts of one programme sum to zero. The valuation counts only positive
balances (``outstanding``): a member's debt is not points anyone will redeem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cloud_sync.hq.finance.breakage import BASIS, RUNS, Forecast, forecast, read_cohorts
from cloud_sync.hq.finance.face_value import FaceValue, rounded_div
from cloud_sync.hq.ingest.event_store import Tx
from cloud_sync.hq.ledger.book import PROGRAMME_HOLDER

DEFAULT_SEED: Final = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CohortValue:
    forecast: Forecast
    face_minor: int  # face value of the outstanding points
    value_minor: int  # face_minor x (1 - breakage)


@dataclass(frozen=True, slots=True, kw_only=True)
class Liability:
    programme: str
    points_per_unit: int
    minor_per_unit: int
    runs: int
    seed: int
    liability_account: int
    breakage_account: int
    member_balances: int
    outstanding: int
    face_minor: int
    value_minor: int
    cohorts: tuple[CohortValue, ...]


def _account(tx: Tx, programme: str, category: str) -> int:
    rows = tx.query(
        "SELECT balance FROM ledger_accounts WHERE programme = ? AND holder = ? AND category = ?",
        (programme, PROGRAMME_HOLDER, category),
    )
    return int(rows[0][0]) if rows else 0


def value(
    tx: Tx,
    *,
    programme: str,
    face: FaceValue | None = None,
    seed: int = DEFAULT_SEED,
    runs: int = RUNS,
) -> Liability:
    face = face or FaceValue()
    forecasts = forecast(read_cohorts(tx, programme=programme), seed=seed, runs=runs)
    cohorts = []
    for f in forecasts:
        face_minor = face.minor(f.outstanding)
        worth = rounded_div(face_minor * (BASIS - f.breakage_bp), BASIS)
        cohorts.append(CohortValue(forecast=f, face_minor=face_minor, value_minor=worth))
    members = tx.query(
        "SELECT COALESCE(SUM(balance), 0) FROM ledger_accounts WHERE programme = ? AND holder <> ?",
        (programme, PROGRAMME_HOLDER),
    )
    return Liability(
        programme=programme,
        points_per_unit=face.points_per_unit,
        minor_per_unit=face.minor_per_unit,
        runs=runs,
        seed=seed,
        liability_account=_account(tx, programme, "liability"),
        breakage_account=_account(tx, programme, "breakage"),
        member_balances=int(members[0][0]),
        outstanding=sum(f.outstanding for f in forecasts),
        face_minor=sum(c.face_minor for c in cohorts),
        value_minor=sum(c.value_minor for c in cohorts),
        cohorts=tuple(cohorts),
    )
