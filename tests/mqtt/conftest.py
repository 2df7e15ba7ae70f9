"""The broker fixtures (tests/mqtt/fixtures.py). A later suite that needs a real broker
(the outbox pump, HQ's ingest, the fault tests) imports the same names into its own
conftest.py, hook included, so it prints the broker's log under a failed test."""

from tests.mqtt.fixtures import (  # noqa: F401 (pytest finds fixtures and hooks by name)
    broker_files,
    mosquitto,
    mqtt_client,
    mqtt_passwords,
    pytest_runtest_makereport,
)
