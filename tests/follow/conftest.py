"""The broker fixtures (tests/mqtt/fixtures.py) for following HQ over MQTT, and the fault
tests' printed seed."""

from tests.faults.conftest import seed  # noqa: F401 (a fixture, found by name)
from tests.mqtt.fixtures import (  # noqa: F401 (pytest finds fixtures and hooks by name)
    broker_files,
    mosquitto,
    mqtt_client,
    mqtt_passwords,
    pytest_runtest_makereport,
)
