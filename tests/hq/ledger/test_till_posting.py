"""``till_posting.read`` takes whatever a box put in ``details``: a posting, or a typed
refusal naming the field, never another exception (Hypothesis)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.hq.ledger import till_posting
from cloud_sync.hq.ledger.till_posting import UnreadablePostingError
from edge_agent.domain.points import codec
from tests.hq.ledger.postings import earn, line

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
GOOD = codec.encode(earn("e1", "ann", 10))


def body(details: Any) -> str:
    return json.dumps({"type": "points.posted", "details": details})


@given(
    details=st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"ledger": st.just(GOOD) | JSON}, optional={"lines": JSON, "variant": JSON}
        ),
        st.fixed_dictionaries(
            {
                "ledger": st.just(GOOD),
                "lines": st.lists(
                    st.dictionaries(st.sampled_from(sorted(till_posting.LINE_FIELDS)), JSON),
                    max_size=3,
                ),
            }
        ),
    )
)
def test_any_details_read_as_a_posting_or_a_typed_refusal(details: Any) -> None:
    try:
        posting = till_posting.read(body(details))
    except UnreadablePostingError as exc:
        assert exc.field.startswith("details") and exc.reason
        return
    assert posting.event == codec.decode(details["ledger"])


def test_a_good_posting_and_each_bad_line_field() -> None:
    good = {"ledger": GOOD, "lines": [line(1, "earn", 10)], "rules_version": "r1", "variant": "B"}
    posting = till_posting.read(body(good))
    assert (posting.lines[0].band, posting.rules_version, posting.variant) == ("A", "r1", "B")
    for name, value in [
        ("band", "D"),
        ("side", "both"),
        ("points", -1),
        ("line", True),
        ("sku", ""),
    ]:
        bad = {**good, "lines": [{**line(1, "earn", 10), name: value}]}
        with pytest.raises(UnreadablePostingError) as caught:
            till_posting.read(body(bad))
        assert caught.value.field == f"details.lines[0].{name}"
    twice = {**good, "lines": [line(1, "earn", 10), line(1, "earn", 3)]}
    with pytest.raises(UnreadablePostingError, match="twice"):
        till_posting.read(body(twice))
