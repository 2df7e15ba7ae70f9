"""HQ's points expiry run over many members, and what it costs ingest meanwhile (issue 11).

The ledger is built straight in SQL (a recursive CTE on SQLite, ``generate_series`` on
PostgreSQL): per member a zero opening, an earn 400 days before the run (due to expire under
a 365-day validity) and an earn 10 days before it (not due), with the accounts' balances, as
``book`` leaves them (6 entries a member). Then ``expiry_run.expire_page`` runs page after
page (``--page`` members per transaction, each page timed) while another thread ingests a
signed batch of ``points.posted`` events every ``INGEST_EVERY_S`` through its own connection
(``Ingest.handle``: what a box's batch costs at HQ), timing each. Figures: the run's time and
members/s, the worst page transaction, and ingest's worst and p99 batch latency during the
run: ingest is not blocked beyond one page's transaction when its worst is about one page.

    python -m bench.bench_ledger_expiry [--members 1000000] [--page 1000]
                                        [--backend sqlite|postgresql|both]

``make bench`` runs the defaults (1,000,000 members on SQLite). PostgreSQL uses
``STORESIDE_BENCH_PG`` (or the tests' default DSN) and a database it creates and drops.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.report import figure, percentile
from cloud_sync.contract import batch as batches
from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract import topics
from cloud_sync.contract.chain import Sealed
from cloud_sync.contract.event_envelope import Attribution, EventEnvelope, EventType
from cloud_sync.contract.topics import Channel as TopicChannel
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, Tx, open_event_store, to_micros
from cloud_sync.hq.ingest.keyring import Keyring
from cloud_sync.hq.ingest.schema import Dialect
from cloud_sync.hq.ledger import expiry_run
from cloud_sync.hq.ledger.book import codec_text
from cloud_sync.hq.ledger.openings import zero_opening
from cloud_sync.hq.store_keys import StoreKey
from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import key_id, raw_public_key
from edge_agent.domain.points import codec, kinds
from edge_agent.domain.points.accounts import MemberAccount
from edge_agent.domain.points.event import Channel, Origin
from edge_agent.sync.batch_signer import sign

NOW = datetime(2027, 4, 1, 3, 0, tzinfo=UTC)
VALIDITY = timedelta(days=365)
PROGRAMME = "main"
STORE = "store-001"
BOX = "box-0"
TILL = Origin(Channel.IN_STORE, store=STORE, till="till-1")
INGEST_EVERY_S = 0.05
INGEST_BATCH = 10  # events a batch: a store's traffic
SERVER = os.environ.get(
    "STORESIDE_BENCH_PG",
    os.environ.get("STORESIDE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
MARK = "@M@"  # where a template body holds the member id


def _templates() -> dict[str, str]:
    """Real codec texts of each built event, with the member id (and its number) as a mark."""
    account = MemberAccount(PROGRAMME, MARK)
    old = NOW - timedelta(days=400)
    young = NOW - timedelta(days=10)
    return {
        "opening": codec_text(zero_opening(account)),
        "old": codec_text(
            kinds.earn(event_id=f"old-{MARK}", at=old, origin=TILL, account=account, points=100)
        ),
        "young": codec_text(
            kinds.earn(event_id=f"young-{MARK}", at=young, origin=TILL, account=account, points=20)
        ),
    }


# (pos offset, event id prefix, kind, at, points, template) per member event
def _events() -> list[tuple[int, str, str, int, int, str]]:
    t = _templates()
    return [
        (1, "opening:main:", "opening", 0, 0, t["opening"]),
        (2, "old-", "earn", to_micros(NOW - timedelta(days=400)), 100, t["old"]),
        (3, "young-", "earn", to_micros(NOW - timedelta(days=10)), 20, t["young"]),
    ]


def build(location: str, members: int) -> None:
    """The members' ledger, in one transaction of the event store (both dialects)."""
    store = open_event_store(location)
    try:
        store.run(partial(_build, members=members))
    finally:
        store.close()
    if location.startswith("postgresql://"):
        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("ANALYZE")
    else:
        with sqlite3.connect(location) as conn:
            conn.execute("ANALYZE")


def _build(tx: Tx, *, members: int) -> None:
    if tx.dialect is Dialect.SQLITE:
        series = (
            "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s "
            f"WHERE n + 1 < {members}) "
        )
        member, overriding = "printf('m%07d', n)", ""
    else:
        series = f"WITH s(n) AS (SELECT generate_series(0, {members - 1})) "
        member, overriding = "'m' || lpad(n::text, 7, '0')", "OVERRIDING SYSTEM VALUE "
    for off, prefix, kind, at, pts, body in _events():
        opening = kind == "opening"
        event_id = f"'{prefix}' || {member}" + (" || ':regular'" if opening else "")
        channel = "hq" if opening else "in_store"
        tx.execute(
            f"{series}INSERT INTO ledger_events (pos, event_id, kind, at, programme, channel, "
            f"store_id, till_id, body, booked_at) {overriding}SELECT 3 * n + ?, {event_id}, ?, "
            f"?, 'main', ?, ?, ?, replace(?, ?, {member}), 0 FROM s",
            (off, kind, at, channel, None if opening else STORE, None if opening else "till-1",
             body, MARK),
        )  # fmt: skip
        for idx, holder, category, side, signed in (
            (0, member, "regular", "credit", pts),
            (1, "''", "liability", "debit", -pts),
        ):
            tx.execute(
                f"{series}INSERT INTO ledger_entries (pos, idx, programme, holder, category, "
                f"side, points, signed, at, kind, channel) SELECT 3 * n + ?, ?, 'main', "
                f"{holder}, ?, ?, ?, ?, ?, ?, ? FROM s",
                (off, idx, category, side, pts, signed, at, kind, channel),
            )
    tx.execute(
        f"{series}INSERT INTO ledger_accounts (programme, holder, category, balance, "
        f"opened_at, last_pos) SELECT 'main', {member}, 'regular', 120, 0, 3 * n + 3 FROM s"
    )
    tx.execute(
        "INSERT INTO ledger_accounts VALUES ('main', '', 'liability', ?, NULL, ?)",
        (-120 * members, 3 * members),
    )
    if tx.dialect is Dialect.POSTGRESQL:  # the identity continues after the rows built
        tx.query(
            "SELECT setval(pg_get_serial_sequence('ledger_events', 'pos'), "
            "(SELECT max(pos) FROM ledger_events))"
        )


class IngestLoad:
    """A box sending a small batch of points.posted events every ``INGEST_EVERY_S``."""

    def __init__(self, location: str) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.store = open_event_store(location)
        keys = [
            StoreKey(
                key_id=key_id(self.key.public_key()),
                store_id=STORE,
                public_key=token_codec.public_key_text(raw_public_key(self.key.public_key())),
                registered_at=NOW - timedelta(days=999),
                revoked_at=None,
            )
        ]
        self.ingest = Ingest(store=self.store, keyring=Keyring(lambda: keys))
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.seq = 0
        self.prev = envelope.GENESIS_HASH
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _batch(self) -> bytes:
        rows = []
        for _ in range(INGEST_BATCH):
            self.seq += 1
            at = NOW + timedelta(milliseconds=self.seq)
            member = f"m{self.seq % 1_000_000:07d}"
            ledger = kinds.earn(
                event_id=f"live-{self.seq}", at=at, origin=TILL,
                account=MemberAccount(PROGRAMME, member), points=5,
            )  # fmt: skip
            event = EventEnvelope(
                event_id=envelope.event_id(at, secrets.token_bytes(10)),
                box_id=BOX,
                seq=self.seq,
                type=EventType.POINTS_POSTED,
                occurred_at=at,
                code=None,
                attribution=Attribution(
                    store_id=STORE, till_id="till-1", cashier_id="c-1", member_id=member
                ),
                amount=0,
                details={
                    "ledger": codec.encode(ledger),
                    "lines": [],
                    "rules_version": "r1",
                    "variant": None,
                },
                prev_hash=self.prev,
            )
            sealed = Sealed.seal(event)
            self.prev = envelope.event_hash(sealed.text)
            rows.append((self.seq, sealed.text))
        kid = key_id(self.key.public_key())
        batch = batches.pack(store_id=STORE, box_id=BOX, key_id=kid, events=rows)
        return batches.encode(sign(batch, self.key))

    def _run(self) -> None:
        topic = topics.topic(STORE, BOX, TopicChannel.EVENTS)
        while not self.stop.is_set():
            data = self._batch()
            started = time.perf_counter()
            out = self.ingest.handle(topic, data, datetime.now(UTC))
            self.latencies.append(time.perf_counter() - started)
            assert out.stored == INGEST_BATCH, out
            self.stop.wait(INGEST_EVERY_S)

    @contextmanager
    def running(self) -> Iterator[IngestLoad]:
        self.thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            self.thread.join()
            self.store.close()


def expire(store: EventStore, page: int) -> tuple[expiry_run.ExpiryTally, list[float]]:
    pages: list[float] = []
    done = expiry_run.run(
        store, now=NOW, validity=VALIDITY, limit=page, progress=lambda _, s: pages.append(s)
    )
    return done, pages


def measure(name: str, location: str, members: int, page: int, build: Callable[[], None]) -> None:
    started = time.perf_counter()
    build()
    print(f"   {name}: built {members:,} members in {time.perf_counter() - started:.1f} s")
    store = open_event_store(location)
    load = IngestLoad(location)
    try:
        with load.running():
            started = time.perf_counter()
            done, pages = expire(store, page)
            elapsed = time.perf_counter() - started
    finally:
        store.close()
    assert done.expired_accounts == members and done.points == 100 * members, done
    figure(f"expiry run over {members:,} members, {name}", elapsed, "s", target="report")
    figure(f"expiry run, {name}", members / elapsed, "members/s")
    figure(f"expiry page of {page} members, {name}, worst", max(pages) * 1e3, "ms")
    waits = load.latencies
    figure(f"ingest batch during the run, {name}, p99", percentile(waits, 99) * 1e3, "ms")
    figure(
        f"ingest batch during the run, {name}, worst ({len(waits)} batches)",
        max(waits) * 1e3,
        "ms",
        target=f"<= one page ({max(pages) * 1e3:,.0f} ms) + a batch",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=expiry_run.PAGE)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    args = parser.parse_args(argv)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "events.db")
            measure("SQLite", path, args.members, args.page, partial(build, path, args.members))
    if args.backend in ("postgresql", "both"):
        name = f"storeside_bench_{secrets.token_hex(4)}"
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            url = urlunsplit((*urlsplit(SERVER)[:2], f"/{name}", "", ""))
            measure("PostgreSQL", url, args.members, args.page, partial(build, url, args.members))
        finally:
            with psycopg.connect(SERVER, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
