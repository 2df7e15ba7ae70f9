"""The MQTT topic tree of the sync link: which message travels where, built and parsed here only.

Theory of operation
-------------------
Every topic is ``storeside/v1/{store_id}/{box_id}/{channel}``, in the style of Zigbee2MQTT and
Sparkplug B (one subtree per device, the device's identity in the path), so a broker ACL can
give each box exactly its own subtree with one pattern, and HQ subscribes to all boxes with
``+`` wildcards::

    channel  from -> to   QoS  retained  payload        what
    events   box  -> HQ   1    no        batch.py       signed batches of event-log events
    ack      HQ   -> box  1    no        ack.py         the highest contiguous seq HQ stored
    resend   HQ   -> box  1    no        ack.py         ranges HQ asks the box to send again
    state    box  -> all  1    yes       presence.py    online (birth) / offline (last will)
    health   box  -> HQ   1    yes       presence.py    the box's health summary
    delta    HQ   -> box  1    no        hq_document.py the store's code cache deltas, signed
    hq_key   HQ   -> box  1    no        hq_document.py HQ's next signing key (hq_key.py), signed
                                                        by one the box trusts
    position box  -> HQ   1    yes       follow_position.py
                                                        where the box's cache stands in the
                                                        store's delta stream (asks for more)
    snapshot HQ   -> box  1    yes       hq_document.py a full snapshot offered to a box deltas
                                                        cannot bring up (snapshot_offer.py)
    snapshot_request  box -> HQ  1  no   snapshot_offer.py
                                                        the next chunk of it, from an offset
    snapshot_chunk    HQ -> box  1  no   snapshot_offer.py
                                                        a header line and the file's bytes
    config   HQ   -> box  1    yes       hq_document.py the store's config as HQ sets it
                                                        (config_document.py), signed
    config_result
             box  -> HQ   1    yes       config_result.py
                                                        what the box made of the last config

Three HQ services answer the boxes, each under its own broker user: ``ingest`` (events,
state, health in; acks and resends out), ``fanout`` (positions and snapshot requests in;
deltas, HQ key announcements, snapshot offers and chunks out), and ``config``
(``storeside-hq config``: config documents out, the boxes' results in, both retained so
neither end must be listening when the other speaks). Deltas are per
store, but each box gets them on its own topic: a box's ACL is one pattern per channel on its
own subtree, and each box's position is its own (a box back from a week away catches up alone).

``v1`` is the version of the tree itself (its levels and channels), not of any payload: each
payload carries its own ``schema_version``, so payloads can evolve without moving topics, and
a new tree would live beside this one under ``v2`` while boxes migrate.

Everything the link needs travels in payloads (sequence, acks, versions, the session of a
birth or a will), never in MQTT 5 properties: amqtt, the embedded broker, speaks MQTT 3.1.1
only. Shared subscriptions (``$share/{group}/...``) are a broker feature (Mosquitto, EMQX,
HiveMQ; in MQTT 3.1.1 too), so HQ's ingest workers split the events between them; a broker
without them takes ``subscription(Channel.EVENTS)`` and one worker.

Ids. The store level is the store's id (``config/model.py``: ``store.store_id``, 1-64
characters); the box level is the box id its events carry (``EventEnvelope.box_id``), since a
batch's box must be its events' box. Today that is the cache's ``meta.box_id`` (a uuid4 in hex,
made with the cache file), not config's ``store.box_id`` (1-64 characters): the outbox pump must
make the two one before it publishes. The batch, ack and presence payloads repeat both ids,
which HQ checks against the topic. Config accepts any characters, so the pump refuses at start
an id that is not a level (``checked_id``). A level must be something a broker treats as
one literal level (MQTT 3.1.1 section 4.7): not empty, no ``/`` (a separator), no ``+`` or ``#``
(wildcards: a box named ``+`` could subscribe to every box; Mosquitto also refuses such ids in
ACL patterns), no U+0000 (section 1.5.3 forbids it) and no other control character (the spec
says they should not appear), valid UTF-8, and at most ``MAX_ID_CHARS`` characters. Builders
refuse any other id (``BadLevelError``) rather than build a topic that means something else.

Access. A box publishes only its own subtree's box channels (``events``, ``state``, ``health``,
``position``, ``snapshot_request``) and subscribes only to its own HQ channels (``ack``,
``resend``, ``delta``, ``hq_key``, ``snapshot``, ``snapshot_chunk``; ``box_subscriptions``);
HQ the other way round, for every box, each service to its own channels
(``hq_subscriptions``). With the box's broker username set to its box id,
one Mosquitto ACL pattern per channel says so, e.g. ``pattern write storeside/v1/+/%u/events``
and ``pattern read storeside/v1/+/%u/ack``; the ``+`` over the store level is safe because box
ids are unique across the chain, and HQ still checks the batch's signature (``batch.py``).
Access. A box publishes only ``events``, ``state``, ``health``, ``position`` and
``config_result`` of its own subtree and subscribes only to its own ``ack``, ``resend``,
``delta``, ``hq_key`` and ``config`` (``box_subscriptions``); HQ the other way round, for
every box, each service to its own channels (``hq_subscriptions``). With the box's broker
username set to its box id, one Mosquitto ACL pattern per channel says so, e.g.
``pattern write storeside/v1/+/%u/events`` and ``pattern read storeside/v1/+/%u/ack``; the
``+`` over the store level is safe because box ids are unique across the chain, and HQ still
checks the batch's signature (``batch.py``).

Parsing (``parse_topic``) takes a topic a message arrived on and answers a ``Topic`` or one of
the errors drawn in ``TopicError``, checked in order: the root, the tree's version, the number
of levels, each id, the channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final

ROOT: Final = "storeside"
TREE_VERSION: Final = "v1"
MAX_ID_CHARS: Final = 64  # config's bound on store_id and box_id
# C0 controls (U+0000 included), DEL and C1 controls, the separator and the wildcards.
_NOT_IN_A_LEVEL = re.compile(r"[\x00-\x1f\x7f-\x9f/+#]")


class Channel(StrEnum):
    EVENTS = "events"
    ACK = "ack"
    RESEND = "resend"
    STATE = "state"
    HEALTH = "health"
    DELTA = "delta"
    HQ_KEY = "hq_key"
    POSITION = "position"
    SNAPSHOT = "snapshot"
    SNAPSHOT_REQUEST = "snapshot_request"
    SNAPSHOT_CHUNK = "snapshot_chunk"
    CONFIG = "config"
    CONFIG_RESULT = "config_result"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelSpec:
    """How a channel is used, as the docstring's table says (and asyncapi.yaml describes)."""

    sender: str  # "box" or "hq"
    qos: int
    retained: bool
    message: str  # the payload's name in asyncapi.yaml
    service: str = "ingest"  # the HQ service at the other end: "ingest", "fanout", "config"


CHANNELS: Final[dict[Channel, ChannelSpec]] = {
    Channel.EVENTS: ChannelSpec(sender="box", qos=1, retained=False, message="batch"),
    Channel.ACK: ChannelSpec(sender="hq", qos=1, retained=False, message="ack"),
    Channel.RESEND: ChannelSpec(sender="hq", qos=1, retained=False, message="resend"),
    Channel.STATE: ChannelSpec(sender="box", qos=1, retained=True, message="state"),
    Channel.HEALTH: ChannelSpec(sender="box", qos=1, retained=True, message="health"),
    Channel.DELTA: ChannelSpec(
        sender="hq", qos=1, retained=False, message="delta", service="fanout"
    ),
    Channel.HQ_KEY: ChannelSpec(
        sender="hq", qos=1, retained=False, message="hq_key", service="fanout"
    ),
    Channel.POSITION: ChannelSpec(
        sender="box", qos=1, retained=True, message="position", service="fanout"
    ),
    Channel.SNAPSHOT: ChannelSpec(
        sender="hq", qos=1, retained=True, message="snapshot_offer", service="fanout"
    ),
    Channel.SNAPSHOT_REQUEST: ChannelSpec(
        sender="box", qos=1, retained=False, message="snapshot_request", service="fanout"
    ),
    Channel.SNAPSHOT_CHUNK: ChannelSpec(
        sender="hq", qos=1, retained=False, message="snapshot_chunk", service="fanout"
    ),
    Channel.CONFIG: ChannelSpec(
        sender="hq", qos=1, retained=True, message="config", service="config"
    ),
    Channel.CONFIG_RESULT: ChannelSpec(
        sender="box", qos=1, retained=True, message="config_result", service="config"
    ),
}
INGEST: Final = "ingest"
FANOUT: Final = "fanout"
CONFIG: Final = "config"


class TopicError(ValueError):
    """A topic that is not one of the tree's, or an id that cannot be a level of one.

    TopicError
    ├── ForeignTopicError    not under ``storeside/``
    ├── TreeVersionError     under ``storeside/`` but not ``v1`` (``version``)
    ├── TopicShapeError      not five levels
    ├── BadLevelError        an id that is not one literal level (``level``, ``value``)
    └── UnknownChannelError  the last level is no ``Channel``
    """

    reason: ClassVar[str] = "bad_topic"


class ForeignTopicError(TopicError):
    reason = "foreign_topic"


class TreeVersionError(TopicError):
    reason = "unknown_tree_version"

    def __init__(self, version: str) -> None:
        super().__init__(f"topic tree {version!r} is not {TREE_VERSION!r}")
        self.version = version


class TopicShapeError(TopicError):
    reason = "bad_shape"


class BadLevelError(TopicError):
    reason = "bad_level"

    def __init__(self, level: str, value: str, why: str) -> None:
        super().__init__(f"{level} {value!r} is not a topic level: {why}")
        self.level = level
        self.value = value


class UnknownChannelError(TopicError):
    reason = "unknown_channel"


def level_fault(value: str) -> str | None:
    """Why ``value`` cannot be one literal topic level, or None if it can."""
    if not value:
        return "empty"
    if len(value) > MAX_ID_CHARS:
        return f"over {MAX_ID_CHARS} characters"
    bad = _NOT_IN_A_LEVEL.search(value)
    if bad is not None:
        return f"holds {bad.group()!r} (no '/', '+', '#' or control characters)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8 (a lone surrogate)"
    return None


def checked_id(level: str, value: str) -> str:
    """``value`` if it can be the ``level`` of a topic, else ``BadLevelError``."""
    fault = level_fault(value)
    if fault is not None:
        raise BadLevelError(level, value, fault)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Topic:
    store_id: str
    box_id: str
    channel: Channel

    @property
    def name(self) -> str:
        return topic(self.store_id, self.box_id, self.channel)


def topic(store_id: str, box_id: str, channel: Channel) -> str:
    """The topic ``channel`` of one box travels on."""
    store = checked_id("store_id", store_id)
    box = checked_id("box_id", box_id)
    return f"{ROOT}/{TREE_VERSION}/{store}/{box}/{channel.value}"


def template(channel: Channel) -> str:
    """The channel's topic with its ids as parameters: its address in asyncapi.yaml."""
    return f"{ROOT}/{TREE_VERSION}/{{store_id}}/{{box_id}}/{channel.value}"


def subscription(channel: Channel) -> str:
    """The filter for ``channel`` of every box of every store (what HQ subscribes to)."""
    return f"{ROOT}/{TREE_VERSION}/+/+/{channel.value}"


def shared(group: str, topic_filter: str) -> str:
    """``topic_filter`` shared among the subscribers of ``group``: each message goes to one."""
    return f"$share/{checked_id('group', group)}/{topic_filter}"


def box_subscriptions(store_id: str, box_id: str) -> tuple[str, ...]:
    """What a box subscribes to: HQ's messages to it, and only those."""
    return tuple(topic(store_id, box_id, c) for c, s in CHANNELS.items() if s.sender == "hq")


def hq_subscriptions(group: str) -> tuple[str, ...]:
    """What an HQ ingest worker subscribes to: events shared in ``group`` so each batch goes to
    one worker; state and health unshared, so every worker sees the fleet (they are retained:
    a worker that starts gets each box's last one at once)."""
    return tuple(
        shared(group, subscription(c)) if c is Channel.EVENTS else subscription(c)
        for c, s in CHANNELS.items()
        if s.sender == "box" and s.service == INGEST
    )


def fanout_subscriptions() -> tuple[str, ...]:
    """What HQ's fan-out subscribes to: every box's position (retained)."""
    return tuple(
        subscription(c) for c, s in CHANNELS.items() if s.sender == "box" and s.service == FANOUT
    )


def config_subscriptions() -> tuple[str, ...]:
    """What ``storeside-hq config status`` subscribes to: every box's config result
    (retained, so the broker hands over each box's last one at once)."""
    return tuple(
        subscription(c) for c, s in CHANNELS.items() if s.sender == "box" and s.service == CONFIG
    )


_CHANNELS: Final = {c.value: c for c in Channel}


def parse_topic(name: str) -> Topic:
    """The box and channel of a topic a message arrived on; a ``TopicError`` if it is none."""
    levels = name.split("/")
    if levels[0] != ROOT:
        raise ForeignTopicError(f"{name!r} is not under {ROOT}/")
    if len(levels) < 2 or levels[1] != TREE_VERSION:
        raise TreeVersionError(levels[1] if len(levels) > 1 else "")
    if len(levels) != 5:
        raise TopicShapeError(f"{name!r} has {len(levels)} levels, not 5")
    _, _, store, box, channel = levels
    found = _CHANNELS.get(channel)
    checked_id("store_id", store)
    checked_id("box_id", box)
    if found is None:
        raise UnknownChannelError(f"{channel!r} is not a channel of {TREE_VERSION}")
    return Topic(store_id=store, box_id=box, channel=found)
