"""A real Mosquitto owned by the test: the product's ``MosquittoBroker``
(``cloud_sync/hq/broker/mosquitto.py``), started from the shipped config, stopped by its PID.

What the tests add to the product's: every log level (the "Denied PUBLISH" debug lines a
failing ACL test needs; the conftest prints the log under a failed test's report) and an
optional plain listener on a free port for quick tests. ``derive_config`` (the shipped
config with test-local paths, ports and user) and ``write_password_file`` (Mosquitto hashes,
made in-process) are the product's too, so the tests exercise what a pilot runs.
"""

from __future__ import annotations

from pathlib import Path

from cloud_sync.hq.broker import mosquitto
from cloud_sync.hq.broker.errors import BrokerError
from cloud_sync.hq.broker.mosquitto import executable, free_port
from cloud_sync.hq.broker.mosquitto_config import BrokerFiles, derive_config
from cloud_sync.hq.broker.password_file import write_password_file
from cloud_sync.hq.broker.shipped_files import SHIPPED_ACL, SHIPPED_CONF

ROOT = Path(__file__).resolve().parents[2]

__all__ = [
    "ROOT",
    "SHIPPED_ACL",
    "SHIPPED_CONF",
    "BrokerError",
    "BrokerFiles",
    "MosquittoBroker",
    "derive_config",
    "executable",
    "free_port",
    "write_password_file",
]


class MosquittoBroker(mosquitto.MosquittoBroker):
    """One Mosquitto process on 127.0.0.1 with every log level on."""

    def __init__(
        self, *, directory: Path, files: BrokerFiles, with_plain_listener: bool = False
    ) -> None:
        super().__init__(
            directory=directory,
            files=files,
            plain_port=free_port() if with_plain_listener else None,
            debug_log=True,
        )
