"""The ingest worker end to end through a real Mosquitto with the shipped config and ACL,
over TLS as user ``hq-ingest``: box-a publishes batches and reads HQ's acks on its own topic."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Protocol, TypeVar

import psycopg
import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from cloud_sync.contract import presence, topics
from cloud_sync.contract.ack import decode_ack, decode_resend
from cloud_sync.contract.presence import BoxState, State
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.ingest.keyring import Keyring, central_keys
from cloud_sync.hq.ingest.worker import BrokerLogin, IngestWorker
from tests.hq.conftest import run_hq
from tests.hq.ingest import pg
from tests.hq.ingest.builders import BOX_A, STORE, box_stream, events_topic, payloads
from tests.mqtt.broker import MosquittoBroker
from tests.mqtt.clients import TestClient
from tests.mqtt.fixtures import ClientFactory

ACK_A = topics.topic(STORE, BOX_A, Channel.ACK)
WAIT_S = 10.0


def worker_of(location: str, central_file: Path, login: BrokerLogin) -> IngestWorker:
    """A worker of group ``ingest`` over the event store at ``location``, keys from the
    central store file."""
    return IngestWorker(
        login=login,
        ingest=Ingest(
            store=open_event_store(location), keyring=Keyring(central_keys(central_file))
        ),
        client_id="hq-ingest-1",
        group="ingest",
    )


class _Service(Protocol):
    subscribed: threading.Event

    def run(self, stop: threading.Event) -> None: ...


W = TypeVar("W", bound=_Service)


@contextmanager
def running(worker: W) -> Iterator[W]:
    """``worker`` (an ingest worker, the fan-out: anything run until a stop event that tells
    when it has subscribed) on a thread, until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert worker.subscribed.wait(WAIT_S), "the worker never subscribed"
        yield worker
    finally:
        stop.set()
        thread.join(timeout=WAIT_S)


def box_a(mqtt_client: ClientFactory) -> TestClient:
    box = mqtt_client("box-a", client_id="box-a", persistent=True)
    box.connect()
    box.subscribe(ACK_A)
    return box


def acked_through(box: TestClient, timeout: float = WAIT_S) -> int:
    return decode_ack(box.expect(timeout).payload).stored_through


def acks_until(box: TestClient, through: int) -> list[int]:
    """The acks' stored_through up to ``through``: the worker answers one ack per box per
    group it handles, so batches that arrive together are answered by their last ack."""
    acks = [acked_through(box)]
    while acks[-1] < through:
        acks.append(acked_through(box))
    assert acks == sorted(set(acks)), "acks go up, never back"
    return acks


def test_batches_are_stored_and_acked_and_presence_recorded(
    location: str,
    central_file: Path,
    hq_login: BrokerLogin,
    mqtt_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="storeside.hq.ingest")
    worker = worker_of(location, central_file, hq_login)
    store = worker.ingest.store
    with running(worker):
        box = box_a(mqtt_client)
        state = State(store_id=STORE, box_id=BOX_A, state=BoxState.ONLINE, session=3)
        box.publish(
            topics.topic(STORE, BOX_A, Channel.STATE), presence.encode_state(state), retain=True
        )
        sealed = box_stream(30)
        for data in payloads(sealed, 10):
            box.publish(events_topic(), data)
        assert set(acks_until(box, 30)) <= {10, 20, 30}
        box.publish(events_topic(), payloads(sealed, 10)[1])  # a resend: same ack
        assert acked_through(box) == 30
        # Nagle off: an ack written after a PUBACK must not wait for a delayed TCP ACK.
        sock = worker.client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    assert views.event_count(store) == 30
    (row,) = views.fleet(store)
    assert (row.state, row.session, row.stored_through) == ("online", 3, 30)
    assert hq_login.password is not None and hq_login.password not in caplog.text
    store.close()


def test_an_event_store_outage_acks_nothing_and_loses_nothing(
    pg_database: str,
    central_file: Path,
    hq_login: BrokerLogin,
    mqtt_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    location = pg.fresh_schema(pg_database)
    database = location.split("/")[-1].split("?")[0]
    worker = worker_of(location, central_file, hq_login)
    store = worker.ingest.store
    first, second = payloads(box_stream(20), 10)
    with running(worker), psycopg.connect(pg.SERVER, autocommit=True) as admin:
        box = box_a(mqtt_client)
        box.publish(events_topic(), first)
        assert acked_through(box) == 10
        admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
        try:
            box.publish(events_topic(), second)
            box.assert_silent(timeout=1.5)  # nothing is acked while nothing can be stored
        finally:
            admin.execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
        assert acked_through(box, timeout=20) == 20  # redelivered after the reconnect
    assert "event store unavailable" in caplog.text
    assert views.event_count(store) == 20
    store.close()


def test_a_resend_request_reaches_the_box(
    tmp_path: Path, hq_cli_login: list[str], mqtt_client: ClientFactory
) -> None:
    box = mqtt_client("box-a", client_id="box-a")
    box.connect()
    box.subscribe(topics.topic(STORE, BOX_A, Channel.RESEND))
    db = str(tmp_path / "events.db")
    ask = ["resend", "--db", db, "--box", BOX_A, "--store", STORE, "--from", "5", "--to", "9"]
    done = run_hq(*ask, *hq_cli_login)
    assert done.returncode == 0, done.stderr
    request = decode_resend(box.expect().payload)
    assert [(r.first, r.last) for r in request.ranges] == [(5, 9)]


def test_over_mqtt5_without_shared_subscriptions_and_across_a_broker_restart(
    tmp_path: Path,
    central_file: Path,
    hq_login: BrokerLogin,
    mosquitto: MosquittoBroker,
    mqtt_client: ClientFactory,
) -> None:
    """MQTT 5 (clean_start False with a session expiry) and plain filters (``--no-share``);
    the broker stops and starts again (SIGTERM: it saves its sessions) and the worker comes
    back on its own, to the same session."""
    v5 = replace(hq_login, protocol=MQTTProtocolVersion.MQTTv5)
    ingest = Ingest(
        store=open_event_store(str(tmp_path / "events.db")),
        keyring=Keyring(central_keys(central_file)),
    )
    worker = IngestWorker(login=v5, ingest=ingest, client_id="hq-ingest-5", group=None)
    assert "$share" not in " ".join(worker.subscriptions)
    first, second = payloads(box_stream(20), 10)
    with running(worker):
        box = box_a(mqtt_client)
        box.publish(events_topic(), first)
        assert acked_through(box) == 10
        worker.subscribed.clear()
        mosquitto.stop()
        mosquitto.start()
        assert worker.subscribed.wait(WAIT_S), "the worker did not come back"
        box = mqtt_client("box-a", client_id="box-a", persistent=True)
        box.connect()
        box.publish(events_topic(), second)
        assert acked_through(box) == 20
    assert views.event_count(worker.ingest.store) == 20
    worker.ingest.store.close()
