"""The ACL evaluator on the shipped config/mosquitto.acl: what the embedded broker enforces
must be what Mosquitto enforces from the same file (tests/mqtt/test_broker_acl.py pins that
side), plus SUBSCRIBE, which Mosquitto 2.0 does not check."""

from __future__ import annotations

import pytest

from cloud_sync.hq.broker.acl import covers, matches, parse_acl, read_acl
from cloud_sync.hq.broker.errors import BrokerConfigError
from cloud_sync.hq.broker.shipped_files import SHIPPED_ACL

RULES = read_acl(SHIPPED_ACL)


def t(box: str, leaf: str, store: str = "store-001") -> str:
    return f"storeside/v1/{store}/{box}/{leaf}"


@pytest.mark.parametrize("leaf", ["events", "state", "health"])
def test_a_box_writes_only_its_own_upstream_channels(leaf: str) -> None:
    assert RULES.may_publish("box-a", "box-a", t("box-a", leaf))
    assert RULES.may_publish("box-a", "box-a", t("box-a", leaf, store="store-999"))
    assert not RULES.may_publish("box-a", "box-a", t("box-b", leaf))
    assert not RULES.may_receive("box-a", "box-a", t("box-b", leaf))


@pytest.mark.parametrize("leaf", ["ack", "resend"])
def test_a_box_reads_only_its_own_downstream_channels(leaf: str) -> None:
    assert RULES.may_receive("box-a", "box-a", t("box-a", leaf))
    assert not RULES.may_receive("box-a", "box-a", t("box-b", leaf))
    assert not RULES.may_publish("box-a", "box-a", t("box-a", leaf))
    assert RULES.may_subscribe("box-a", "box-a", t("box-a", leaf))
    assert not RULES.may_subscribe("box-a", "box-a", "storeside/v1/+/+/" + leaf)


def test_hq_ingest_is_the_mirror_image() -> None:
    for leaf in ("events", "state", "health"):
        assert RULES.may_subscribe("hq-ingest", "w1", f"storeside/v1/+/+/{leaf}")
        assert RULES.may_receive("hq-ingest", "w1", t("box-a", leaf))
        assert not RULES.may_publish("hq-ingest", "w1", t("box-a", leaf))
    for leaf in ("ack", "resend"):
        assert RULES.may_publish("hq-ingest", "w1", t("box-a", leaf))
        assert not RULES.may_receive("hq-ingest", "w1", t("box-a", leaf))


def test_wildcard_subscriptions_beyond_what_one_may_read_are_refused() -> None:
    for broad in (
        "#",
        "storeside/#",
        "storeside/v1/+/box-a/#",
        "$share/ingest/" + t("box-a", "ack"),
    ):
        assert not RULES.may_subscribe("box-a", "box-a", broad), broad
    assert not RULES.may_subscribe("hq-ingest", "w1", "storeside/v1/+/+/+")


def test_usernames_that_would_be_wildcards_or_extra_levels_get_no_pattern() -> None:
    for user in ("+", "#", "box+", "a#"):
        assert not RULES.may_publish(user, "c", t(user, "events")), user
        assert not RULES.may_publish(user, "c", t("box-a", "events")), user
    # Substituted verbatim, the slash adds a level: the box cannot write its own events.
    assert not RULES.may_publish("store-001/box-a", "c", t("box-a", "events"))


def test_mosquitto_matching_rules() -> None:
    assert matches("a/+/c", "a/b/c")
    assert matches("a/#", "a") and matches("a/#", "a/b/c") and matches("#", "a/b")
    assert not matches("a/+", "a/b/c") and not matches("a/b", "a/b/c")
    assert not matches("+/x", "$SYS/x") and not matches("#", "$SYS/x")
    assert covers("a/+/c", "a/b/c") and covers("a/+/c", "a/+/c") and covers("a/#", "a/b/#")
    assert covers("a/#", "a")
    assert not covers("a/b/c", "a/+/c") and not covers("a/+", "a/#") and not covers("a/b", "a")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("topic read a/b\n", "anonymous"),
        ("user x\ntopic deny a/b\n", "deny"),
        ("user\n", "without a name"),
        ("pattern read\n", "without a topic"),
        ("include_dir /etc\n", "not an ACL line"),
    ],
)
def test_lines_the_embedded_broker_cannot_read_the_same_way_are_refused(
    text: str, why: str
) -> None:
    with pytest.raises(BrokerConfigError, match=why):
        parse_acl(text)


def test_no_access_word_means_readwrite_as_in_mosquitto() -> None:
    rules = parse_acl("user u\ntopic x/y\n")
    assert rules.may_publish("u", "c", "x/y") and rules.may_receive("u", "c", "x/y")
    assert parse_acl("pattern read d/%c\n").may_receive("u", "dev-1", "d/dev-1")
