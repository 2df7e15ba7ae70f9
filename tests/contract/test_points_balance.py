"""``member.points`` marks: canonical text, round trip, and typed refusals."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.contract.decode_errors import DecodeError
from cloud_sync.contract.message_codec import MessageError
from cloud_sync.contract.points_balance import decode_marks, encode_marks

boxes = st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True)


@given(st.dictionaries(boxes, st.integers(1, 2**63 - 1), max_size=20))
def test_marks_round_trip_canonically(marks: dict[str, int]) -> None:
    text = encode_marks(marks)
    assert decode_marks(text) == marks
    assert encode_marks(dict(reversed(list(marks.items())))) == text


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"schema_version":1,"boxes":[{"box_id":"b1","seq":0}]}', "boxes[0].seq"),
        ('{"schema_version":1,"boxes":[{"box_id":"b1","seq":true}]}', "boxes[0].seq"),
        ('{"schema_version":1,"boxes":[{"box_id":"a/b","seq":1}]}', "boxes[0].box_id"),
        ('{"schema_version":1,"boxes":[{"box_id":"b","seq":1},{"box_id":"b","seq":2}]}',
         "boxes[1].box_id"),
        ('{"schema_version":1,"boxes":[{"box_id":"b","seq":1,"x":1}]}', "boxes[0].x"),
        ('{"schema_version":1,"boxes":[{"seq":1}]}', "boxes[0].box_id"),
        ('{"schema_version":1,"boxes":[7]}', "boxes[0]"),
        ('{"schema_version":2,"boxes":[]}', "schema_version"),
    ],
)  # fmt: skip
def test_bad_marks_are_named(text: str, field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_marks(text)
    assert caught.value.field == field


@given(st.text(max_size=60) | st.binary(max_size=60))
def test_any_input_gets_a_typed_answer(data: str | bytes) -> None:
    with contextlib.suppress(MessageError):  # anything else escaping fails the test
        decode_marks(data)
