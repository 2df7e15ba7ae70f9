"""The typed refusal every frame parser returns instead of raising.

A parser that recognises a frame family (the Apple iBeacon prefix, the AltBeacon code, the
Eddystone service) but cannot decode the bytes answers a ``Refusal``: which family, why, and a
short detail for the log. Bytes that belong to no family the parsers know are not a refusal
(most advertisements in a shop are phones, headphones and watches): the dispatcher skips them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FrameKind(StrEnum):
    IBEACON = "ibeacon"
    ALTBEACON = "altbeacon"
    EDDYSTONE_UID = "eddystone_uid"
    EDDYSTONE_URL = "eddystone_url"
    EDDYSTONE_TLM = "eddystone_tlm"
    EDDYSTONE_ETLM = "eddystone_etlm"
    EDDYSTONE_EID = "eddystone_eid"
    EDDYSTONE = "eddystone"  # an Eddystone service-data block whose frame type is unknown
    MEMBER = "member"  # the Storeside member app's rotating identifier


class RefusalReason(StrEnum):
    TRUNCATED = "truncated"  # shorter than the format's fixed layout
    OVERSIZED = "oversized"  # longer than the format allows
    WRONG_LENGTH = "wrong_length"  # an inner length field disagrees with the layout
    UNKNOWN_FRAME_TYPE = "unknown_frame_type"
    UNKNOWN_VERSION = "unknown_version"
    BAD_URL_SCHEME = "bad_url_scheme"
    BAD_URL_CODE = "bad_url_code"


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: FrameKind
    reason: RefusalReason
    detail: str


def length_refusal(kind: FrameKind, data: bytes, minimum: int, maximum: int) -> Refusal | None:
    """A TRUNCATED or OVERSIZED refusal when ``len(data)`` is outside ``[minimum, maximum]``."""
    if len(data) < minimum:
        return Refusal(kind, RefusalReason.TRUNCATED, f"{len(data)} bytes, needs {minimum}")
    if len(data) > maximum:
        return Refusal(kind, RefusalReason.OVERSIZED, f"{len(data)} bytes, at most {maximum}")
    return None
