"""What an answer means for an offer (pure): 2xx delivered, 408/425/429/5xx and no answer
again after a capped exponential delay, anything else failed for good; the attempts and the
offer's expiry end the retries; what a receiver said is kept printable, short, and without
the QR payload."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloud_sync.hq.member_push.retry_policy import (
    EXCERPT_CHARS,
    Answer,
    Delivered,
    GiveUp,
    NoAnswer,
    RetryAt,
    RetryPolicy,
    excerpt,
    judge,
)
from tests.hq.ingest.builders import AT

POLICY = RetryPolicy(base=timedelta(seconds=2), cap=timedelta(seconds=60), max_attempts=5)
FAR = AT + timedelta(days=7)


def verdict(result: Answer | NoAnswer, attempt: int = 1, expires_in_s: float = 7 * 86_400):
    return judge(
        result,
        attempt=attempt,
        policy=POLICY,
        now=AT,
        expires_at=AT + timedelta(seconds=expires_in_s),
    )


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert verdict(Answer(status=status)) == Delivered(status=status)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_transient_statuses_retry(status: int) -> None:
    v = verdict(Answer(status=status, body="busy"))
    assert v == RetryAt(
        due_at=AT + timedelta(seconds=2), status=status, reason=f"HTTP {status}: busy"
    )


@pytest.mark.parametrize("status", [100, 301, 302, 307, 400, 401, 403, 404, 409, 410, 422, 600])
def test_other_statuses_fail_for_good(status: int) -> None:
    v = verdict(Answer(status=status, body="no such member"))
    assert v == GiveUp(status=status, reason=f"refused: HTTP {status}: no such member")


def test_no_answer_retries_with_a_capped_doubling_delay() -> None:
    delays = [POLICY.delay(n) for n in range(1, 8)]
    assert [d.total_seconds() for d in delays] == [2, 4, 8, 16, 32, 60, 60]
    assert POLICY.delay(10_000) == POLICY.cap  # no overflow far out
    v = verdict(NoAnswer(reason="timed out after 10 s"), attempt=3)
    assert v == RetryAt(
        due_at=AT + timedelta(seconds=8), status=None, reason="timed out after 10 s"
    )


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    assert verdict(Answer(status=429, retry_after_s=30)).due_at == AT + timedelta(seconds=30)  # type: ignore[union-attr]
    assert verdict(Answer(status=503, retry_after_s=9_999)).due_at == AT + timedelta(seconds=60)  # type: ignore[union-attr]
    assert verdict(Answer(status=503, retry_after_s=1)).due_at == AT + timedelta(seconds=2)  # type: ignore[union-attr]


def test_the_last_attempt_and_the_offers_expiry_end_the_retries() -> None:
    last = verdict(Answer(status=500), attempt=5)
    assert last == GiveUp(status=500, reason="gave up after 5 attempts: HTTP 500")
    late = verdict(NoAnswer(reason="connection failed: refused"), attempt=1, expires_in_s=2)
    assert late == GiveUp(
        status=None, reason="the offer expires before the next attempt: connection failed: refused"
    )
    assert isinstance(verdict(Answer(status=500), attempt=1, expires_in_s=3), RetryAt)


def test_a_policy_that_cannot_work_is_refused() -> None:
    for bad in (
        {"base": timedelta(0)},
        {"base": timedelta(seconds=10), "cap": timedelta(seconds=5)},
        {"max_attempts": 0},
    ):
        with pytest.raises(ValueError, match="retry policy"):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def test_an_excerpt_is_short_printable_and_hides_the_qr_payload() -> None:
    qr = "SSQR1.secret-coupon"
    raw = f"error:\n\tunknown member; you sent {qr}\x00\x1b[31m".encode() + b"\xff"
    assert excerpt(raw, hide=(qr,)) == "error: unknown member; you sent [redacted] [31m\ufffd"
    assert len(excerpt(b"x" * 5000)) == EXCERPT_CHARS
    assert excerpt(b"") == ""
