"""What a box may know of a member's points offline: HQ's balance and what it includes.

Theory of operation
-------------------
A box burns points with the internet down, so it must know what the member holds. HQ's ledger
holds the truth; each box hears it as ``member.points`` changes (``delta.py``) and in its
snapshot's ``points_balances`` table: the member's regular balance in a programme, and
``marks``, naming for every box that has posted for the member the ``seq`` of that box's last
``points.posted`` event the balance includes. HQ applies a box's events in their sequence
order, so "through seq n" is exact. A box then knows::

    known = HQ balance + its own postings for the member with seq > its own mark

and never counts one of its postings twice (in HQ's balance and again as unsynced) nor misses
one (acknowledged by HQ but not yet in the balance it heard). Other boxes' postings HQ has not
applied yet are unknown to it: that is the risk the configured offline allowance names.

``marks`` is a closed JSON object, schema version 1, read with the link's strict codec
(``message_codec``)::

    schema_version  1
    boxes           [{box_id: a topic level, seq: int >= 1}]   at most MAX_BOXES, ids unique

``encode_marks`` writes the canonical text (boxes sorted by id), so one state has one text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.decode_errors import (
    MissingFieldError,
    UnknownFieldError,
    WrongTypeError,
)
from cloud_sync.contract.message_codec import Kind, require
from cloud_sync.contract.topics import level_fault

SCHEMA_VERSION: Final = 1
MAX_BOXES: Final = 512  # boxes one member has bought at; HQ keeps the most recent
MAX_MARKS_BYTES: Final = 64 * 1024
FIELDS: Final = {SCHEMA_VERSION: {"schema_version": Kind.INT, "boxes": Kind.LIST}}
_MAX_INT64: Final = 2**63 - 1


def encode_marks(marks: Mapping[str, int]) -> str:
    """The canonical text of ``marks`` (box id -> seq); ValueError if ``decode_marks`` would
    refuse it."""
    text = message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "boxes": [{"box_id": box, "seq": seq} for box, seq in sorted(marks.items())],
        }
    )
    try:
        decode_marks(text)
    except message_codec.MessageError as exc:
        raise ValueError(f"not valid points marks: {exc}") from None
    return text


def decode_marks(data: str | bytes) -> dict[str, int]:
    """Box id -> seq; a ``MessageError`` naming the first fault if ``data`` is not marks."""
    _, doc = message_codec.read(data, max_bytes=MAX_MARKS_BYTES, fields=FIELDS)
    boxes = doc["boxes"]
    require(len(boxes) <= MAX_BOXES, "boxes", len(boxes), f"over {MAX_BOXES} boxes")
    marks: dict[str, int] = {}
    for i, item in enumerate(boxes):
        where = f"boxes[{i}]"
        if not isinstance(item, dict):
            raise WrongTypeError(where, Kind.OBJECT)
        unknown = sorted(item.keys() - {"box_id", "seq"})
        if unknown:
            name = f"{where}.{unknown[0]}"
            raise UnknownFieldError(f"{name} is not a field", field=name)
        for name in ("box_id", "seq"):
            if name not in item:
                raise MissingFieldError(f"{where}.{name} is missing", field=f"{where}.{name}")
        box, seq = item["box_id"], item["seq"]
        if not message_codec.is_text(box):
            raise WrongTypeError(f"{where}.box_id", Kind.STR)
        fault = level_fault(box)
        require(fault is None, f"{where}.box_id", box, f"not a level ({fault})")
        if type(seq) is not int:
            raise WrongTypeError(f"{where}.seq", Kind.INT)
        require(1 <= seq <= _MAX_INT64, f"{where}.seq", seq, "a seq is >= 1")
        require(box not in marks, f"{where}.box_id", box, "a box twice")
        marks[box] = seq
    return marks
