"""The webhook's signature, both ends: HMAC-SHA256 over a timestamp and the body. Pure.

Theory of operation
-------------------
HQ and the receiver share a secret (a file at HQ, ``secret_file.py``). Each request carries

    Storeside-Signature: t=<unix seconds>,v1=<64 lowercase hex digits>

where ``v1 = HMAC-SHA256(secret, "<t>." + body)``: the body's exact bytes, so the receiver
checks them before parsing, and the timestamp, so a captured request cannot be replayed
later: the receiver refuses a ``t`` further than ``TOLERANCE`` from its clock (5 minutes, a
skew any NTP-synced host keeps). Within that window a replay is the same event id, which the
receiver deduplicates anyway (delivery is at-least-once: ``worker.py``). Each attempt is
signed afresh with its own ``t``.

``verify`` is the receiver's check, shipped so that the tests, the demo's receiver and a
Python receiver use the scheme's one definition (``docs/member-push-webhook.md`` describes it
for other languages). It returns the reason it refuses, never raises, and compares in constant
time. A header may carry several ``v1=`` (a sender rotating secrets may sign with both); one
match is enough. Unknown keys in the header are ignored, so a later scheme can add its own.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta
from typing import Final

HEADER: Final = "Storeside-Signature"
SCHEME: Final = "v1"
TOLERANCE: Final = timedelta(minutes=5)
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_DIGITS: Final = re.compile(r"[0-9]{1,12}")


def digest(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``v1`` value: HMAC-SHA256 hex of ``b"<timestamp>." + body``."""
    return hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, *, now: datetime) -> str:
    """The header's value for ``body`` sent at ``now``."""
    timestamp = int(now.timestamp())
    return f"t={timestamp},{SCHEME}={digest(secret, timestamp, body)}"


def verify(
    secret: bytes,
    header: str | None,
    body: bytes,
    *,
    now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> str | None:
    """None if ``header`` signs ``body`` with ``secret`` within ``tolerance`` of ``now``;
    otherwise why not."""
    if not header:
        return f"no {HEADER} header"
    timestamp: int | None = None
    given: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return f"{HEADER}: {part.strip()!r} is not key=value"
        if key == "t":
            if timestamp is not None or _DIGITS.fullmatch(value) is None:
                return f"{HEADER}: t must be given once, as unix seconds"
            timestamp = int(value)
        elif key == SCHEME:
            given.append(value)
    if timestamp is None:
        return f"{HEADER}: no t="
    if not given:
        return f"{HEADER}: no {SCHEME}="
    skew = abs(now.timestamp() - timestamp)
    if skew > tolerance.total_seconds():
        return (
            f"{HEADER}: t is {skew:.0f} s from this clock (at most {tolerance.total_seconds():.0f})"
        )
    expected = digest(secret, timestamp, body)
    # Every candidate is compared (no early exit), each in constant time.
    matched = [hmac.compare_digest(expected, v) for v in given if _HEX64.fullmatch(v)]
    if not any(matched):
        return f"{HEADER}: no {SCHEME} signature matches the body"
    return None
