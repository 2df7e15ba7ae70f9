"""HQ's real ingest worker (cloud_sync/hq/ingest/) through each broker ``start_broker`` may
start, told only what the ``RunningBroker`` says: its URL, its CA, and whether it has shared
subscriptions (amqtt: none, so the worker takes the plain filter). A box's three batches are
stored and acked (one ack per group the worker takes them in), its retained ``online`` lands
in the fleet view."""

from __future__ import annotations

import threading
from pathlib import Path

from cloud_sync.contract import presence, topics
from cloud_sync.contract.presence import BoxState, State
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.broker.running_broker import RunningBroker
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.ingest.keyring import Keyring, central_keys
from cloud_sync.hq.ingest.worker import BrokerAddress, BrokerLogin, IngestWorker
from tests.hq.broker.conftest import ClientFactory
from tests.hq.ingest.builders import (
    BOX_A,
    KEY,
    STORE,
    box_stream,
    central_trusting,
    events_topic,
    payloads,
)
from tests.hq.ingest.test_worker_mqtt import acks_until

WAIT_S = 10.0


def test_the_ingest_worker_stores_and_acks_through_the_broker(
    broker: RunningBroker, client: ClientFactory, passwords: dict[str, str], tmp_path: Path
) -> None:
    worker = IngestWorker(
        login=BrokerLogin(
            broker=BrokerAddress.parse(broker.url),
            cafile=broker.ca_cert,
            username="hq-ingest",
            password=passwords["hq-ingest"],
        ),
        ingest=Ingest(
            store=open_event_store(str(tmp_path / "events.db")),
            keyring=Keyring(central_keys(central_trusting(tmp_path / "hq.db", KEY))),
        ),
        client_id="hq-ingest-1",
        group="ingest" if broker.supports_shared_subscriptions else None,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert worker.subscribed.wait(WAIT_S), "the worker never subscribed"
        box = client(BOX_A, client_id=BOX_A, persistent=True)
        box.connect()
        box.subscribe(topics.topic(STORE, BOX_A, Channel.ACK))
        state = State(store_id=STORE, box_id=BOX_A, state=BoxState.ONLINE, session=1)
        box.publish(
            topics.topic(STORE, BOX_A, Channel.STATE), presence.encode_state(state), retain=True
        )
        for data in payloads(box_stream(30), 10):
            box.publish(events_topic(), data)
        assert set(acks_until(box, 30)) <= {10, 20, 30}
    finally:
        stop.set()
        thread.join(timeout=WAIT_S)
    store = worker.ingest.store
    assert views.event_count(store) == 30
    (row,) = views.fleet(store)
    assert (row.state, row.stored_through) == ("online", 30)
    store.close()
