"""Points earned and burned per campaign and per margin band, from the tills' basket lines.

Each till event's lines (``ledger_lines``: side ``earn`` or ``burn``, band A/B/C, campaign)
say what each basket line earned or burned; the event's kind says which way it went. Lines
of a refund return or a burn reversal undo what a sale did, so they count as *reversed*:

    earned          earn lines of every other event (a sale's earn)
    earn_reversed   earn lines of refund returns and corrections (points given back)
    burned          burn lines of every other event (a sale's burn)
    burn_reversed   burn lines of burn reversals, refund returns and corrections

and the net columns are the difference. The range is the events' time, ``[start, end)``.
HQ's own awards (bulk awards) carry no basket lines; they are ledger entries, in the export.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cloud_sync.hq.ingest.event_store import Tx, to_micros

_TOTALS: Final = (
    "SELECT COALESCE(l.campaign_id, ''), COALESCE(l.band, ''), l.side, "
    "CASE WHEN ev.kind IN ('refund_return', 'burn_reversal', 'correction') THEN 1 ELSE 0 END, "
    "SUM(l.points) FROM ledger_lines l JOIN ledger_events ev ON ev.pos = l.pos "
    "WHERE ev.programme = ? AND ev.at >= ? AND ev.at < ? GROUP BY 1, 2, 3, 4"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    key: str  # the campaign id ('' for none) or the band
    earned: int = 0
    earn_reversed: int = 0
    burned: int = 0
    burn_reversed: int = 0

    @property
    def net_earned(self) -> int:
        return self.earned - self.earn_reversed

    @property
    def net_burned(self) -> int:
        return self.burned - self.burn_reversed


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    programme: str
    start: datetime
    end: datetime
    campaigns: tuple[Totals, ...]
    bands: tuple[Totals, ...]


def _totals(rows: list[tuple[str, str, bool, int]]) -> tuple[Totals, ...]:
    sums: dict[str, dict[str, int]] = {}
    for key, side, reversing, points in rows:
        field = ("earn" if side == "earn" else "burn") + ("_reversed" if reversing else "")
        field = {"earn": "earned", "burn": "burned"}.get(field, field)
        bucket = sums.setdefault(key, {})
        bucket[field] = bucket.get(field, 0) + points
    return tuple(Totals(key=k, **v) for k, v in sorted(sums.items()))


def report(tx: Tx, *, programme: str, start: datetime, end: datetime) -> Report:
    rows = tx.query(_TOTALS, (programme, to_micros(start), to_micros(end)))
    by_campaign = [(str(r[0]), str(r[2]), bool(r[3]), int(r[4])) for r in rows]
    by_band = [(str(r[1]), str(r[2]), bool(r[3]), int(r[4])) for r in rows]
    return Report(
        programme=programme,
        start=start,
        end=end,
        campaigns=_totals(by_campaign),
        bands=_totals(by_band),
    )
