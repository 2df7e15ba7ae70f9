"""Fixtures for tests against a real Mosquitto: the shipped config and ACL, TLS files and
passwords generated per session, one fresh broker per test (it starts in a few milliseconds,
and a broker of its own means no retained message or session leaks between tests). Any test
directory gets them by importing them into its conftest.py, as tests/mqtt/conftest.py does.

Users: ``box-a`` and ``box-b`` (boxes of store-001; username = box id), ``hq-ingest`` (HQ's
ingest workers), ``hq-fanout`` (HQ's delta fan-out) and ``store-001/box-a`` (a username that
tries to encode the store, which the ACL's design rules out). A failed test gets the broker's
log in its report.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from paho.mqtt.client import MQTTv311
from paho.mqtt.enums import MQTTProtocolVersion

from tests.mqtt.broker import BrokerFiles, MosquittoBroker, write_password_file
from tests.mqtt.clients import Clients, TestClient, Will
from tests.mqtt.tls import make_tls_files

USERS = ("box-a", "box-b", "hq-ingest", "hq-fanout", "hq-config", "store-001/box-a")
_BROKERS = pytest.StashKey[list[MosquittoBroker]]()

ClientFactory = Callable[..., TestClient]


@pytest.fixture(scope="session")
def mqtt_passwords() -> dict[str, str]:
    return {user: secrets.token_urlsafe(16) for user in USERS}


@pytest.fixture(scope="session")
def broker_files(
    tmp_path_factory: pytest.TempPathFactory, mqtt_passwords: dict[str, str]
) -> BrokerFiles:
    directory = tmp_path_factory.mktemp("mqtt-pki")
    password_file = directory / "storeside.passwd"
    write_password_file(password_file, mqtt_passwords)
    return BrokerFiles(tls=make_tls_files(directory), password_file=password_file)


@pytest.fixture
def mosquitto(
    request: pytest.FixtureRequest, tmp_path: Path, broker_files: BrokerFiles
) -> Iterator[MosquittoBroker]:
    broker = MosquittoBroker(
        directory=tmp_path / "broker", files=broker_files, with_plain_listener=True
    )
    request.node.stash.setdefault(_BROKERS, []).append(broker)
    broker.start()
    try:
        yield broker
    finally:
        # SIGKILL, not SIGTERM: the test is over and its persistence is thrown away, and a
        # clean shutdown costs ~100 ms (Mosquitto's loop wakes up every 100 ms).
        broker.kill()


@pytest.fixture
def mqtt_client(
    mosquitto: MosquittoBroker, broker_files: BrokerFiles, mqtt_passwords: dict[str, str]
) -> Iterator[ClientFactory]:
    """``mqtt_client("box-a", ...)``: a TLS client of the test's broker with that user's
    password (override with ``password=``); disconnected at the end of the test."""
    clients = Clients(mqtt_passwords)

    def make(
        username: str | None,
        *,
        client_id: str | None = None,
        password: str | None = None,
        protocol: MQTTProtocolVersion | None = None,
        persistent: bool = False,
        will: Will | None = None,
        tls: bool = True,
    ) -> TestClient:
        return clients.make(
            port=mosquitto.port if tls else _plain(mosquitto),
            ca_cert=broker_files.tls.ca_cert if tls else None,
            username=username,
            client_id=client_id,
            password=password,
            protocol=protocol if protocol is not None else MQTTv311,
            persistent=persistent,
            will=will,
        )

    yield make
    clients.close()


def _plain(broker: MosquittoBroker) -> int:
    assert broker.plain_port is not None
    return broker.plain_port


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for broker in item.stash.get(_BROKERS, []):
            report.sections.append(("mosquitto log", broker.log_text()[-20_000:]))
    return report
