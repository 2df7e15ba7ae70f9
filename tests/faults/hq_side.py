"""HQ's side of a fault test: the product's Mosquitto (``start_broker``: shipped config and
ACL, TLS with a certificate naming the address it listens on) on the HQ end of the box's WAN
link, and a real ``storeside-hq ingest`` worker process storing into a SQLite or PostgreSQL
event store. The worker dials the same address, which stays local to the host while the link
is down (netns.py), so a cut partitions the box alone."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cloud_sync.hq.broker.choice import start_broker
from cloud_sync.hq.broker.mosquitto import MosquittoBroker
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from edge_agent.issuing import signing_key
from tests.hq.ingest.builders import central_trusting
from tests.hq.ingest.test_worker_crash import WorkerProcess

_DUPLICATES = re.compile(r"stored (\d+), duplicates (\d+)")


@dataclass
class Hq:
    broker: MosquittoBroker
    worker: WorkerProcess
    store: EventStore
    box_password: str

    def duplicates_absorbed(self) -> int:
        """Events the worker was sent again and stored nothing for (its log lines)."""
        return sum(int(m[2]) for line in self.worker.log for m in _DUPLICATES.finditer(line))

    def stored_seqs(self, box_id: str) -> list[int]:
        where = views.EventFilter(box_id=box_id, limit=1_000_000)
        return [e.seq for e in views.events(self.store, where)]

    def wait_for(self, box_id: str, count: int, *, timeout_s: float) -> float:
        """Seconds until HQ holds ``count`` events of ``box_id``; fails after ``timeout_s``."""
        start = time.monotonic()
        while views.event_count(self.store, box_id) < count:
            assert time.monotonic() - start < timeout_s, (
                f"HQ holds {views.event_count(self.store, box_id)} of {count} events"
            )
            time.sleep(0.05)
        return time.monotonic() - start


@contextmanager
def running_hq(
    directory: Path, *, address: str, box_id: str, box_key: Path, db: str
) -> Iterator[Hq]:
    """Broker on ``address``, HQ trusting ``box_key`` for store-001, worker storing in ``db``."""
    passwords = {box_id: secrets.token_urlsafe(16), "hq-ingest": secrets.token_urlsafe(16)}
    broker = start_broker(directory=directory / "broker", users=passwords, bind_address=address)
    assert isinstance(broker, MosquittoBroker), broker.kind  # the fault tests need its PID
    central = central_trusting(directory / "hq.db", signing_key.load(box_key))
    hq_password = directory / "hq-ingest.passwd"
    hq_password.write_text(passwords["hq-ingest"] + "\n")
    args = [
        "--db", db, "--hq-db", str(central), "--client-id", "hq-ingest-1",
        "--broker", broker.url, "--cafile", str(broker.ca_cert),
        "--username", "hq-ingest", "--password-file", str(hq_password),
    ]  # fmt: skip
    worker: WorkerProcess | None = None
    store: EventStore | None = None
    try:
        worker = WorkerProcess(args, crash=False)
        worker.wait_for("subscribed")
        store = open_event_store(db)
        yield Hq(broker=broker, worker=worker, store=store, box_password=passwords[box_id])
    finally:
        if store is not None:
            store.close()
        if worker is not None:
            worker.stop()
            (directory / "ingest.log").write_text("".join(worker.log))  # beside the broker's
        broker.kill()
