"""What the link needs before it starts: a box id that is one topic level and owns the cache
file's events, a broker URL without credentials, a password file only its owner can read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from config.model import AgentConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.errors import BoxMismatchError
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from edge_agent.sync.credentials import CredentialsError, read_password


def test_a_fresh_cache_takes_the_configured_box_id(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    CodeCache.open(path, store_id="s1").close()  # made without one: a random id
    cache = CodeCache.open(path, store_id="s1", box_id="box-7")  # no events yet: adopted
    assert cache.box_id == "box-7"
    with cache.transaction() as conn:
        event = event_log.append(
            conn,
            box_id=cache.box_id,
            type=EventType.LINKED,
            occurred_at=datetime.now(UTC),
            code=None,
            attribution=Attribution(store_id="s1", till_id="t", cashier_id="c"),
        )
    assert event.box_id == "box-7"
    cache.close()
    with pytest.raises(BoxMismatchError, match="box-7") as refused:
        CodeCache.open(path, store_id="s1", box_id="box-8")
    assert "store.box_id" in str(refused.value)
    assert CodeCache.open(path, store_id="s1", box_id="box-7").box_id == "box-7"


@pytest.mark.parametrize("box", ["a/b", "+", "#", "box\x00", ""])
def test_an_id_that_is_no_topic_level_is_refused(box: str) -> None:
    with pytest.raises(ValidationError):
        AgentConfig.model_validate({"store": {"box_id": box}})


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("tcp://hq:1883", "mqtt://"),
        ("mqtts://", "no host"),
        ("mqtts://box:secret@hq:8883", "credentials"),
        ("mqtts://hq:8883/topic", "nothing else"),
        ("mqtts://hq:99999", "(?i)port"),
    ],
)
def test_a_broker_url_is_scheme_host_port(url: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        AgentConfig.model_validate({"sync": {"broker_url": url}})


def test_the_endpoint_defaults_its_port_by_scheme() -> None:
    sync = AgentConfig.model_validate({"sync": {"broker_url": "mqtts://hq.example"}}).sync
    assert sync.endpoint == ("hq.example", 8883, True)
    plain = AgentConfig.model_validate({"sync": {"broker_url": "mqtt://10.0.0.2:1884"}}).sync
    assert plain.endpoint == ("10.0.0.2", 1884, False)
    assert AgentConfig().sync.endpoint is None


def test_the_password_file_is_its_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    with pytest.raises(CredentialsError, match="no broker password"):
        read_password(path)
    path.write_text("s3cret\n")
    path.chmod(0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        read_password(path)
    path.chmod(0o600)
    assert read_password(path) == "s3cret"
    path.write_text("\n")
    with pytest.raises(CredentialsError, match="no password"):
        read_password(path)
