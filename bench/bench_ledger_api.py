"""The ledger API's page for a member with 100,000 entries, on SQLite and on PostgreSQL.

The member's history is 100,000 earn and burn events (one entry each on the member, the
other on the programme's liability: 200,000 entries in all) spread over two years, built by
``build``: real ``LedgerEvent``s from ``kinds`` (balanced by construction, never overdrawn:
burns follow earns), their rows written in bulk as ``book`` would write them (``COPY`` on
PostgreSQL), then checked: the account's balance equals its entries' sum and its daily nets'.
Building is not timed.

What is timed is a request through the whole HTTP app (FastAPI, auth, validation, the query,
JSON), in process over httpx's ASGI transport (no sockets: the figure is the app and the
database, not loopback TCP), one request at a time, a page being the 10 entries plus the
view's closing balance:

    newest page     the default view (the last 7 days), its closing balance from the daily nets
    deep pages      cursors spread through the whole history (``from`` its first day)
    filtered page   channel + till over the last 30 days: the keyset skips what the filter
                    leaves out, and the view's own net sums the range's entries
    filtered page, whole history   the same over two years: the view's net is then a sum
                    of every entry of the member (reported, no target: the worst case)

Target (issue 11): p99 <= 20 ms on each backend.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from bench.report import figure, percentile
from cloud_sync.hq.ingest.event_store import EventStore, Tx, open_event_store, to_micros
from cloud_sync.hq.ledger.book import DAY_US, ENTRY_COLUMNS, PROGRAMME_HOLDER, book, codec_text
from cloud_sync.hq.ledger_api import operator_tokens
from cloud_sync.hq.ledger_api.app import create_app
from cloud_sync.hq.ledger_api.operator_tokens import Operators
from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import MemberAccount
from edge_agent.domain.points.admission import OverdraftPolicy
from edge_agent.domain.points.event import Channel, LedgerEvent, Origin

ENTRIES = 100_000
PROGRAMME = "main"
MEMBER = "member-heavy"
START = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)  # 100,000 events over ~694 days
TOKEN = secrets.token_urlsafe(32)
REQUESTS = 400
TILLS = [Origin(Channel.IN_STORE, store="S001", till=f"T{i}") for i in range(1, 4)] + [
    Origin(Channel.E_COMMERCE)
]
SERVER = os.environ.get(
    "STORESIDE_BENCH_PG",
    os.environ.get("STORESIDE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
EVENT_COLUMNS = (
    "event_id", "kind", "at", "programme", "channel", "store_id", "till_id", "campaign_id",
    "body", "booked_at", "box_id", "box_seq",
)  # fmt: skip


def events() -> list[LedgerEvent]:
    account = MemberAccount(PROGRAMME, MEMBER)
    rng = random.Random(5)
    out, balance = [], 0
    for i in range(ENTRIES):
        at = START + STEP * (i + 1)
        origin = TILLS[i % len(TILLS)]
        if balance >= 50 and rng.random() < 0.4:
            points = rng.randrange(1, 50)
            kind, eid = kinds.burn, f"b-{i}"
            balance -= points
        else:
            points = rng.randrange(1, 100)
            kind, eid = kinds.earn, f"e-{i}"
            balance += points
        out.append(kind(event_id=eid, at=at, origin=origin, account=account, points=points))
    return out


def build(store: EventStore, history: list[LedgerEvent]) -> None:
    """``history`` written as ``book`` writes it, in bulk, after a booked opening."""
    account = MemberAccount(PROGRAMME, MEMBER)
    opening = kinds.opening(event_id="open", at=START, origin=Origin(Channel.HQ), account=account)
    booked_at = to_micros(datetime.now(UTC))

    def write(tx: Tx) -> None:
        book(tx, opening, policy=OverdraftPolicy(), booked_at=datetime.now(UTC))
        tx.insert_many("ledger_events", EVENT_COLUMNS, [
            (e.event_id, e.kind.value, to_micros(e.at), PROGRAMME, e.origin.channel.value,
             e.origin.store, e.origin.till, None, codec_text(e), booked_at, None, None)
            for e in history
        ])  # fmt: skip
        pos = dict(tx.query("SELECT event_id, pos FROM ledger_events"))
        rows, daily, balances = [], defaultdict(int), defaultdict(int)
        for e in history:
            at = to_micros(e.at)
            for idx, p in enumerate(e.postings):
                holder = MEMBER if isinstance(p.account, MemberAccount) else PROGRAMME_HOLDER
                category = "regular" if holder else "liability"
                o = e.origin
                rows.append((pos[e.event_id], idx, PROGRAMME, holder, category, p.side.value,
                             p.points, p.signed, at, e.kind.value, o.channel.value, o.store,
                             o.till, None))  # fmt: skip
                daily[(holder, category, at // DAY_US)] += p.signed
                balances[(holder, category)] += p.signed
        tx.insert_many("ledger_entries", ENTRY_COLUMNS, rows)
        tx.execute_many(
            "INSERT INTO ledger_daily (programme, holder, category, day, net) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (programme, holder, category, day) "
            "DO UPDATE SET net = ledger_daily.net + excluded.net",
            [(PROGRAMME, h, c, d, n) for (h, c, d), n in daily.items()],
        )
        last = max(pos.values())
        tx.execute_many(
            "INSERT INTO ledger_accounts (programme, holder, category, balance, opened_at, "
            "last_pos) VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT (programme, holder, category) "
            "DO UPDATE SET balance = ledger_accounts.balance + excluded.balance, "
            "last_pos = excluded.last_pos",
            [(PROGRAMME, h, c, b, last) for (h, c), b in balances.items()],
        )

    store.run(write)

    def check(tx: Tx) -> None:
        held = tx.query("SELECT balance FROM ledger_accounts WHERE holder = ?", (MEMBER,))
        summed = tx.query(
            "SELECT SUM(signed), COUNT(*) FROM ledger_entries WHERE holder = ?", (MEMBER,)
        )
        days = tx.query("SELECT SUM(net) FROM ledger_daily WHERE holder = ?", (MEMBER,))
        total = tx.query("SELECT SUM(signed) FROM ledger_entries")
        assert int(held[0][0]) == int(summed[0][0]) == int(days[0][0]) >= 0
        assert int(summed[0][1]) == ENTRIES + 1 and int(total[0][0]) == 0

    store.run(check)


async def measure(store: EventStore) -> dict[str, list[float]]:
    end = START + STEP * (ENTRIES + 1)
    app = create_app(
        store=store, operators=Operators([operator_tokens.digest(TOKEN)]), clock=lambda: end
    )
    transport = httpx.ASGITransport(app=app)
    path = f"/v1/members/{MEMBER}/ledger"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://hq", headers=headers) as c:
        # Cursors spread through the history, gathered by walking with large strides.
        whole = {"from": START.isoformat(), "programme": PROGRAMME}
        cursors, params = [], dict(whole)
        for _ in range(200):
            body = (await c.get(path, params=params)).json()
            assert len(body["entries"]) == 10 and body["next_cursor"]
            cursors.append(body["next_cursor"])
            params = {**whole, "cursor": body["next_cursor"]}
        rng = random.Random(1)
        filtered = {
            "programme": PROGRAMME, "channel": "in_store", "till": "T2",
            "from": (end - timedelta(days=30)).isoformat(),
        }  # fmt: skip
        cases = {
            "newest page": lambda: {"programme": PROGRAMME},
            "deep pages": lambda: {**whole, "cursor": rng.choice(cursors)},
            "filtered page": lambda: filtered,
            "filtered page, whole history": lambda: {**filtered, "from": START.isoformat()},
        }
        times: dict[str, list[float]] = {}
        for name, make in cases.items():
            samples = []
            for i in range(REQUESTS + 20):
                q = make()
                t0 = time.perf_counter()
                got = await c.get(path, params=q)
                elapsed = time.perf_counter() - t0
                assert got.status_code == 200, got.text
                if i >= 20:  # warm-up
                    samples.append(elapsed)
            times[name] = samples
    return times


def report(backend: str, times: dict[str, list[float]]) -> None:
    for name, samples in times.items():
        ms = [s * 1e3 for s in samples]
        figure(f"ledger API {name} on {backend} p50", percentile(ms, 50), "ms")
        target = "" if "whole" in name else "p99 <= 20 ms"
        figure(f"ledger API {name} on {backend} p99", percentile(ms, 99), "ms", target=target)


def run(location: str, history: list[LedgerEvent]) -> dict[str, list[float]]:
    store = open_event_store(location)
    try:
        t0 = time.perf_counter()
        build(store, history)
        print(f"   built {ENTRIES:,} member entries in {time.perf_counter() - t0:.1f} s")
        return asyncio.run(measure(store))
    finally:
        store.close()


def main() -> None:
    history = events()
    with tempfile.TemporaryDirectory() as tmp:
        report("SQLite", run(str(Path(tmp) / "events.db"), history))
    name = f"storeside_bench_{secrets.token_hex(4)}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        parts = urlsplit(SERVER)
        times = run(urlunsplit((*parts[:2], f"/{name}", "", "")), history)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    report("PostgreSQL", times)


if __name__ == "__main__":
    main()
