"""The webhook signature both ends: what ``sign`` makes ``verify`` accepts, and a changed
body, another secret, a stale or future timestamp, or a mangled header is refused with a
reason, never an exception (fuzzed)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.hq.member_push import signature
from tests.hq.ingest.builders import AT
from tests.hq.member_push.presence_events import SECRET

BODY = b'{"event_id":"0193","qr_payload":"x"}'


def test_a_signed_body_verifies_and_the_scheme_is_the_documented_one() -> None:
    header = signature.sign(SECRET, BODY, now=AT)
    t = int(AT.timestamp())
    # docs/member-push-webhook.md: v1 = HMAC-SHA256(secret, "<t>." + body), hex
    expected = hmac.new(SECRET, f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={t},v1={expected}"
    assert signature.verify(SECRET, header, BODY, now=AT) is None
    assert signature.verify(SECRET, header, BODY, now=AT + timedelta(minutes=5)) is None


def test_what_is_refused_and_why() -> None:
    header = signature.sign(SECRET, BODY, now=AT)
    t = int(AT.timestamp())
    cases = {
        "no Storeside-Signature header": (SECRET, None, BODY, AT),
        "no v1 signature matches the body": (SECRET, header, BODY + b" ", AT),
        "no v1 signature matches": (b"another-secret-of-the-receiver", header, BODY, AT),
        "301 s from this clock": (SECRET, header, BODY, AT + timedelta(seconds=301)),
        "302 s from this clock": (SECRET, header, BODY, AT - timedelta(seconds=302)),  # future t
        "no t=": (SECRET, header.split(",")[1], BODY, AT),
        "no v1=": (SECRET, f"t={t}", BODY, AT),
        "t must be given once": (SECRET, f"t={t},t={t},{header.split(',')[1]}", BODY, AT),
        "is not key=value": (SECRET, f"{header},garbage", BODY, AT),
    }
    for why, (secret, given_header, body, now) in cases.items():
        problem = signature.verify(secret, given_header, body, now=now)
        assert problem is not None and why in problem, (why, problem)


def test_a_header_with_an_old_and_a_new_signature_verifies_with_either_secret() -> None:
    old, new = b"the-old-secret-0123456789", b"the-new-secret-0123456789"
    t = int(AT.timestamp())
    header = f"t={t},v1={signature.digest(old, t, BODY)},v1={signature.digest(new, t, BODY)}"
    assert signature.verify(old, header, BODY, now=AT) is None
    assert signature.verify(new, header, BODY, now=AT) is None
    # Keys a later scheme may add are ignored.
    assert signature.verify(new, header + ",v2=abc", BODY, now=AT) is None


@given(header=st.text(max_size=200), body=st.binary(max_size=64))
def test_any_header_is_an_answer_never_an_exception(header: str, body: bytes) -> None:
    problem = signature.verify(SECRET, header, body, now=AT)
    assert problem is not None  # nothing random is signed with our secret


@given(body=st.binary(max_size=256), skew=st.integers(min_value=-300, max_value=300))
def test_round_trip_within_the_tolerance(body: bytes, skew: int) -> None:
    header = signature.sign(SECRET, body, now=AT)
    assert signature.verify(SECRET, header, body, now=AT + timedelta(seconds=skew)) is None


def test_the_receivers_example_in_the_docs_accepts_a_real_request_and_nothing_else() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "member-push-webhook.md").read_text()
    [example] = re.findall(r"```python\n(.*?)```", doc, re.S)
    scope: dict[str, Any] = {}
    exec(example, scope)
    good = scope["good"]
    header = signature.sign(SECRET, BODY, now=datetime.now(UTC))
    assert good(SECRET, header, BODY)
    assert not good(SECRET, header, BODY + b" ")
    assert not good(b"another-secret-of-the-receiver", header, BODY)
    stale = signature.sign(SECRET, BODY, now=datetime.now(UTC) - timedelta(minutes=6))
    assert not good(SECRET, stale, BODY)
