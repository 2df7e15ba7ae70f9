"""The ledger page's cursor: an opaque token for the place a page ended.

A page is a keyset walk of ``ledger_entries_by_holder`` newest first, so the place is the
last entry's key ``(at, pos, idx)``, never an offset: a page costs the same at entry 10 as at
entry 100,000, and entries booked meanwhile (append-only, so never *inside* the walk's past)
cannot shift it. The token is ``v1.<at>.<pos>.<idx>`` in unpadded base64url, so clients treat
it as opaque and the format can change under a new version prefix. ``decode`` raises
``CursorError`` (the API's 422 ``bad_cursor``) for anything ``encode`` did not make.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final

_TEXT: Final = re.compile(r"v1\.(-?[0-9]{1,19})\.([0-9]{1,19})\.([0-9]{1,9})")
MAX_LENGTH: Final = 96  # base64 of the longest valid text, with room


class CursorError(ValueError):
    """A cursor this API did not hand out (or of a retired format)."""


@dataclass(frozen=True, slots=True, order=True)
class Key:
    """An entry's place in a member's ledger: its time, then booking order."""

    at: int
    pos: int
    idx: int


def encode(key: Key) -> str:
    text = f"v1.{key.at}.{key.pos}.{key.idx}"
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def decode(token: str) -> Key:
    if len(token) > MAX_LENGTH:
        raise CursorError("the cursor is longer than any this API hands out")
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError("the cursor is not one this API handed out") from None
    match = _TEXT.fullmatch(text)
    if match is None:
        raise CursorError("the cursor is not one this API handed out")
    at, pos, idx = (int(g) for g in match.groups())
    if abs(at) >= 2**63 or pos >= 2**63:
        raise CursorError("the cursor is out of range")
    return Key(at, pos, idx)
