"""The embedded broker's own life: start and stop from synchronous code, its password file,
its start-up failures, and the bound on what it queues for a client that is away."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from cloud_sync.hq.broker import embedded as embedded_module
from cloud_sync.hq.broker.embedded import EmbeddedBroker
from cloud_sync.hq.broker.errors import BrokerError, BrokerStartError
from cloud_sync.hq.broker.password_file import read_password_file, verify_password
from cloud_sync.hq.broker.running_broker import RunningBroker
from tests.hq.broker.conftest import ClientFactory
from tests.mqtt.clients import TestClient

EVENTS_A = "storeside/v1/store-001/box-a/events"


def _connects(broker: EmbeddedBroker, username: str, password: str) -> bool:
    client = TestClient(
        port=broker.port, ca_cert=None, username=username, password=password, client_id=username
    )
    ok = client.connect().value == 0
    client.disconnect()
    return ok


def test_start_and_stop_leave_no_thread_and_free_the_port_for_a_restart() -> None:
    before = set(threading.enumerate())
    broker = EmbeddedBroker(users={"box-a": "pa"})
    broker.start()
    port = broker.port
    assert broker.running and _connects(broker, "box-a", "pa")
    broker.stop()
    broker.stop()  # idempotent

    assert set(threading.enumerate()) == before
    with pytest.raises(BrokerError, match="not running"):
        _ = broker.url
    with EmbeddedBroker(port=port, users={"box-a": "pa"}) as again:  # the port is free again
        assert again.port == port and _connects(again, "box-a", "pa")


def test_a_port_in_use_is_a_typed_start_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = EmbeddedBroker(port=taken.getsockname()[1])
        with pytest.raises(BrokerStartError, match="would not start"):
            broker.start()
    assert not broker.running


def test_the_password_file_is_written_read_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "storeside.passwd"
    with EmbeddedBroker(users={"hq-ingest": "ph"}, password_file=path) as broker:
        broker.add_user("box-a", "pa")
        assert set(read_password_file(path)) == {"hq-ingest", "box-a"}
        assert "pa" not in path.read_text().split(":")

    with EmbeddedBroker(password_file=path) as again:  # a restart keeps the users
        assert _connects(again, "box-a", "pa") and _connects(again, "hq-ingest", "ph")
        path.write_text(path.read_text().replace("box-a:", "box-c:"))  # mosquitto_passwd's edit
        again.reload_password_file()
        assert not _connects(again, "box-a", "pa")
        assert _connects(again, "box-c", "pa")
    assert verify_password("ph", read_password_file(path)["hq-ingest"])


def test_a_full_queue_drops_further_messages_like_mosquitto(
    embedded: RunningBroker, embedded_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_module, "MAX_QUEUED_MESSAGES", 3)
    hq = embedded_client("hq-ingest", client_id="hq-1", persistent=True)
    hq.connect()
    hq.subscribe("storeside/v1/+/+/events")
    hq.disconnect()
    # amqtt PUBACKs before it routes a message; a connected witness getting all five shows
    # the routing (one FIFO queue) is done, so none is routed after hq-1 is back.
    witness = embedded_client("hq-ingest", client_id="hq-witness")
    witness.connect()
    witness.subscribe("storeside/v1/+/+/events")
    box = embedded_client("box-a")
    box.connect()
    for n in range(5):
        box.publish(EVENTS_A, f"batch-{n}".encode())
    assert len([witness.expect() for _ in range(5)]) == 5

    back = embedded_client("hq-ingest", client_id="hq-1", persistent=True)
    back.connect()
    assert sorted(back.expect().payload for _ in range(3)) == [b"batch-0", b"batch-1", b"batch-2"]
    back.assert_silent()


def test_a_refused_connect_with_a_client_id_in_use_loses_its_queue_known_amqtt_gap(
    embedded_client: ClientFactory,
) -> None:
    """A known gap, pinned so that it stays visible (embedded.py's docstring): amqtt 0.12.1
    handles clean_session before it checks the password, so a refused clean CONNECT with
    HQ's client id deletes HQ's persistent session, and a batch published then is lost.
    Why the embedded broker listens on loopback only, and why a box deletes an event only
    on HQ's application-level ack. If this starts failing, amqtt closed the gap."""
    hq = embedded_client("hq-ingest", client_id="hq-1", persistent=True)
    hq.connect()
    hq.subscribe("storeside/v1/+/+/events")
    hq.disconnect()
    impostor = embedded_client("hq-ingest", client_id="hq-1", password="wrong")
    assert impostor.connect().is_failure
    box = embedded_client("box-a")
    box.connect()
    box.publish(EVENTS_A, b"published-after-the-refused-connect")

    back = embedded_client("hq-ingest", client_id="hq-1", persistent=True)
    assert back.connect().value == 0
    back.assert_silent()
