"""What HQ's operators read from the event store: the fleet, events, conflicts, quarantine.

Each view is a dataclass and a function over the store: the CLI (``commands.py``) prints it
as a table or as JSON through one pydantic ``TypeAdapter`` (one definition of each shape),
and the tests read the same functions. Reads run in a transaction of their own, so a view is
one consistent moment even while workers write.

The fleet joins what HQ stored (the stream heads: ``stored_through``, parked batches and the
holes below them) with what the boxes say (the retained state and the latest health): lag is
``health.next_seq - 1 - stored_through``, the events the box has written that HQ does not
hold yet, as of the box's last health message. The health also says which of HQ's config
versions the box runs and what came of the last push (``presence.ConfigHealth``; unknown for
a box whose health predates config push).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cloud_sync.contract import presence
from cloud_sync.contract.ack import SeqRange
from cloud_sync.contract.message_codec import MessageError
from cloud_sync.hq.ingest.event_store import EventStore, Row, Tx, from_micros, to_micros
from cloud_sync.hq.ingest.ranges import missing_ranges


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetRow:
    box_id: str
    store_id: str
    state: str | None  # online / offline from the retained state; None: never seen
    session: int | None
    last_seen: datetime | None  # the last state, health or batch HQ received
    outbox_depth: int | None  # from the latest health
    oldest_unsent_at: datetime | None
    stored_through: int
    lag: int | None  # None: no health yet
    parked: int  # batches waiting beyond a hole
    missing: tuple[SeqRange, ...]
    deltas_behind: int | None = None  # its store's delta head minus its cache's watermark
    needs_snapshot: bool = False  # its cache follows another stream, or none
    # HQ's config on the box, from the latest health (all None: no health, or none pushed)
    config_version: int | None = None  # the pushed version it runs
    config_outcome: str | None = None  # what came of the last push (config_result.Outcome)
    config_outcome_version: int | None = None  # the version that outcome is about
    devices_state: str | None = None  # its BLE scanners and NFC readers (health v3)


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    box_id: str
    seq: int
    event_id: str
    store_id: str
    type: str
    code: str | None
    occurred_at: datetime
    till_id: str
    cashier_id: str
    member_id: str | None
    amount: int
    body: str  # exactly as the box stored it


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFilter:
    store_id: str | None = None
    box_id: str | None = None
    code: str | None = None
    type: str | None = None
    since: datetime | None = None  # occurred_at >= since
    until: datetime | None = None  # occurred_at < until
    limit: int = 1_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ConflictRow:
    kind: str  # double_redemption or conflicting_event
    code: str | None
    box_id: str | None
    seq: int | None
    detected_at: datetime
    updated_at: datetime
    detail: dict[str, Any]  # the redemptions' attribution, or the two hashes


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineRow:
    first_received_at: datetime
    last_received_at: datetime
    times: int
    topic: str
    store_id: str | None
    box_id: str | None
    reason: str
    detail: str
    payload_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainBreakRow:
    box_id: str
    seq: int
    fault: str
    detail: str
    detected_at: datetime


def _time(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(int(micros))


def fleet(store: EventStore) -> list[FleetRow]:
    def read(tx: Tx) -> list[FleetRow]:
        heads = {
            str(r[0]): r
            for r in tx.query("SELECT box_id, store_id, stored_through, last_batch_at FROM streams")
        }
        seen = {
            str(r[0]): r
            for r in tx.query(
                "SELECT box_id, store_id, state, session, state_at, health, health_at FROM presence"
            )
        }
        # Where each box's cache stands in its store's delta stream (the fan-out's tables).
        follows = {
            str(r[0]): r
            for r in tx.query(
                "SELECT p.box_id, p.store_id, p.stream, p.watermark, h.stream, h.seq "
                "FROM box_positions AS p LEFT JOIN delta_heads AS h ON h.store_id = p.store_id"
            )
        }
        parked: dict[str, list[tuple[int, int]]] = {}
        for box, first, last in tx.query("SELECT box_id, first_seq, last_seq FROM parked"):
            parked.setdefault(str(box), []).append((int(first), int(last)))
        rows = []
        for box in sorted(heads.keys() | seen.keys() | follows.keys()):
            head, here, follow = heads.get(box), seen.get(box), follows.get(box)
            through = 0 if head is None else int(head[2])
            health = None
            if here is not None and here[5] is not None:
                try:
                    health = presence.decode_health(str(here[5]))
                except MessageError:  # stored after it decoded; a newer reader's problem
                    health = None
            times = [
                t
                for t in (
                    None if head is None else head[3],
                    None if here is None else here[4],
                    None if here is None else here[6],
                )
                if t is not None
            ]
            rows.append(
                FleetRow(
                    box_id=box,
                    store_id=str(_first_store(head, here, follow)),
                    state=None if here is None else here[2],
                    session=None if here is None else here[3],
                    last_seen=_time(max(times)) if times else None,
                    outbox_depth=None if health is None else health.outbox_depth,
                    oldest_unsent_at=None if health is None else health.oldest_unsent_at,
                    stored_through=through,
                    lag=None if health is None else health.next_seq - 1 - through,
                    parked=len(parked.get(box, [])),
                    missing=missing_ranges(through, parked.get(box, [])),
                    **_delta_lag(follow),
                    **_config(health),
                )
            )
        return rows

    return store.read(read)


def _first_store(*rows: Row | None) -> object:
    return next(r[1] for r in rows if r is not None)


def _config(health: presence.Health | None) -> dict[str, Any]:
    """The ``config_`` fields and the devices state of a box's row, from its latest health."""
    if health is None:
        return {}
    c = health.config
    return {
        "config_version": c.version,
        "config_outcome": None if c.outcome is None else c.outcome.value,
        "config_outcome_version": c.outcome_version,
        "devices_state": health.devices_state,
    }


def _delta_lag(follow: Row | None) -> dict[str, Any]:
    """``deltas_behind`` and ``needs_snapshot`` of a box's position row (none: unknown)."""
    if follow is None:
        return {}
    _, _, stream, watermark, head_stream, head_seq = follow
    if head_stream is None:
        return {"deltas_behind": 0}  # no delta made for its store yet
    if stream != head_stream:
        return {"needs_snapshot": True}
    return {"deltas_behind": max(0, int(head_seq) - int(watermark))}


_EVENT_COLUMNS: Final = (
    "box_id, seq, event_id, store_id, type, code, occurred_at, till_id, cashier_id, "
    "member_id, amount, body"
)


def events(store: EventStore, where: EventFilter = EventFilter()) -> list[EventRow]:
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (
        ("store_id", where.store_id),
        ("box_id", where.box_id),
        ("code", where.code),
        ("type", where.type),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.since is not None:
        clauses.append("occurred_at >= ?")
        params.append(to_micros(where.since))
    if where.until is not None:
        clauses.append("occurred_at < ?")
        params.append(to_micros(where.until))
    sql = f"SELECT {_EVENT_COLUMNS} FROM events"  # noqa: S608 (our column names)
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY occurred_at, box_id, seq LIMIT ?"
    params.append(where.limit)

    def read(tx: Tx) -> list[EventRow]:
        return [
            EventRow(
                box_id=r[0],
                seq=int(r[1]),
                event_id=r[2],
                store_id=r[3],
                type=r[4],
                code=r[5],
                occurred_at=from_micros(int(r[6])),
                till_id=r[7],
                cashier_id=r[8],
                member_id=r[9],
                amount=int(r[10]),
                body=r[11],
            )
            for r in tx.query(sql, params)
        ]

    return store.read(read)


def event_count(store: EventStore, box_id: str | None = None) -> int:
    sql, params = "SELECT count(*) FROM events", ()
    if box_id is not None:
        sql, params = sql + " WHERE box_id = ?", (box_id,)  # type: ignore[assignment]
    return int(store.read(lambda tx: tx.query(sql, params))[0][0])


def conflicts(store: EventStore) -> list[ConflictRow]:
    rows = store.read(
        lambda tx: tx.query(
            "SELECT kind, code, box_id, seq, detected_at, updated_at, detail FROM conflicts "
            "ORDER BY detected_at, id"
        )
    )
    return [
        ConflictRow(
            kind=r[0],
            code=r[1],
            box_id=r[2],
            seq=None if r[3] is None else int(r[3]),
            detected_at=from_micros(int(r[4])),
            updated_at=from_micros(int(r[5])),
            detail=json.loads(r[6]),
        )
        for r in rows
    ]


def quarantined(store: EventStore, *, limit: int = 1_000) -> list[QuarantineRow]:
    rows = store.read(
        lambda tx: tx.query(
            "SELECT first_received_at, last_received_at, times, topic, store_id, box_id, "
            "reason, detail, payload_size FROM quarantine ORDER BY last_received_at DESC, id "
            "LIMIT ?",
            (limit,),
        )
    )
    return [
        QuarantineRow(
            first_received_at=from_micros(int(r[0])),
            last_received_at=from_micros(int(r[1])),
            times=int(r[2]),
            topic=r[3],
            store_id=r[4],
            box_id=r[5],
            reason=r[6],
            detail=r[7],
            payload_size=int(r[8]),
        )
        for r in rows
    ]


def chain_breaks(store: EventStore) -> list[ChainBreakRow]:
    rows = store.read(
        lambda tx: tx.query(
            "SELECT box_id, seq, fault, detail, detected_at FROM chain_breaks "
            "ORDER BY detected_at, box_id, seq"
        )
    )
    return [
        ChainBreakRow(
            box_id=r[0], seq=int(r[1]), fault=r[2], detail=r[3], detected_at=from_micros(int(r[4]))
        )
        for r in rows
    ]


def store_of(store: EventStore, box_id: str) -> str | None:
    """The store a box streams to HQ as (or last said it belongs to), if HQ knows the box."""
    rows = store.read(
        lambda tx: tx.query(
            "SELECT store_id FROM streams WHERE box_id = ? UNION ALL "
            "SELECT store_id FROM presence WHERE box_id = ?",
            (box_id, box_id),
        )
    )
    return None if not rows else str(rows[0][0])
