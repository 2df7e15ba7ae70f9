"""The push tests run on both event store backends, as ingest's do, against a real HTTP
receiver (``receiver.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.hq.member_push.webhook import Webhook
from tests.hq.ingest.conftest import (  # noqa: F401 (pytest finds fixtures by name)
    ingest,
    location,
    pg_database,
    store,
)
from tests.hq.member_push import receiver as receivers
from tests.hq.member_push.presence_events import SECRET, Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def receiver(clock: Clock) -> Iterator[receivers.Receiver]:
    with receivers.running(SECRET, clock) as running:
        yield running


@pytest.fixture
def webhook(receiver: receivers.Receiver) -> Webhook:
    return Webhook(url=receiver.url, secret=SECRET, timeout_s=0.5)


@pytest.fixture
def secret_path(tmp_path: Path) -> Path:
    path = tmp_path / "webhook.secret"
    path.write_bytes(SECRET + b"\n")
    path.chmod(0o600)
    return path
