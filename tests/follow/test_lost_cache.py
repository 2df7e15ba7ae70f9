"""A store box whose cache file is lost comes back by itself: ``edge-agent serve`` as a real
process, HQ's real ingest worker and fan-out over the test's Mosquitto. The box starts empty,
is offered a snapshot, loads it, and redeems a code; it is killed (``kill -9``) and its cache
deleted; started again, it follows no stream, is offered a snapshot again, and refuses the code
it redeemed before the loss ``ALREADY_REDEEMED``, from what HQ knew of its own redemption
(within the moment the deltas after a reused snapshot take to arrive)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from cloud_sync.hq.fanout.central_journal import CentralJournal
from cloud_sync.hq.fanout.service import FanoutService
from cloud_sync.hq.fanout.snapshot_shelf import SnapshotShelf
from cloud_sync.hq.ingest.event_store import open_event_store
from edge_agent.api.auth import new_token
from tests.agent_process import free_port, wait_for_health
from tests.follow.one_box import box_on, hq_with_codes
from tests.follow.test_follow_over_mqtt import HQ_KEY, HQ_PUBLIC, login
from tests.hq.ingest.test_worker_mqtt import running, worker_of
from tests.mqtt.broker import BrokerFiles, MosquittoBroker
from tests.sync.test_agent_process_sync import start, write_toml

WAIT_S = 30.0
BASKET = {"lines": [{"sku": "tea", "category": "drinks", "quantity": 2, "unit_price": 450}]}


def until(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def scan(url: str, token: str, code: str, txn: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"codes": [code], "cashier_id": "c-1", "member_id": None}
    body["basket"] = BASKET
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as till:
        if txn is None:
            return dict(till.post("/v1/validate", json=body, timeout=10).json()["decisions"][0])
        answer = till.post("/v1/commit", json={**body, "transaction_id": txn}, timeout=10)
        return dict(answer.json()["results"][0])


def test_a_box_whose_cache_is_lost_resyncs_and_still_refuses_what_it_redeemed(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    broker_files: BrokerFiles,
    mqtt_passwords: dict[str, str],
) -> None:
    cfg = box_on(tmp_path, mosquitto, broker_files, mqtt_passwords)
    central, codes = hq_with_codes(tmp_path, cfg, 500)
    x, y = codes[:2]
    events = str(tmp_path / "events.db")
    ingest = worker_of(events, central, login(mosquitto, broker_files, "hq-ingest",
                                              mqtt_passwords["hq-ingest"]))  # fmt: skip
    fanout = FanoutService(
        login=login(mosquitto, broker_files, "hq-fanout", mqtt_passwords["hq-fanout"]),
        store=open_event_store(events),
        journal=CentralJournal(central),
        key=HQ_KEY,
        client_id="hq-fanout-1",
        interval_s=0.1,
        shelf=SnapshotShelf(central=central, directory=tmp_path / "shelf", key=HQ_KEY),
    )
    port, token, config = free_port(), new_token(), tmp_path / "agent.toml"
    write_toml(cfg, config, port=port, token=token)
    with config.open("a", encoding="utf-8") as f:
        f.write(f'hq_public_key = "{HQ_PUBLIC}"\nposition_quiet_s = 0.3\n')
    url = f"http://127.0.0.1:{port}"
    outputs = []
    with running(ingest), running(fanout):
        agent = start(config)
        try:
            wait_for_health(url, agent)
            until("the first snapshot", lambda: scan(url, token, x).get("reason") is None)
            assert scan(url, token, x, txn="T-1")["redemption"] is not None
            until("HQ to send it back as the box's own use", lambda: _known_use(events, x))
        finally:
            agent.send_signal(signal.SIGKILL)
            outputs.append(agent.communicate(timeout=10)[0])
        for lost in Path(cfg.cache.path).parent.glob(Path(cfg.cache.path).name + "*"):
            if lost.is_file():
                lost.unlink()  # the cache, its WAL and shared memory: gone
        agent = start(config)
        try:
            wait_for_health(url, agent)
            until("the snapshot again", lambda: scan(url, token, y).get("reason") is None)
            # The snapshot may be HQ's earlier one (reused for an hour); the deltas after it,
            # sent as soon as the box says where it stands, carry the box's own redemption.
            until(
                "the code redeemed before the loss to be refused",
                lambda: scan(url, token, x).get("reason") == "ALREADY_REDEEMED",
            )
            assert scan(url, token, y).get("reason") is None
        finally:
            agent.send_signal(signal.SIGTERM)
            outputs.append(agent.communicate(timeout=30)[0])
    assert fanout.offers >= 1
    assert all("Traceback" not in out for out in outputs), outputs
    assert any("snapshot" in out and "loaded" in out for out in outputs), outputs


def _known_use(events: str, code: str) -> bool:
    store = open_event_store(events)
    try:
        rows = store.run(lambda tx: tx.query("SELECT uses FROM code_box_use WHERE code = ?",
                                             (code,)))  # fmt: skip
    finally:
        store.close()
    return bool(rows) and int(rows[0][0]) >= 1
