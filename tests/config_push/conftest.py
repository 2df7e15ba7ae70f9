"""The broker fixtures (tests/mqtt/fixtures.py) for HQ's config push over MQTT, and
``agent_box.py``'s: HQ's signing key, one box of ``STORE`` as a real process, HQ's config CLI."""

from tests.config_push.agent_box import (  # noqa: F401 (pytest finds fixtures by name)
    box,
    hq,
    hq_key,
    make_box,
)
from tests.mqtt.fixtures import (  # noqa: F401 (pytest finds fixtures and hooks by name)
    broker_files,
    mosquitto,
    mqtt_client,
    mqtt_passwords,
    pytest_runtest_makereport,
)
