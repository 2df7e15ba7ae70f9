"""Fixtures for HQ's broker: a fresh broker per test, started by the product's own
``start_broker`` (amqtt forced, or Mosquitto as a pilot would get it), and real paho-mqtt 2.2
clients (MQTT 3.1.1, what amqtt speaks) of it, TLS when the broker's URL is ``mqtts://``.

Users: ``box-a`` and ``box-b`` (boxes; username = box id) and ``hq-ingest``, with passwords
made per test session. Brokers are stopped, clients disconnected, at the end of each test.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from cloud_sync.hq.broker.choice import start_broker
from cloud_sync.hq.broker.mosquitto import MosquittoBroker
from cloud_sync.hq.broker.running_broker import RunningBroker
from tests.mqtt.clients import Clients, TestClient

USERS = ("box-a", "box-b", "hq-ingest")
ClientFactory = Callable[..., TestClient]


@pytest.fixture(scope="session")
def passwords() -> dict[str, str]:
    return {user: secrets.token_urlsafe(16) for user in USERS}


def _start(kind: str, directory: Path, passwords: dict[str, str]) -> RunningBroker:
    return start_broker(directory=directory, users=passwords, embedded=kind == "amqtt")


def _end(broker: RunningBroker) -> None:
    if isinstance(broker, MosquittoBroker):
        broker.kill()  # the test is over; SIGTERM's clean save costs ~100 ms
    else:
        broker.stop()


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker(
    request: pytest.FixtureRequest, tmp_path: Path, passwords: dict[str, str]
) -> Iterator[RunningBroker]:
    """Each behaviour test runs on both brokers HQ may start."""
    running = _start(request.param, tmp_path / "broker", passwords)
    assert running.kind == request.param
    try:
        yield running
    finally:
        _end(running)


@pytest.fixture
def embedded(tmp_path: Path, passwords: dict[str, str]) -> Iterator[RunningBroker]:
    running = _start("amqtt", tmp_path / "broker", passwords)
    try:
        yield running
    finally:
        _end(running)


def client_factory(broker: RunningBroker, passwords: dict[str, str]) -> Iterator[ClientFactory]:
    clients = Clients(passwords)
    port = urlsplit(broker.url).port
    assert port is not None

    def make(username: str | None, **options: Any) -> TestClient:
        return clients.make(port=port, ca_cert=broker.ca_cert, username=username, **options)

    yield make
    clients.close()


@pytest.fixture
def client(broker: RunningBroker, passwords: dict[str, str]) -> Iterator[ClientFactory]:
    """``client("box-a", ...)``: a client of this test's broker with that user's password."""
    yield from client_factory(broker, passwords)


@pytest.fixture
def embedded_client(embedded: RunningBroker, passwords: dict[str, str]) -> Iterator[ClientFactory]:
    yield from client_factory(embedded, passwords)
