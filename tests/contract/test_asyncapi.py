"""``cloud_sync/contract/asyncapi.yaml`` describes exactly the link the code builds: every
topic ``topics.py`` builds and no other, the QoS and retain flag of each, the direction seen from
the box, and for every message exactly the fields its decoder reads; and its payload schemas
(JSON Schema draft 7, checked with jsonschema-rs) accept what the code encodes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import (
    ack,
    batch,
    config_result,
    delta,
    event_envelope,
    follow_position,
    hq_document,
    presence,
    topics,
)
from cloud_sync.contract.event_envelope import EventEnvelope, encode
from cloud_sync.contract.topics import Channel
from tests.contract.streams import BOX, STORE, rows, stream
from tests.contract.test_event_envelope import envelopes
from tests.contract.test_link_messages import BASE, KINDS

DOCUMENT = Path(__file__).resolve().parents[2] / "cloud_sync" / "contract" / "asyncapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())

# The field table each message's decoder reads, by the message's name in the document.
TABLES: dict[str, dict[int, Any]] = {
    "batch": batch.FIELDS,
    "ack": ack.ACK_FIELDS,
    "resend": ack.RESEND_FIELDS,
    "state": presence.STATE_FIELDS,
    "health": presence.HEALTH_FIELDS,
    "delta": hq_document.FIELDS,
    "hq_key": hq_document.FIELDS,
    "position": follow_position.FIELDS,
    "config": hq_document.FIELDS,
    "config_result": config_result.FIELDS,
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
    tables = TABLES[message]
    newest, oldest = tables[max(tables)], tables[min(tables)]
    assert set(payload["properties"]) == set(newest)
    assert set(payload["required"]) == set(oldest)  # what every readable version has
    assert payload["additionalProperties"] is False
    if len(tables) == 1:
        assert payload["properties"]["schema_version"] == {"const": 1}
    else:  # health: each later version requires what it adds, the earlier ones refuse it
        versions = sorted(tables)
        assert payload["properties"]["schema_version"] == {"enum": versions}
        added = [set(tables[v]) - set(tables[u]) for u, v in itertools.pairwise(versions)]
        assert [set(gate["then"]["required"]) for gate in payload["allOf"]] == added


def test_older_healths_fit_and_a_mix_of_versions_does_not() -> None:
    doc = json.loads(presence.encode_health(presence.decode_health(json.dumps(BASE["health"]))))
    v2 = {k: v for k, v in doc.items() if k != "devices_state"} | {"schema_version": 2}
    v1 = {k: v for k, v in v2.items() if not k.startswith("config_")} | {"schema_version": 1}
    health = PAYLOADS["Health"]
    assert health.is_valid(doc) and health.is_valid(v2) and health.is_valid(v1)
    assert not health.is_valid({**v1, "config_version": 1})
    assert not health.is_valid({**v1, "schema_version": 2})
    assert not health.is_valid({**v2, "devices_state": None})
    assert not health.is_valid({**v2, "schema_version": 3})
    assert not health.is_valid({**doc, "config_outcome": "maybe"})
    for version, older in ((1, v1), (2, v2)):
        assert presence.decode_health(json.dumps(older)).devices_state is None, version


def test_the_envelope_schema_is_every_readable_version() -> None:
    schema = SPEC["components"]["schemas"]["EventEnvelope"]
    assert set(schema["properties"]) == set(event_envelope.FIELDS[2])
    # what every version requires (version 1 may omit its version; 2 adds prev_hash)
    assert set(schema["required"]) == set(event_envelope.FIELDS[1]) - {"schema_version"}
    assert set(schema["properties"]["schema_version"]["enum"]) == event_envelope.READABLE_VERSIONS
    assert set(schema["properties"]["type"]["enum"]) == {t.value for t in event_envelope.EventType}
    items = resolve("#/components/schemas/Batch")["properties"]["events"]["items"]
    assert items["contentSchema"] == {"$ref": "#/components/schemas/EventEnvelope"}


def test_the_delta_channel_names_exactly_the_change_ops_the_code_defines() -> None:
    text = " ".join(SPEC["channels"]["delta"]["description"].split())
    listed = text.split("delta.py): ", 1)[1].rstrip(".").split(", ")
    assert listed == [op.value for op in delta.Op]


def test_the_bounds_in_the_document_are_the_codes() -> None:
    events = resolve("#/components/schemas/Batch")["properties"]["events"]
    assert events["maxItems"] == batch.MAX_BATCH_EVENTS
    assert str(batch.MAX_BATCH_BYTES) in resolve("#/components/schemas/Batch")["description"]
    assert resolve("#/components/schemas/SeqRanges")["maxItems"] == ack.MAX_RANGES
    assert resolve("#/components/schemas/Id")["maxLength"] == topics.MAX_ID_CHARS


# -- the payload schemas accept what the code sends and refuse what its decoders refuse -----


def validator(schema: str) -> jsonschema_rs.Draft7Validator:
    """The document's schema ``schema``, its references resolved within the document."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": SPEC["components"]}
    return jsonschema_rs.Draft7Validator(root, validate_formats=True)


PAYLOADS = {name: validator(name) for name in ("Batch", "Ack", "ResendRequest", "State",
            "Health", "EventEnvelope", "HqDocument", "FollowPosition", "SnapshotOffer",
            "SnapshotRequest", "SnapshotChunkHeader", "ConfigResult",
            "ConfigDocument")}  # fmt: skip
SCHEMA_OF = {"ack": "Ack", "resend": "ResendRequest", "state": "State", "health": "Health",
             "snapshot_offer": "SnapshotOffer", "snapshot_request": "SnapshotRequest",
             "position": "FollowPosition", "config_result": "ConfigResult"}  # fmt: skip


@pytest.mark.parametrize("kind", SCHEMA_OF)
@settings(max_examples=100)
@given(data=st.data())
def test_every_message_the_code_encodes_fits_its_schema(kind: str, data: st.DataObject) -> None:
    strategy, encode, _, _ = KINDS[kind]
    doc = json.loads(encode(data.draw(strategy)))
    assert PAYLOADS[SCHEMA_OF[kind]].is_valid(doc), list(PAYLOADS[SCHEMA_OF[kind]].iter_errors(doc))


@settings(max_examples=100)
@given(envelopes(chained=None))
def test_every_event_of_either_version_fits_the_envelope_schema(event: EventEnvelope) -> None:
    doc = json.loads(encode(event))
    assert PAYLOADS["EventEnvelope"].is_valid(doc)
    if event.prev_hash is None:  # version 1: prev_hash refused, the version may be left out
        assert not PAYLOADS["EventEnvelope"].is_valid({**doc, "prev_hash": "0" * 64})
        assert PAYLOADS["EventEnvelope"].is_valid(
            {k: v for k, v in doc.items() if k != "schema_version"}
        )
    else:
        assert not PAYLOADS["EventEnvelope"].is_valid(
            {k: v for k, v in doc.items() if k != "prev_hash"}
        )


def test_a_batch_fits_its_schema_and_so_does_each_event_in_it() -> None:
    doc = json.loads(
        batch.encode(
            batch.SignedBatch(
                batch=batch.pack(
                    store_id=STORE,
                    box_id=BOX,
                    key_id="0a1b2c3d",
                    events=rows(stream(4, unchained=2)),
                ),
                signature=bytes(64),
            )
        )
    )
    assert PAYLOADS["Batch"].is_valid(doc)
    assert all(PAYLOADS["EventEnvelope"].is_valid(json.loads(text)) for text in doc["events"])
    assert not PAYLOADS["Batch"].is_valid({**doc, "extra": 1})
    assert not PAYLOADS["Batch"].is_valid({**doc, "box_id": "a/b"})
