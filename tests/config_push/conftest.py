"""The broker fixtures (tests/mqtt/fixtures.py) for HQ's config push over MQTT."""

from tests.mqtt.fixtures import (  # noqa: F401 (pytest finds fixtures and hooks by name)
    broker_files,
    mosquitto,
    mqtt_client,
    mqtt_passwords,
    pytest_runtest_makereport,
)
