"""What the receiver's answer means for an offer: delivered, again later, or failed. Pure.

Theory of operation
-------------------
The webhook (``webhook.py``) turns every attempt into an ``Answer`` (the receiver's HTTP
status, a ``Retry-After`` if it gave one, and the start of its body) or a ``NoAnswer`` (a
timeout, a refused or reset connection, a TLS failure, a broken response). ``judge`` decides,
in this order:

    2xx ....................................................... Delivered
    408, 425, 429, 5xx, or no answer: transient ............... RetryAt, after
        ``RetryPolicy.delay(attempt)``: ``base * 2 ** (attempt - 1)`` capped at ``cap``
        (a longer ``Retry-After`` is honoured up to ``cap``), unless
        the attempts ran out (``max_attempts``) ............... GiveUp "gave up after N ..."
        or the offer expires before the next attempt .......... GiveUp "expires before ..."
    any other status (1xx, 3xx: redirects are not followed, a moved webhook is a
    configuration to fix; 4xx: the receiver refuses this request, and sending it again
    cannot change that) ....................................... GiveUp, permanent

No jitter: one worker sends one request at a time, so a receiver's outage does not end in a
herd of retries at one instant; each offer's schedule is its own (it counts from its own
attempts). A 4xx caused by HQ's configuration (a wrong secret gives 401 on every offer) fails
them all; ``storeside-hq push retry --failed`` requeues them once it is fixed.

``reason`` texts are what the delivery record keeps and the log shows: the status and the
first ``EXCERPT_CHARS`` of the receiver's body, printable, with the QR payload (a working
coupon) blanked if the receiver echoed it (``excerpt``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

EXCERPT_CHARS: Final = 200
RETRIED_STATUSES: Final = frozenset({408, 425, 429})
REDACTED: Final = "[redacted]"


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    status: int
    body: str = ""  # ``excerpt`` of what the receiver said
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoAnswer:
    reason: str  # "timed out after 10 s", "connection refused", ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivered:
    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryAt:
    due_at: datetime
    status: int | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GiveUp:
    status: int | None
    reason: str


Verdict = Delivered | RetryAt | GiveUp


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=10)
    max_attempts: int = 40  # ~6 hours at the defaults: a receiver's outage of an afternoon

    def __post_init__(self) -> None:
        if self.base <= timedelta(0) or self.cap < self.base or self.max_attempts < 1:
            raise ValueError("a retry policy needs 0 < base <= cap and max_attempts >= 1")

    def delay(self, attempt: int, retry_after_s: float | None = None) -> timedelta:
        """How long after failed attempt ``attempt`` (1 = the first) the next one goes."""
        # Capped before it is computed: 2 ** 40 seconds overflows a timedelta.
        exponent = min(attempt - 1, 40)
        wait: timedelta = min(self.cap, self.base * (2**exponent))
        if retry_after_s is not None and retry_after_s > wait.total_seconds():
            wait = min(self.cap, timedelta(seconds=retry_after_s))
        return wait


def judge(
    result: Answer | NoAnswer,
    *,
    attempt: int,
    policy: RetryPolicy,
    now: datetime,
    expires_at: datetime,
) -> Verdict:
    """What ``result`` of attempt ``attempt`` (1 = the first) means (the module docstring)."""
    if isinstance(result, Answer):
        status = result.status
        said = f"HTTP {status}" + (f": {result.body}" if result.body else "")
        if 200 <= status < 300:
            return Delivered(status=status)
        if not (status in RETRIED_STATUSES or 500 <= status < 600):
            return GiveUp(status=status, reason=f"refused: {said}")
        retry_after = result.retry_after_s
    else:
        status, said, retry_after = None, result.reason, None
    if attempt >= policy.max_attempts:
        return GiveUp(status=status, reason=f"gave up after {attempt} attempts: {said}")
    due_at = now + policy.delay(attempt, retry_after)
    if due_at >= expires_at:
        return GiveUp(status=status, reason=f"the offer expires before the next attempt: {said}")
    return RetryAt(due_at=due_at, status=status, reason=said)


def excerpt(raw: bytes, *, hide: Sequence[str] = ()) -> str:
    """The start of a receiver's body, fit for a log line and the delivery record: decoded
    leniently, the texts of ``hide`` blanked, whitespace collapsed, control characters
    dropped, at most ``EXCERPT_CHARS``."""
    text = raw.decode("utf-8", errors="replace")
    for secret in hide:
        if secret:
            text = text.replace(secret, REDACTED)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
