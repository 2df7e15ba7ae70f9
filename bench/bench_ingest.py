"""HQ's ingest: 100,000 events through the ingest core into SQLite and into PostgreSQL.

The events are what a box sends: four boxes of one store, each a chained stream of ~500-byte
redemption events (a code each, with its use limit, so the double-redemption check runs on
every one), packed into batches as the box packs its outbox (``batch.pack`` defaults: 256
KiB, ~500 events a batch) and signed with the store key. Building and signing the batches is
the boxes' work and is done before the clock starts; what is timed is ``Ingest.handle`` on
every payload, in the order the boxes' batches interleave: topic, decode and every event's
checks, the signature, one transaction per batch under the box's lock (chain, duplicate
and event-id checks, the insert, the redemption count), commit (SQLite: WAL,
``synchronous = FULL``; PostgreSQL: the local server, a database the bench creates and drops,
``STORESIDE_BENCH_PG`` or the tests' default DSN).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.report import figure
from cloud_sync.contract import batch as batches
from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract import topics
from cloud_sync.contract.chain import Sealed
from cloud_sync.contract.event_envelope import Attribution, EventEnvelope, EventType
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.ingest.keyring import Keyring
from cloud_sync.hq.store_keys import StoreKey
from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import key_id, raw_public_key
from edge_agent.sync.batch_signer import sign

EVENTS = 100_000
BOXES = 4
STORE = "store-001"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SERVER = os.environ.get(
    "STORESIDE_BENCH_PG",
    os.environ.get("STORESIDE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
)


def box_events(box: str, count: int) -> list[Sealed]:
    sealed: list[Sealed] = []
    prev = envelope.GENESIS_HASH
    for seq in range(1, count + 1):
        at = START + timedelta(milliseconds=seq * 250)
        event = EventEnvelope(
            event_id=envelope.event_id(at, secrets.token_bytes(10)),
            box_id=box,
            seq=seq,
            type=EventType.REDEEMED,
            occurred_at=at,
            code=f"SS{box[-1]}{seq:09d}",
            attribution=Attribution(
                store_id=STORE,
                till_id=f"till-{seq % 6}",
                cashier_id=f"cashier-{seq % 17}",
                transaction_id=f"tx-{box}-{seq}",
                member_id=f"member-{seq * 7 % 100_003}",
                campaign_id="SPRING",
                variant="A",
                channel="app",
            ),
            amount=150 + seq % 900,
            details={"use_limit": 1, "lines": [["SKU-0001", 1500], ["SKU-0042", 320]]},
            prev_hash=prev,
        )
        s = Sealed.seal(event)
        if len(s.text) < 500:  # pad to ~500 bytes, as a redemption with its basket is
            s = Sealed.seal(
                replace(event, details={**event.details, "pad": "x" * (500 - len(s.text))})
            )
        sealed.append(s)
        prev = envelope.event_hash(s.text)
    return sealed


def signed_payloads(key: Ed25519PrivateKey) -> list[tuple[str, bytes]]:
    kid = key_id(key.public_key())
    per_box: list[list[tuple[str, bytes]]] = []
    for b in range(BOXES):
        box = f"box-{b}"
        rows = [(s.event.seq, s.text) for s in box_events(box, EVENTS // BOXES)]
        out: list[tuple[str, bytes]] = []
        while rows:
            batch = batches.pack(store_id=STORE, box_id=box, key_id=kid, events=rows)
            out.append((topics.topic(STORE, box, Channel.EVENTS), batches.encode(sign(batch, key))))
            rows = rows[len(batch.texts) :]
        per_box.append(out)
    # The boxes' batches interleaved, as a broker delivers four boxes' traffic.
    return [p for group in zip(*per_box, strict=False) for p in group] + [
        p for out in per_box for p in out[len(min(per_box, key=len)) :]
    ]


def run(location: str, payloads: list[tuple[str, bytes]], keys: list[StoreKey]) -> float:
    store = open_event_store(location)
    ingest = Ingest(store=store, keyring=Keyring(lambda: keys))
    at = datetime.now(UTC)
    started = time.perf_counter()
    for topic, data in payloads:
        out = ingest.handle(topic, data, at)
        assert out.ack is not None and not out.quarantined, out
    elapsed = time.perf_counter() - started
    assert views.event_count(store) == EVENTS
    store.close()
    return EVENTS / elapsed


def main() -> None:
    key = Ed25519PrivateKey.generate()
    keys = [
        StoreKey(
            key_id=key_id(key.public_key()),
            store_id=STORE,
            public_key=token_codec.public_key_text(raw_public_key(key.public_key())),
            registered_at=START,
            revoked_at=None,
        )
    ]
    payloads = signed_payloads(key)
    sizes = [len(p) for _, p in payloads]
    print(f"   {len(payloads)} batches, {EVENTS / len(payloads):.0f} events and "
          f"{sum(sizes) / len(sizes) / 1024:.0f} KiB a batch on average")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        rate = run(str(Path(tmp) / "events.db"), payloads, keys)
    figure("hq ingest into SQLite", rate, "events/s", target=">= 20,000 events/s")
    name = f"storeside_bench_{secrets.token_hex(4)}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        parts = urlsplit(SERVER)
        rate = run(urlunsplit((*parts[:2], f"/{name}", "", "")), payloads, keys)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    figure("hq ingest into PostgreSQL", rate, "events/s", target=">= 10,000 events/s")


if __name__ == "__main__":
    main()
