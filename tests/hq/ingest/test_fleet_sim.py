"""The fleet simulator end to end: 20 simulated boxes (each its own key, broker user, seq and
chain) publish for 3 s through a real Mosquitto (the shipped config and ACL, TLS) to HQ's real
ingest worker on SQLite. HQ ends with exactly every event each box made, every chain verifies
from genesis to the box's own last hash, and every box acknowledged all it sent."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud_sync.contract.chain import ChainLink, Sealed, verify_chain
from cloud_sync.fleet_sim import identities
from cloud_sync.fleet_sim.load_model import LoadModel
from cloud_sync.fleet_sim.mqtt_fleet import Broker
from cloud_sync.fleet_sim.runner import Settings, run_part, summarize
from cloud_sync.fleet_sim.sim_box import Identity
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.worker import BrokerAddress, BrokerLogin
from tests.hq.conftest import FMT
from tests.hq.ingest.test_worker_mqtt import running, worker_of
from tests.mqtt.broker import BrokerFiles, MosquittoBroker, write_password_file

BOXES = 20


@pytest.fixture
def fleet() -> list[Identity]:
    return identities.provision(BOXES, 7)


@pytest.fixture
def fleet_broker(
    tmp_path: Path, broker_files: BrokerFiles, fleet: list[Identity]
) -> Iterator[tuple[MosquittoBroker, str]]:
    """A Mosquitto whose password file holds every simulated box and hq-ingest."""
    hq_password = "hq-" + random.randbytes(8).hex()
    password_file = tmp_path / "fleet.passwd"
    write_password_file(password_file, {**identities.broker_users(fleet), "hq-ingest": hq_password})
    broker = MosquittoBroker(
        directory=tmp_path / "broker",
        files=BrokerFiles(tls=broker_files.tls, password_file=password_file),
    )
    broker.start()
    try:
        yield broker, hq_password
    finally:
        broker.kill()


def test_every_box_gets_exactly_its_events_to_hq_with_its_chain_intact(
    tmp_path: Path, fleet: list[Identity], fleet_broker: tuple[MosquittoBroker, str]
) -> None:
    broker, hq_password = fleet_broker
    seed = random.randrange(2**32)
    print(f"fleet simulator seed {seed}")
    central_file = tmp_path / "hq.db"
    with CentralStore.create(central_file, fmt=FMT) as central:
        identities.register_keys(central, fleet, now=datetime.now(UTC))
    login = BrokerLogin(
        broker=BrokerAddress(host="127.0.0.1", port=broker.port, tls=True),
        cafile=broker.ca_cert,
        username="hq-ingest",
        password=hq_password,
    )
    settings = Settings(
        broker=Broker(host="127.0.0.1", port=broker.port, cafile=broker.ca_cert),
        # Busier than a store, so 3 s make bursts and multi-event batches in every run.
        model=LoadModel(rate=5.0, burst_size=20, burst_prob=0.1),
        seed=seed,
        duration_s=3.0,
        drain_s=10.0,
        health_interval_s=1.0,
        batch_events=8,  # a burst spans several batches, in flight together
    )
    worker = worker_of(str(tmp_path / "events.db"), central_file, login)
    store = worker.ingest.store
    lines: list[str] = []
    with running(worker):
        result = run_part(fleet, range(BOXES), settings, out=lines.append)
    summary = summarize([result], duration_s=settings.duration_s)

    assert result.created > 0
    assert summary.unacked == 0, lines
    assert summary.acked == summary.created == views.event_count(store)
    assert sum(len(v) for v in result.lags_ms.values()) == result.created
    assert views.quarantined(store) == [] and views.conflicts(store) == []
    assert views.chain_breaks(store) == []
    rows = {r.box_id: r for r in views.fleet(store)}
    assert set(rows) == {i.box_id for i in fleet}
    for ident in fleet:
        stored = views.events(store, views.EventFilter(box_id=ident.box_id, limit=100_000))
        made = len(result.lags_ms[ident.box_id])
        assert [e.seq for e in stored] == list(range(1, made + 1))
        assert {e.store_id for e in stored} <= {ident.store_id}
        verdict = verify_chain(
            (Sealed.of(e.body) for e in stored), anchor=ChainLink.start(ident.box_id)
        )
        assert verdict.ok
        assert rows[ident.box_id].stored_through == made
        assert rows[ident.box_id].store_id == ident.store_id
    # Whether the clean shutdown's offline state has reached the worker yet is a race; that
    # each box was seen at all (state or health) is not.
    assert all(r.last_seen is not None for r in rows.values())
    # Every box published its health at connect (retained), so the fleet view has its outbox.
    assert all(r.outbox_depth is not None for r in rows.values())
    store.close()
