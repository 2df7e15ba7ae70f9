"""CouponDocument JSON round trip (Hypothesis) and refusal of malformed stored documents."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.printing.document import CouponDocument, DocumentError, sample_document

text = st.text(max_size=60)
documents = st.builds(
    CouponDocument,
    header_lines=st.lists(text, max_size=4).map(tuple),
    offer_text=text,
    qr_payload=st.text(min_size=1, max_size=200),
    display_code=st.text(min_size=1, max_size=20),
    expires_on=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    terms=text,
    reminder=text,
    reprint=st.booleans(),
)


@settings(max_examples=150)
@given(documents)
def test_json_round_trip(doc: CouponDocument) -> None:
    assert CouponDocument.from_json(doc.to_json()) == doc


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("expires_on"),
        lambda d: d.update(extra=1),
        lambda d: d.update(format=99),
        lambda d: d.update(header_lines="not a list"),
        lambda d: d.update(reprint="yes"),
        lambda d: d.update(expires_on="2025-13-40"),
        lambda d: d.update(qr_payload=""),
        lambda d: d.update(offer_text=5),
    ],
)
def test_malformed_documents_are_refused(mutate: object) -> None:
    data = sample_document().to_dict()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(DocumentError):
        CouponDocument.from_json(json.dumps(data))


def test_not_json_is_refused() -> None:
    for bad in ("{", "[]", "null"):
        with pytest.raises(DocumentError):
            CouponDocument.from_json(bad)
