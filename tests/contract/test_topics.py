"""The topic tree: builders make only topics the parser reads back, and every id or topic that
is not one of the tree's gets a typed ``TopicError``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import topics
from cloud_sync.contract.topics import (
    BadLevelError,
    Channel,
    ForeignTopicError,
    Topic,
    TopicError,
    TopicShapeError,
    TreeVersionError,
    UnknownChannelError,
    parse_topic,
    topic,
)

# Anything config accepts that a broker reads as one literal level.
ids = st.text(
    st.characters(codec="utf-8", exclude_characters="/+#", exclude_categories=("Cc",)),
    min_size=1,
    max_size=topics.MAX_ID_CHARS,
)


def test_the_tree_is_as_documented() -> None:
    assert topic("store-001", "box-001", Channel.EVENTS) == "storeside/v1/store-001/box-001/events"
    assert {topics.template(c) for c in Channel} == {
        f"storeside/v1/{{store_id}}/{{box_id}}/{c}"
        for c in (
            "events",
            "ack",
            "resend",
            "state",
            "health",
            "delta",
            "hq_key",
            "position",
            "snapshot",
            "snapshot_request",
            "snapshot_chunk",
            "config",
            "config_result",
        )
    }
    assert topics.box_subscriptions("s", "b") == (
        "storeside/v1/s/b/ack",
        "storeside/v1/s/b/resend",
        "storeside/v1/s/b/delta",
        "storeside/v1/s/b/hq_key",
        "storeside/v1/s/b/snapshot",
        "storeside/v1/s/b/snapshot_chunk",
        "storeside/v1/s/b/config",
    )
    assert topics.hq_subscriptions("ingest") == (
        "$share/ingest/storeside/v1/+/+/events",
        "storeside/v1/+/+/state",
        "storeside/v1/+/+/health",
    )
    assert topics.fanout_subscriptions() == (
        "storeside/v1/+/+/position",
        "storeside/v1/+/+/snapshot_request",
    )
    assert topics.config_subscriptions() == ("storeside/v1/+/+/config_result",)
    assert set(topics.CHANNELS) == set(Channel)
    assert {c for c, s in topics.CHANNELS.items() if s.retained} == {
        Channel.STATE,
        Channel.HEALTH,
        Channel.POSITION,
        Channel.SNAPSHOT,
        Channel.CONFIG,
        Channel.CONFIG_RESULT,
    }


@settings(max_examples=300)
@given(ids, ids, st.sampled_from(Channel))
def test_every_built_topic_parses_back(store: str, box: str, channel: Channel) -> None:
    name = topic(store, box, channel)
    assert parse_topic(name) == Topic(store_id=store, box_id=box, channel=channel)
    assert parse_topic(name).name == name


@pytest.mark.parametrize(
    "bad",
    ["", "a/b", "+", "#", "store+1", "s#", "a\x00b", "tab\there", "del\x7f", "c1\x85",
     "x" * 65, "lone\ud800"],
)  # fmt: skip
def test_an_id_that_is_not_one_literal_level_is_refused(bad: str) -> None:
    with pytest.raises(BadLevelError) as err:
        topic(bad, "box", Channel.EVENTS)
    assert err.value.level == "store_id" and err.value.reason == "bad_level"
    with pytest.raises(BadLevelError):
        topic("store", bad, Channel.ACK)
    if "/" not in bad and bad:
        with pytest.raises(BadLevelError):
            parse_topic(f"storeside/v1/store/{bad}/events")
    with pytest.raises(BadLevelError):
        topics.shared(bad, topics.subscription(Channel.EVENTS))


def test_the_longest_id_config_allows_is_a_level() -> None:
    assert parse_topic(topic("s" * 64, "b" * 64, Channel.STATE)).store_id == "s" * 64


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("other/v1/s/b/events", ForeignTopicError),
        ("", ForeignTopicError),
        ("/storeside/v1/s/b/events", ForeignTopicError),
        ("storeside", TreeVersionError),
        ("storeside/v2/s/b/events", TreeVersionError),
        ("storeside/V1/s/b/events", TreeVersionError),
        ("storeside/v1/s/b", TopicShapeError),
        ("storeside/v1/s/b/events/x", TopicShapeError),
        ("storeside/v1/s/b/events/", TopicShapeError),
        ("storeside/v1//b/events", BadLevelError),
        ("storeside/v1/+/+/events", BadLevelError),  # a filter is not a topic
        ("storeside/v1/s/b/telemetry", UnknownChannelError),
        ("storeside/v1/s/b/#", UnknownChannelError),
    ],
)
def test_a_topic_not_of_the_tree_is_named(name: str, error: type[TopicError]) -> None:
    with pytest.raises(error) as err:
        parse_topic(name)
    assert type(err.value) is error and err.value.reason and str(err.value)


def test_the_version_error_says_which() -> None:
    with pytest.raises(TreeVersionError) as err:
        parse_topic("storeside/v2/s/b/events")
    assert err.value.version == "v2"


@settings(max_examples=500)
@given(st.text(max_size=80) | st.builds("storeside/v1/{}".format, st.text(max_size=40)))
def test_any_text_gets_a_topic_or_a_typed_error(name: str) -> None:
    try:
        found = parse_topic(name)
    except TopicError as exc:
        assert exc.reason
    else:
        assert found.name == name
