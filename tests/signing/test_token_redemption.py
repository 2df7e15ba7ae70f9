"""Scanned signed tokens through the redemption service, on real cache files.

Store S1 (this cache) trusts store S2's key through ``store_keys``. ``A`` is in the cache (bound
to M1); ``F`` is a genuine S2 coupon whose code has not reached this cache.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.trusted_keys import TrustedKeys
from edge_agent.domain import token_codec
from edge_agent.domain.decision import Accepted, Audience, Reason, Refused
from edge_agent.domain.throttle import ThrottleConfig
from edge_agent.redemption.service import RedemptionService
from tests.cache.factories import FMT, NOW, A, code, open_cache, promotion, req, write_snapshot
from tests.signing.factories import claims, signer

S2 = signer("S2", seed=2)
F = code("FRGN23", namespace="Q4")  # minted offline by store S2


@pytest.fixture
def cache(tmp_path: Path) -> CodeCache:
    c = open_cache(tmp_path / "c.db")
    TrustedKeys(c.conn).put(S2.public_key, store_id="S2", registered_at=NOW)
    yield c  # type: ignore[misc]
    c.close()


@pytest.fixture
def service(cache: CodeCache) -> RedemptionService:
    return RedemptionService(cache, fmt=FMT)


def refused(decision: object, reason: Reason) -> Refused:
    assert isinstance(decision, Refused), decision
    assert decision.reason is reason, decision
    return decision


def test_a_typed_code_still_works(service: RedemptionService) -> None:
    (out,) = service.commit(req(A))
    assert isinstance(out.decision, Accepted) and out.redemption is not None


def test_token_for_a_cached_code_redeems_it_once(service: RedemptionService) -> None:
    token = S2.sign(claims(A))
    (out,) = service.commit(req(token))
    assert isinstance(out.decision, Accepted) and out.decision.code == A
    assert out.decision.details["token_store_id"] == "S2"
    (again,) = service.commit(req(token, txn="T-2"))
    refused(again.decision, Reason.ALREADY_REDEEMED)
    refused(service.validate(req(A, txn="T-3"))[0], Reason.ALREADY_REDEEMED)


def test_commit_is_idempotent_for_a_token(service: RedemptionService) -> None:
    token = S2.sign(claims(F))
    (first,) = service.commit(req(token))
    (again,) = service.commit(req(token))
    assert again == dataclasses.replace(first, replayed=True)


def test_another_stores_coupon_redeems_once_and_is_remembered(
    service: RedemptionService, cache: CodeCache
) -> None:
    token = S2.sign(claims(F))
    assert cache.lookup(F, "M1", NOW) is None
    (held,) = service.reserve(req(token))
    assert isinstance(held.decision, Accepted)
    (out,) = service.commit(req(token))
    assert isinstance(out.decision, Accepted) and out.redemption is not None
    row = cache.conn.execute(
        "SELECT campaign_id, member_id, channel FROM codes WHERE code = ?", (F,)
    )
    assert row.fetchone() == ("C1", "M1", "receipt")
    (again,) = service.commit(req(token, txn="T-2"))
    refused(again.decision, Reason.ALREADY_REDEEMED)
    # Typed at a till without a scanner, the code is now known here too.
    refused(service.validate(req(F, txn="T-3"))[0], Reason.ALREADY_REDEEMED)


def test_single_use_survives_a_snapshot_that_drops_the_code(
    service: RedemptionService, cache: CodeCache, tmp_path: Path
) -> None:
    token = S2.sign(claims(F))
    service.commit(req(token))
    cache.load_snapshot(write_snapshot(tmp_path / "s.db", campaigns=[promotion()]))
    assert cache.lookup(F, "M1", NOW) is None
    (again,) = service.commit(req(token, txn="T-2"))
    refused(again.decision, Reason.ALREADY_REDEEMED)


def test_foreign_coupon_of_an_unknown_campaign_is_not_found(service: RedemptionService) -> None:
    (d,) = service.validate(req(S2.sign(claims(F, campaign_id="not-here"))))
    assert refused(d, Reason.NOT_FOUND).details["why"] == "campaign_unknown"


def test_tampered_token_is_an_invalid_signature(service: RedemptionService) -> None:
    token = S2.sign(claims(F))
    layout = token_codec.parse(token)
    assert isinstance(layout, token_codec.Layout)
    body = bytearray(layout.signed[len(token_codec.SIGNING_CONTEXT) :])
    body[12] ^= 0x40  # a later expiry
    forged = token_codec.to_text(bytes(body) + layout.signature)
    (d,) = service.validate(req(forged))
    refused(d, Reason.INVALID_SIGNATURE)


def test_truncated_token_is_invalid(service: RedemptionService) -> None:
    token = S2.sign(claims(F))
    (d,) = service.validate(req(token[:-9]))
    assert refused(d, Reason.INVALID_TOKEN).details["fault"] in ("truncated", "bad_encoding")


def test_unknown_key_is_an_unknown_issuer(service: RedemptionService) -> None:
    (d,) = service.validate(req(signer("S3", seed=3).sign(claims(F, store_id="S3"))))
    assert refused(d, Reason.UNKNOWN_ISSUER).details["why"] == "unknown"


def test_revoked_key_is_refused(service: RedemptionService, cache: CodeCache) -> None:
    token = S2.sign(claims(F))
    assert isinstance(service.validate(req(token))[0], Accepted)
    assert TrustedKeys(cache.conn).revoke(S2.key_id, at=NOW)
    (d,) = service.validate(req(token))
    assert refused(d, Reason.UNKNOWN_ISSUER).details["why"] == "revoked"


def test_expired_token(service: RedemptionService) -> None:
    token = S2.sign(claims(F, days=1))
    (d,) = service.validate(req(token, now=NOW + timedelta(days=2)))
    assert refused(d, Reason.EXPIRED).code == F


def test_wrong_member_and_no_member(service: RedemptionService) -> None:
    token = S2.sign(claims(F, member_id="M1"))
    refused(service.validate(req(token, member="M2"))[0], Reason.WRONG_MEMBER)
    refused(service.validate(req(token, member=None))[0], Reason.MEMBER_REQUIRED)
    # An anonymous coupon needs nobody.
    assert isinstance(
        service.validate(req(S2.sign(claims(F, member_id=None)), member=None))[0], Accepted
    )


def test_customer_channel_hides_why_a_token_failed(service: RedemptionService) -> None:
    token = S2.sign(claims(F, member_id="M1"))
    r = req(token, member="M2")
    (d,) = service.validate(
        r.__class__(**{**{f: getattr(r, f) for f in r.__slots__}, "audience": Audience.CUSTOMER})
    )
    refused(d, Reason.NOT_FOUND)


def test_forged_tokens_throttle_the_till(cache: CodeCache) -> None:
    service = RedemptionService(cache, fmt=FMT, throttle=ThrottleConfig(max_failures=3))
    forged = signer("S3", seed=3).sign(claims(F, store_id="S3"))
    for _ in range(3):
        service.validate(req(forged))
    refused(service.validate(req(A))[0], Reason.TILL_THROTTLED)


def test_own_key_is_trusted_until_hq_revokes_it(cache: CodeCache) -> None:
    me = signer("S1", seed=1)
    service = RedemptionService(
        cache, fmt=FMT, trusted_keys=TrustedKeys(cache.conn, own=me.trusted_key())
    )
    token = me.sign(claims(A, store_id="S1"))
    assert isinstance(service.validate(req(token))[0], Accepted)
    keys = TrustedKeys(cache.conn)
    keys.put(me.public_key, store_id="S1", registered_at=NOW)
    keys.revoke(me.key_id, at=NOW)
    refused(service.validate(req(token))[0], Reason.UNKNOWN_ISSUER)
