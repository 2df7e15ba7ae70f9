"""Fixtures: how HQ's ingest logs in to the test's Mosquitto (tests/mqtt/fixtures.py), as
a ``BrokerLogin`` and as ``storeside-hq`` options."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_sync.hq.ingest.worker import BrokerAddress, BrokerLogin
from tests.mqtt.broker import BrokerFiles, MosquittoBroker


@pytest.fixture
def hq_login(
    mosquitto: MosquittoBroker, broker_files: BrokerFiles, mqtt_passwords: dict[str, str]
) -> BrokerLogin:
    """How HQ's workers log in to the test's broker: TLS, user hq-ingest."""
    return BrokerLogin(
        broker=BrokerAddress(host="127.0.0.1", port=mosquitto.port, tls=True),
        cafile=broker_files.tls.ca_cert,
        username="hq-ingest",
        password=mqtt_passwords["hq-ingest"],
    )


@pytest.fixture
def hq_cli_login(tmp_path: Path, hq_login: BrokerLogin) -> list[str]:
    """The same as `storeside-hq` options, the password in a file as an operator keeps it."""
    password_file = tmp_path / "hq.passwd"
    password_file.write_text(f"{hq_login.password}\n")
    return [
        "--broker",
        f"mqtts://127.0.0.1:{hq_login.broker.port}",
        "--cafile",
        str(hq_login.cafile),
        "--username",
        "hq-ingest",
        "--password-file",
        str(password_file),
    ]
