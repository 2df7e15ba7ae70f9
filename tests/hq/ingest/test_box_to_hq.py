"""The whole link: a real box (the outbox pump over its cache, ``tests/sync/pump_harness.py``)
and HQ's real ingest worker, through a real Mosquitto with the shipped config and ACL. Every
event the box commits is stored at HQ once, the box's outbox empties on HQ's acks, and the
box's own birth and health messages make its row of the fleet view."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.worker import BrokerLogin
from config.model import AgentConfig
from edge_agent.issuing import signing_key
from edge_agent.sync import outbox_access
from tests.hq.ingest.builders import central_trusting
from tests.hq.ingest.test_worker_mqtt import running, worker_of
from tests.mqtt.broker import BrokerFiles, MosquittoBroker
from tests.sync.pump_harness import STORE, RunningPump, append_events, box_config
from tests.sync.pump_harness import running as box_running


def wait(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def outbox_depth(pump: RunningPump) -> int:
    return pump.db.call(lambda s: outbox_access.facts(s.cache).outbox_depth)


@pytest.fixture
def box_a_config(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    broker_files: BrokerFiles,
    mqtt_passwords: dict[str, str],
) -> AgentConfig:
    return box_config(
        tmp_path,
        box="box-a",
        port=mosquitto.port,
        ca=broker_files.tls.ca_cert,
        password=mqtt_passwords["box-a"],
        batch_events=100,
    )


def test_a_box_drains_its_outbox_into_hq_exactly_once(
    tmp_path: Path, location: str, hq_login: BrokerLogin, box_a_config: AgentConfig
) -> None:
    cfg = box_a_config
    # HQ trusts the box's own store key, as `storeside-hq keys register` would.
    key = signing_key.load(Path(cfg.signing.key_path))
    central_file = central_trusting(tmp_path / "hq.db", key)
    worker = worker_of(location, central_file, hq_login)
    store = worker.ingest.store
    with running(worker), box_running(cfg) as pump:
        last = append_events(pump.db, 350)
        wait(lambda: outbox_depth(pump) == 0)
        more = append_events(pump.db, 5)
        wait(lambda: outbox_depth(pump) == 0)
        wait(lambda: views.fleet(store)[0].state == "online")
    assert more == last + 5
    assert views.event_count(store) == more
    assert [e.seq for e in views.events(store, views.EventFilter(box_id="box-a"))] == list(
        range(1, more + 1)
    )
    assert views.quarantined(store) == []
    (row,) = views.fleet(store)
    assert (row.store_id, row.box_id, row.stored_through, row.missing) == (
        STORE,
        "box-a",
        more,
        (),
    )
    store.close()
