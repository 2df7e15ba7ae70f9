"""The seam HQ's code holds a broker by, whichever one runs: a URL to connect to, what it can
do, a way to add a box's user, and a way to stop it.

``start_broker`` (``choice.py``) answers one of three: ``ExternalBroker`` (a configured URL,
HQ starts nothing), ``MosquittoBroker`` (a child process) or ``EmbeddedBroker`` (amqtt on a
thread of HQ's process). Callers use only this Protocol, so the demo, a pilot and the tests
run the same ingest code against any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from cloud_sync.hq.broker.errors import UnmanagedBrokerError


class BrokerKind(StrEnum):
    EXTERNAL = "external"  # configured by URL; run and managed elsewhere
    MOSQUITTO = "mosquitto"
    AMQTT = "amqtt"


class RunningBroker(Protocol):
    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT`` (plain TCP) or ``mqtts://HOST:PORT`` (TLS)."""
        ...

    @property
    def kind(self) -> BrokerKind: ...

    @property
    def supports_shared_subscriptions(self) -> bool:
        """Whether ``$share/{group}/{filter}`` spreads messages over a group's members; if
        not, HQ's ingest subscribes to the plain filter with one worker."""
        ...

    @property
    def ca_cert(self) -> Path | None:
        """The CA file a client must trust for ``mqtts://``; None for plain TCP."""
        ...

    def add_user(self, username: str, password: str) -> None:
        """Let ``username`` connect with ``password`` from now on (replacing an old one)."""
        ...

    def stop(self) -> None:
        """Stop the broker (idempotent); an external broker keeps running."""
        ...


@dataclass(frozen=True, kw_only=True)
class ExternalBroker:
    """A broker HQ was configured to use (``--broker-url`` or the like): nothing is started,
    and its users are managed where it runs (``mosquitto_passwd``, EMQX's dashboard...)."""

    url: str
    supports_shared_subscriptions: bool = True  # Mosquitto 2, EMQX, HiveMQ all have them
    ca_cert: Path | None = None
    kind: BrokerKind = BrokerKind.EXTERNAL

    def add_user(self, username: str, password: str) -> None:
        raise UnmanagedBrokerError(
            f"{self.url} is not run by HQ: add {username!r} where that broker is managed"
        )

    def stop(self) -> None:
        """Nothing to stop: HQ did not start it."""
