"""What other stores' boxes must count of each redemption and return HQ stores.

Theory of operation
-------------------
Ingest queues every stored ``code.redeemed`` and ``code.reversed`` (``fanout_queue``, in the
transaction that stores the event, so none is missed and none queued twice). ``take`` reads a
page of the queue with its events, folds each into the running per-box totals
(``code_box_use``, ``campaign_box_use``), deletes the rows it took and answers one change per
total that moved, all in the caller's transaction: the totals, the queue and the deltas made
of these changes commit together, so a crash re-does the page from the queue, never half of it.

Changes carry totals, not steps (``delta.py``): a box replaces its row per (code, box) and
(campaign, box), so a delta applied twice, or the same total sent in two deltas, is harmless.
A redemption counts one use and its discount; a full return gives the use back and a partial
one only money (the till's own rule, ``edge_agent/redemption/reversals.py``). A code's last
redemption is the latest redeemed event of the box; after a full return the box's count may be
0, and a box then ignores that row. A return with no redemption of its code at that box (it
cannot happen: a till returns only its own store's sale) changes no total.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from cloud_sync.contract.delta import Change, Op
from cloud_sync.contract.event_envelope import EventType
from cloud_sync.hq.ingest.event_store import Tx, from_micros

PAGE: Final = 5_000  # events folded per step: bounds one transaction's work
_PAGE_SQL: Final = (
    "SELECT e.box_id, e.seq, e.store_id, e.type, e.code, e.occurred_at, e.till_id, e.amount, "
    "e.body FROM fanout_queue AS q JOIN events AS e ON e.box_id = q.box_id AND e.seq = q.seq "
    "ORDER BY q.box_id, q.seq LIMIT ?"
)
_CODE_UPSERT: Final = (
    "INSERT INTO code_box_use (code, box_id, store_id, uses, last_at, till_id, transaction_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code, box_id) DO UPDATE SET "
    "uses = excluded.uses, last_at = excluded.last_at, till_id = excluded.till_id, "
    "transaction_id = excluded.transaction_id"
)
_CAMPAIGN_UPSERT: Final = (
    "INSERT INTO campaign_box_use (campaign_id, box_id, store_id, redemptions, discount) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (campaign_id, box_id) DO UPDATE SET "
    "redemptions = excluded.redemptions, discount = excluded.discount"
)


@dataclass(slots=True, kw_only=True)
class _CodeUse:
    store_id: str
    uses: int
    last_at: int  # UTC epoch microseconds; 0: no redemption seen
    till_id: str | None
    transaction_id: str | None


@dataclass(slots=True, kw_only=True)
class _CampaignUse:
    store_id: str
    redemptions: int
    discount: int


def take(tx: Tx, *, limit: int = PAGE) -> list[Change]:
    """Fold up to ``limit`` queued events into the totals; the changes of every total moved."""
    rows = tx.query(_PAGE_SQL, (limit,))
    if not rows:
        return []
    events = [(row, _body(row[8])) for row in rows]
    codes = _code_totals(tx, {(str(r[4]), str(r[0])) for r, _ in events if r[4] is not None})
    campaigns = _campaign_totals(
        tx, {(str(b["campaign_id"]), str(r[0])) for r, b in events if b.get("campaign_id")}
    )
    for row, body in events:
        _fold(row, body, codes, campaigns)
    tx.execute_many("DELETE FROM fanout_queue WHERE box_id = ? AND seq = ?", [r[:2] for r in rows])
    changes: list[Change] = []
    code_rows = []
    for (code, box), use in sorted(codes.items()):
        if use.last_at == 0:
            continue  # only a return here: nothing to say
        code_rows.append(
            (code, box, use.store_id, use.uses, use.last_at, use.till_id, use.transaction_id)
        )
        changes.append(
            Change(
                op=Op.CODE_REDEEMED_ELSEWHERE,
                fields={
                    "code": code,
                    "store_id": use.store_id,
                    "box_id": box,
                    "till_id": use.till_id,
                    "transaction_id": use.transaction_id,
                    "at": from_micros(use.last_at),
                    "uses": use.uses,
                },
            )
        )
    tx.execute_many(_CODE_UPSERT, code_rows)
    campaign_rows = []
    for (campaign, box), c in sorted(campaigns.items()):
        campaign_rows.append((campaign, box, c.store_id, c.redemptions, c.discount))
        changes.append(
            Change(
                op=Op.CAMPAIGN_USED_ELSEWHERE,
                fields={
                    "campaign_id": campaign,
                    "store_id": c.store_id,
                    "box_id": box,
                    "redemptions": c.redemptions,
                    "discount": c.discount,
                },
            )
        )
    tx.execute_many(_CAMPAIGN_UPSERT, campaign_rows)
    return changes


def _body(text: object) -> dict[str, Any]:
    doc = json.loads(str(text))  # an event ingest verified and stored: an object
    return doc if isinstance(doc, dict) else {}


def _fold(
    row: tuple[Any, ...],
    body: dict[str, Any],
    codes: dict[tuple[str, str], _CodeUse],
    campaigns: dict[tuple[str, str], _CampaignUse],
) -> None:
    box, _seq, store, kind, code, occurred_at, till, amount, _ = row
    box, store = str(box), str(store)
    campaign = body.get("campaign_id")
    redeemed = kind == EventType.REDEEMED.value
    details = body.get("details")
    full = redeemed or (isinstance(details, dict) and details.get("fully_reversed") is True)
    if code is not None:
        use = codes.setdefault(
            (str(code), box),
            _CodeUse(store_id=store, uses=0, last_at=0, till_id=None, transaction_id=None),
        )
        if redeemed:
            use.uses += 1
            if int(occurred_at) >= use.last_at:
                use.last_at = int(occurred_at)
                use.till_id = str(till) or None
                txn = body.get("transaction_id")
                use.transaction_id = txn if isinstance(txn, str) and txn else None
        elif full:
            use.uses = max(0, use.uses - 1)
    if isinstance(campaign, str) and campaign:
        spent = campaigns.setdefault(
            (campaign, box), _CampaignUse(store_id=store, redemptions=0, discount=0)
        )
        step = 1 if redeemed else -1
        spent.redemptions = max(0, spent.redemptions + (step if full else 0))
        spent.discount = max(0, spent.discount + step * int(amount))


def _code_totals(tx: Tx, keys: set[tuple[str, str]]) -> dict[tuple[str, str], _CodeUse]:
    found: dict[tuple[str, str], _CodeUse] = {}
    for code, box in sorted(keys):
        rows = tx.query(
            "SELECT store_id, uses, last_at, till_id, transaction_id FROM code_box_use "
            "WHERE code = ? AND box_id = ?",
            (code, box),
        )
        if rows:
            store, uses, last_at, till, txn = rows[0]
            found[(code, box)] = _CodeUse(
                store_id=str(store),
                uses=int(uses),
                last_at=int(last_at),
                till_id=till,
                transaction_id=txn,
            )
    return found


def _campaign_totals(tx: Tx, keys: set[tuple[str, str]]) -> dict[tuple[str, str], _CampaignUse]:
    found: dict[tuple[str, str], _CampaignUse] = {}
    for campaign, box in sorted(keys):
        rows = tx.query(
            "SELECT store_id, redemptions, discount FROM campaign_box_use "
            "WHERE campaign_id = ? AND box_id = ?",
            (campaign, box),
        )
        if rows:
            store, redemptions, discount = rows[0]
            found[(campaign, box)] = _CampaignUse(
                store_id=str(store), redemptions=int(redemptions), discount=int(discount)
            )
    return found
