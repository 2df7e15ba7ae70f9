"""Fixtures for the event store and ingest tests: every test that takes ``location`` runs on
both backends, SQLite in tmp_path and PostgreSQL in a fresh schema (``pg.py``); the worker's
tests take a real Mosquitto from tests/mqtt/fixtures.py (its log is shown under a failure)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from cloud_sync.hq.ingest.keyring import Keyring
from tests.hq.ingest import pg
from tests.hq.ingest.broker_login import hq_cli_login, hq_login  # noqa: F401 (by name)
from tests.hq.ingest.builders import KEY, OTHER_KEY, central_trusting
from tests.mqtt.fixtures import (  # noqa: F401 (pytest finds fixtures and hooks by name)
    broker_files,
    mosquitto,
    mqtt_client,
    mqtt_passwords,
    pytest_runtest_makereport,
)
from tests.sync.test_batch_signing import registered


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    with pg.test_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "events.db")
    database: str = request.getfixturevalue("pg_database")
    return pg.fresh_schema(database)


@pytest.fixture
def store(location: str) -> Iterator[EventStore]:
    opened = open_event_store(location)
    yield opened
    opened.close()


@pytest.fixture
def ingest(store: EventStore) -> Ingest:
    return Ingest(
        store=store,
        keyring=Keyring(lambda: [registered(KEY), registered(OTHER_KEY, store="store-002")]),
    )


@pytest.fixture
def central_file(tmp_path: Path) -> Path:
    return central_trusting(tmp_path / "hq.db", KEY)
