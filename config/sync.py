"""The link to HQ: which broker the box delivers its events to, and how hard it may push.

Off by default (no ``broker_url``): a box that has never been told where HQ is keeps every
event in its outbox, which is where they wait anyway. The broker username is not a setting:
it is the box id (``store.box_id``), because the broker's ACL pins each box to the topic level
named by its username (``config/mosquitto.acl``). The password lives in a file of its own
(``password_file``, mode 0600 on the box), never in this config, which HQ pushes and logs.

The defaults are sized by PERFORMANCE.md's MQTT figures: a few batches in flight keep a
loopback broker busy (~700k batched events/s), so the drain is bounded by ``drain_events_per_s``
instead, which leaves the till's SQLite thread and the loop most of their time while a box
catches up after an outage.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from cloud_sync.contract.batch import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from config.base import Section
from edge_agent.domain import token_codec

SCHEMES = {"mqtt": 1883, "mqtts": 8883}


class SyncConfig(Section):
    broker_url: Annotated[
        str | None,
        Field(
            max_length=300,
            description="HQ's MQTT broker, mqtts://host:8883 (TLS) or mqtt://host:1883; "
            "unset: the box does not sync and keeps its events in the outbox.",
        ),
    ] = None
    password_file: Annotated[
        str | None,
        Field(
            min_length=1,
            description="File holding this box's broker password (username: store.box_id).",
        ),
    ] = None
    ca_file: Annotated[
        str | None,
        Field(
            min_length=1,
            description="CA certificate that signed the broker's (mqtts); unset: the system's.",
        ),
    ] = None
    protocol: Annotated[
        Literal["3.1.1", "5"],
        Field(description="MQTT version; 3.1.1 works with every broker HQ may run (amqtt too)."),
    ] = "3.1.1"
    keepalive_s: Annotated[
        int,
        Field(ge=5, le=600, description="MQTT keepalive: how soon a dead link is noticed."),
    ] = 30
    batch_events: Annotated[
        int, Field(ge=1, le=MAX_BATCH_EVENTS, description="Most events in one batch.")
    ] = 500
    batch_bytes: Annotated[
        int,
        Field(ge=4096, le=MAX_BATCH_BYTES, description="Most bytes in one encoded batch."),
    ] = MAX_BATCH_BYTES
    in_flight_batches: Annotated[
        int,
        Field(
            ge=1,
            le=64,
            description="Batches sent but not yet acknowledged by HQ; bounds the memory a "
            "drain takes (paho queues whatever it is given).",
        ),
    ] = 4
    drain_events_per_s: Annotated[
        int,
        Field(
            ge=10,
            le=1_000_000,
            description="Most events sent per second while catching up after an outage.",
        ),
    ] = 30_000
    ack_timeout_s: Annotated[
        float,
        Field(
            gt=0,
            le=600,
            description="No ack from HQ this long after a send: send again from the last ack "
            "(HQ stores a resent event once, so a short timeout costs only bandwidth).",
        ),
    ] = 5.0
    reconnect_min_s: Annotated[
        float, Field(gt=0, le=60, description="First reconnect delay (doubles, jittered).")
    ] = 0.5
    reconnect_max_s: Annotated[
        float, Field(gt=0, le=3600, description="Longest reconnect delay.")
    ] = 60.0
    health_interval_s: Annotated[
        float,
        Field(ge=1, le=3600, description="How often the retained health summary is refreshed."),
    ] = 30.0
    push_check_s: Annotated[
        float,
        Field(
            ge=1,
            le=600,
            description="After HQ's config push: how long the box may take to be connected "
            "to the broker again (a push to [sync] reconnects) before the push is rolled back; "
            "a box HQ cannot reach could not be sent the fix.",
        ),
    ] = 20.0
    hq_public_key: Annotated[
        str | None,
        Field(
            max_length=100,
            description="HQ's Ed25519 public key (`storeside-hq hq-key show`), the root of "
            "what the box trusts from HQ: a code cache delta or a config signed by any other "
            "key is refused. Unset: the box follows no delta from HQ.",
        ),
    ] = None
    position_quiet_s: Annotated[
        float,
        Field(
            gt=0,
            le=600,
            description="After deltas stop arriving this long, the box says where its cache "
            "stands, so HQ sends the rest of a catch-up.",
        ),
    ] = 2.0

    @field_validator("hq_public_key")
    @classmethod
    def _hq_key(cls, value: str | None) -> str | None:
        if value is not None and token_codec.public_key_from_text(value) is None:
            raise ValueError("hq_public_key is not an Ed25519 public key (43 base64url or 64 hex)")
        return value

    @field_validator("broker_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"broker_url must start with mqtt:// or mqtts://, not {value!r}")
        if not parts.hostname:
            raise ValueError("broker_url names no host")
        if parts.username or parts.password:
            raise ValueError("broker_url must not hold credentials: use password_file")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("broker_url is scheme://host[:port] and nothing else")
        try:
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError as exc:
            raise ValueError(f"broker_url: {exc}") from exc
        return value

    @property
    def endpoint(self) -> tuple[str, int, bool] | None:
        """(host, port, tls) of ``broker_url``; None when sync is off."""
        if self.broker_url is None:
            return None
        parts = urlsplit(self.broker_url)
        assert parts.hostname is not None  # the validator saw to it
        return parts.hostname, parts.port or SCHEMES[parts.scheme], parts.scheme == "mqtts"
