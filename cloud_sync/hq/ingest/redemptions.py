"""Cross-store double redemption: one code used more often than it allows, by several boxes.

Theory of operation
-------------------
A box enforces a code's per-code use limit against its own cache, so two boxes offline at
the same time can each accept the code's last use: neither can know. HQ is the first place
that sees both, so it reports them (it cannot refuse what a till already gave). A
``code.redeemed`` event carries the code's limit as ``details["use_limit"]`` (an int; absent
when the code has none, and then there is nothing to exceed).

After a transaction stores redemptions (once per group of batches, ``stream.py``), ``check``
counts, for every code among them that carries a limit, all redemptions of the code HQ holds
across the fleet. When the count is over the limit and they come from at least two boxes, the
code's conflict is recorded (one row per code, rewritten with every redemption's attribution as
more arrive), so it is found when the second event arrives, whichever box it is from.
Redemptions from a single box over its limit are that box's own fault, not a conflict between
stores; voids and reversals are not netted off, because the discount was given at the till
either way.

Counting under concurrency: the codes are locked (``Tx.lock_keys``, sorted) after the insert
and before the count, so of two transactions storing redemptions of one code from two boxes,
the one that counts second sees the first one's committed row (PostgreSQL, READ COMMITTED);
SQLite has one writer, so the question does not arise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from cloud_sync.contract.chain import Sealed
from cloud_sync.contract.event_envelope import EventType
from cloud_sync.hq.ingest.event_store import Tx, from_micros, to_micros

KIND: Final = "double_redemption"
_UPSERT: Final = (
    "INSERT INTO conflicts (conflict_key, kind, code, box_id, seq, detected_at, updated_at, "
    "detail) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?) ON CONFLICT (conflict_key) DO UPDATE "
    "SET detail = excluded.detail, updated_at = excluded.updated_at"
)
_COLUMNS: Final = (
    "store_id",
    "box_id",
    "till_id",
    "cashier_id",
    "member_id",
    "event_id",
    "seq",
    "occurred_at",
)


def limited_codes(events: Iterable[Sealed]) -> dict[str, int]:
    """The codes redeemed in ``events`` that carry a use limit, with that limit."""
    limits: dict[str, int] = {}
    for sealed in events:
        event = sealed.event
        limit = event.details.get("use_limit")
        if event.type is EventType.REDEEMED and event.code is not None and type(limit) is int:
            limits[event.code] = limit
    return limits


def check(tx: Tx, limits: dict[str, int], *, at: datetime) -> list[str]:
    """Record the conflicts of ``limits``' codes (see the module docstring); their codes."""
    if not limits:
        return []
    codes = sorted(limits)
    tx.lock_keys([f"code:{code}" for code in codes])
    marks = ", ".join("?" * len(codes))
    rows = tx.query(
        f"SELECT code, {', '.join(_COLUMNS)} FROM events "  # noqa: S608 (our names and marks)
        f"WHERE type = 'code.redeemed' AND code IN ({marks}) ORDER BY occurred_at, box_id, seq",
        codes,
    )
    by_code: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_code.setdefault(str(row[0]), []).append(row[1:])
    found: list[str] = []
    when = to_micros(at)
    for code in codes:
        uses = by_code.get(code, [])
        # Columns: store_id, box_id, ...; most codes are used once, so count before building.
        if len(uses) > limits[code] and len({u[1] for u in uses}) >= 2:
            detail = {
                "code": code,
                "use_limit": limits[code],
                "redemptions": [_attribution(u) for u in uses],
            }
            tx.execute(
                _UPSERT,
                (f"redemption:{code}", KIND, code, when, when, json.dumps(detail, sort_keys=True)),
            )
            found.append(code)
    return found


def _attribution(values: tuple[Any, ...]) -> dict[str, object]:
    use = dict(zip(_COLUMNS, values, strict=True))
    use["occurred_at"] = from_micros(int(values[-1])).isoformat()
    return use
