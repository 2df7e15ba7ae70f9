"""The config document a box receives from HQ: round trips, the version rule, typed refusals,
and the AsyncAPI document's schema of it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import config_document
from cloud_sync.contract.config_document import ConfigDocument
from cloud_sync.contract.decode_errors import (
    BadValueError,
    MissingFieldError,
    OversizeError,
    UnknownFieldError,
    WrongTypeError,
)
from tests.contract.test_event_envelope import json_values
from tests.contract.test_link_messages import times
from tests.contract.test_topics import ids

versions = st.integers(min_value=1, max_value=2**63 - 1)


@st.composite
def config_documents(draw: st.DrawFn) -> ConfigDocument:
    fleet = draw(st.none() | versions)
    store = draw(versions) if fleet is None else draw(st.none() | versions)
    return ConfigDocument(
        store_id=draw(ids),
        version=max(v for v in (fleet, store) if v is not None),
        fleet_version=fleet,
        store_version=store,
        issued_at=draw(times),
        overlay=draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4)),
    )


def encoded(document: ConfigDocument) -> bytes:
    return config_document.encode(document).encode("ascii")


BASE: dict[str, Any] = {
    "schema_version": 1,
    "store_id": "store-001",
    "version": 7,
    "fleet_version": 3,
    "store_version": 7,
    "issued_at": "2026-01-01T00:00:00+00:00",
    "overlay": {"redemption": {"till_failure_limit": 3}},
}


@settings(max_examples=150)
@given(config_documents())
def test_every_document_round_trips_byte_for_byte(document: ConfigDocument) -> None:
    text = config_document.encode(document)
    assert config_document.decode(text) == document
    assert config_document.decode(text.encode()) == document
    assert config_document.encode(config_document.decode(text)) == text


def test_the_base_document_reads() -> None:
    doc = config_document.decode(json.dumps(BASE))
    assert doc.version == 7 and doc.overlay == {"redemption": {"till_failure_limit": 3}}
    assert doc.issued_at == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "change",
    [
        {"version": 0},
        {"version": 8},  # not the newer of the two layers
        {"fleet_version": 9},  # a layer newer than the document
        {"store_version": 0},
        {"fleet_version": None, "store_version": None, "version": 7},  # no layer at all
        {"store_id": "a+b"},
        {"issued_at": "2026-01-01T00:00:00"},
    ],
)
def test_an_impossible_value_is_named(change: dict[str, Any]) -> None:
    with pytest.raises(BadValueError) as err:
        config_document.decode(json.dumps({**BASE, **change}))
    assert err.value.field in change


def test_closed_fields_and_types() -> None:
    with pytest.raises(UnknownFieldError):
        config_document.decode(json.dumps({**BASE, "box_id": "b"}))
    with pytest.raises(MissingFieldError):
        config_document.decode(json.dumps({k: v for k, v in BASE.items() if k != "overlay"}))
    with pytest.raises(WrongTypeError) as wrong:
        config_document.decode(json.dumps({**BASE, "overlay": [1]}))
    assert wrong.value.field == "overlay"
    with pytest.raises(OversizeError):
        config_document.decode(" " * (config_document.MAX_CONFIG_BYTES + 1))
