"""Fuzzing every decoder of the link's messages: random bytes, any JSON document, and valid
encodings cut short or with a byte changed get a message or a typed ``MessageError``, never
another exception. Hypothesis prints the failing example and its seed (``--hypothesis-seed``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import batch as batches
from cloud_sync.contract import config_document, hq_document, hq_key
from cloud_sync.contract import delta as deltas
from cloud_sync.contract.batch import SignedBatch
from cloud_sync.contract.message_codec import MessageError
from tests.contract.streams import BOX, STORE, rows, stream
from tests.contract.test_config_document import config_documents, encoded
from tests.contract.test_event_envelope import json_values
from tests.contract.test_hq_documents import (
    announcements,
    delta_values,
    encoded_announcement,
    encoded_delta,
    signed_documents,
)
from tests.contract.test_link_messages import KINDS


@st.composite
def signed_batches(draw: st.DrawFn) -> SignedBatch:
    count = draw(st.integers(min_value=1, max_value=5))
    batch = batches.pack(
        store_id=STORE, box_id=BOX, key_id="0a1b2c3d", events=rows(stream(count, unchained=1))
    )
    return SignedBatch(batch=batch, signature=draw(st.binary(min_size=64, max_size=64)))


DECODERS: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], bytes], Callable[..., Any]]]
DECODERS = {
    "batch": (signed_batches(), batches.encode, batches.decode),
    "hq_document": (signed_documents, hq_document.encode, hq_document.decode),
    "delta": (delta_values, encoded_delta, deltas.decode),
    "hq_key": (announcements, encoded_announcement, hq_key.decode),
    "config_document": (config_documents(), encoded, config_document.decode),
} | {kind: (strategy, encode, decode) for kind, (strategy, encode, decode, _) in KINDS.items()}


def typed(decode: Callable[..., Any], data: str | bytes) -> object:
    try:
        return decode(data)
    except MessageError as exc:
        assert exc.reason and str(exc)
        return exc


@pytest.mark.parametrize("kind", DECODERS)
@settings(max_examples=200)
@given(data=st.binary(max_size=400))
def test_random_bytes_get_a_typed_answer(kind: str, data: bytes) -> None:
    typed(DECODERS[kind][2], data)


@pytest.mark.parametrize("kind", DECODERS)
@settings(max_examples=200)
@given(value=json_values)
def test_any_json_document_gets_a_typed_answer(kind: str, value: object) -> None:
    typed(DECODERS[kind][2], json.dumps(value))


@pytest.mark.parametrize("kind", DECODERS)
@settings(max_examples=200)
@given(data=st.data())
def test_mangled_encodings_get_a_typed_answer(kind: str, data: st.DataObject) -> None:
    strategy, encode, decode = DECODERS[kind]
    encoded = encode(data.draw(strategy))
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    assert isinstance(typed(decode, encoded[:cut]), MessageError)  # truncated: never valid
    byte = data.draw(st.integers(min_value=0, max_value=255))
    typed(decode, encoded[:cut] + bytes([byte]) + encoded[cut + 1 :])
    typed(decode, encoded[:cut] + bytes([byte]) + encoded[cut:])


@pytest.mark.parametrize("kind", DECODERS)
@settings(max_examples=100)
@given(data=st.data())
def test_a_valid_document_with_any_field_replaced_gets_a_typed_answer(
    kind: str, data: st.DataObject
) -> None:
    strategy, encode, decode = DECODERS[kind]
    doc = json.loads(encode(data.draw(strategy)))
    name = data.draw(st.sampled_from(sorted(doc)))
    typed(decode, json.dumps({**doc, name: data.draw(json_values)}))
