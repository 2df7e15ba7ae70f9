"""``cloud_sync/contract/asyncapi.yaml`` describes exactly the link the code builds: every
topic ``topics.py`` builds and no other, the QoS and retain flag of each, the direction seen from
the box, and for every message exactly the fields its decoder reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cloud_sync.contract import ack, batch, event_envelope, presence, topics
from cloud_sync.contract.topics import Channel

DOCUMENT = Path(__file__).resolve().parents[2] / "cloud_sync" / "contract" / "asyncapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())

# The field table each message's decoder reads, by the message's name in the document.
TABLES: dict[str, dict[int, Any]] = {
    "batch": batch.FIELDS,
    "ack": ack.ACK_FIELDS,
    "resend": ack.RESEND_FIELDS,
    "state": presence.STATE_FIELDS,
    "health": presence.HEALTH_FIELDS,
}


def resolve(ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = SPEC
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_it_is_an_asyncapi_3_document() -> None:
    assert SPEC["asyncapi"].startswith("3.")
    assert SPEC["info"]["title"] and SPEC["info"]["version"]


def test_it_names_every_topic_the_code_builds_and_no_other() -> None:
    addresses = {c["address"] for c in SPEC["channels"].values()}
    assert addresses == {topics.template(c) for c in Channel}
    for channel in Channel:  # the template is what topic() builds
        assert topics.template(channel).format(store_id="s", box_id="b") == topics.topic(
            "s", "b", channel
        )
    for filter_ in topics.hq_subscriptions("g") + topics.box_subscriptions("s", "b"):
        assert filter_.split("/")[-1] in {c.value for c in Channel}


@pytest.mark.parametrize("channel", Channel)
def test_each_channel_has_its_message_direction_qos_and_retain(channel: Channel) -> None:
    spec = topics.CHANNELS[channel]
    [(name, doc)] = [
        (k, v) for k, v in SPEC["channels"].items() if v["address"] == topics.template(channel)
    ]
    assert set(doc["parameters"]) == {"store_id", "box_id"}
    assert list(doc["messages"]) == [spec.message]
    [operation] = [
        op for op in SPEC["operations"].values() if op["channel"]["$ref"] == f"#/channels/{name}"
    ]
    assert operation["action"] == ("send" if spec.sender == "box" else "receive")
    mqtt = operation["bindings"]["mqtt"]
    assert (mqtt["qos"], mqtt["retain"]) == (spec.qos, spec.retained)
    for message in operation["messages"]:
        assert resolve(message["$ref"]) == doc["messages"][spec.message]


@pytest.mark.parametrize("message", TABLES)
def test_each_payload_has_exactly_the_fields_its_decoder_reads(message: str) -> None:
    payload = resolve(SPEC["components"]["messages"][message]["payload"]["$ref"])
    [fields] = TABLES[message].values()  # every message is at version 1
    assert set(payload["properties"]) == set(fields)
    assert set(payload["required"]) == set(fields)
    assert payload["additionalProperties"] is False
    assert payload["properties"]["schema_version"] == {"const": 1}


def test_the_envelope_schema_is_the_current_version() -> None:
    schema = SPEC["components"]["schemas"]["EventEnvelope"]
    fields = event_envelope.FIELDS[event_envelope.SCHEMA_VERSION]
    assert set(schema["properties"]) == set(schema["required"]) == set(fields)
    assert set(schema["properties"]["schema_version"]["enum"]) == event_envelope.READABLE_VERSIONS
    assert set(schema["properties"]["type"]["enum"]) == {t.value for t in event_envelope.EventType}
    items = resolve("#/components/schemas/Batch")["properties"]["events"]["items"]
    assert items["contentSchema"] == {"$ref": "#/components/schemas/EventEnvelope"}


def test_the_bounds_in_the_document_are_the_codes() -> None:
    events = resolve("#/components/schemas/Batch")["properties"]["events"]
    assert events["maxItems"] == batch.MAX_BATCH_EVENTS
    assert str(batch.MAX_BATCH_BYTES) in resolve("#/components/schemas/Batch")["description"]
    assert resolve("#/components/schemas/SeqRanges")["maxItems"] == ack.MAX_RANGES
    assert resolve("#/components/schemas/Id")["maxLength"] == topics.MAX_ID_CHARS
