"""HQ's deltas applied to a real cache file: each kind of change, and the stream's order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract.delta import Change, Delta, Op, Place
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.trusted_keys import TrustedKeys
from edge_agent.domain.coupon_token import raw_public_key
from edge_agent.domain.decision import Accepted, Reason, Refused
from edge_agent.domain.promotion import Benefit, BenefitKind
from edge_agent.domain.promotion_codec import promotion_to_dict
from edge_agent.domain.token_codec import key_id_of, public_key_text
from edge_agent.follow import delta_apply
from edge_agent.follow.delta_apply import DeltaRefusedError, Position, Refusal
from edge_agent.redemption.service import RedemptionService
from tests.cache.factories import FMT, NOW, STORE, A, B, G, code, open_cache, promotion, req

STREAM = "5" * 32
AT = NOW - timedelta(minutes=3)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[CodeCache]:
    c = open_cache(tmp_path / "c.db")
    with c.transaction() as conn:
        delta_apply.follow(conn, stream=STREAM, watermark=4)
    yield c
    c.close()


@pytest.fixture
def service(cache: CodeCache) -> RedemptionService:
    return RedemptionService(cache, fmt=FMT, hold=timedelta(minutes=5))


def change(op: Op, **fields: Any) -> Change:
    return Change(op=op, fields=fields)


def delta(*changes: Change, seq: int = 5, stream: str = STREAM, store: str = STORE) -> Delta:
    return Delta(store_id=store, stream=stream, seq=seq, issued_at=NOW, changes=changes)


def elsewhere(c: str, *, box: str = "S2-box", uses: int = 1, at: datetime = AT) -> Change:
    return change(
        Op.CODE_REDEEMED_ELSEWHERE,
        code=c,
        store_id="S2",
        box_id=box,
        till_id="till-9",
        transaction_id="T-S2",
        at=at,
        uses=uses,
    )


def issued(c: str, *, variant: str = "A", issued_at: datetime | None = None) -> Change:
    return change(
        Op.CODE_ISSUED,
        code=c,
        campaign_id="C1",
        member_id="M1",
        channel="email",
        variant=variant,
        issued_at=issued_at,
        expires_at=None,
    )


def used(
    campaign: str, *, box: str, store: str = "S2", redemptions: int = 10, discount: int = 0
) -> Change:
    return change(
        Op.CAMPAIGN_USED_ELSEWHERE,
        campaign_id=campaign,
        store_id=store,
        box_id=box,
        redemptions=redemptions,
        discount=discount,
    )


def refused(service: RedemptionService, c: str, **kw: Any) -> Refused:
    (decision,) = service.validate(req(c, **kw))
    assert isinstance(decision, Refused), decision
    return decision


def test_a_code_redeemed_at_another_store_is_refused_here_naming_that_store(
    cache: CodeCache, service: RedemptionService
) -> None:
    assert service.validate(req(A))[0].ok
    done = delta_apply.apply(cache, delta(elsewhere(A)))
    assert (done.place, done.applied, done.position) == (
        Place.NEXT,
        1,
        Position(stream=STREAM, watermark=5),
    )
    no = refused(service, A)
    assert no.reason is Reason.ALREADY_REDEEMED
    assert no.details["store_id"] == "S2"
    assert no.details["transaction_id"] == "T-S2"
    assert no.details["redeemed_at"] == AT.isoformat()


def test_a_refund_elsewhere_gives_the_code_back(
    cache: CodeCache, service: RedemptionService
) -> None:
    delta_apply.apply(cache, delta(elsewhere(A)))
    delta_apply.apply(cache, delta(elsewhere(A, uses=0), seq=6))
    assert service.validate(req(A))[0].ok


def test_uses_elsewhere_add_to_this_stores_own(
    cache: CodeCache, service: RedemptionService
) -> None:
    """G allows 3 uses: one here and two at another store's boxes use it up."""
    (done,) = service.commit(req(G, member=None))
    assert done.redemption is not None
    delta_apply.apply(cache, delta(elsewhere(G, box="S2-a"), elsewhere(G, box="S2-b")))
    assert refused(service, G, txn="T-2", member=None).reason is Reason.CODE_LIMIT_REACHED


def test_this_boxs_own_redemption_seen_from_hq_is_not_counted_twice(
    cache: CodeCache, service: RedemptionService
) -> None:
    (done,) = service.commit(req(G, member=None))
    assert done.redemption is not None
    mine = delta_apply.apply(cache, delta(elsewhere(G, box=cache.box_id)))
    assert (mine.applied, mine.skipped) == (0, 1)
    assert service.validate(req(G, txn="T-2", member=None))[0].ok


def test_a_box_whose_cache_was_lost_takes_hqs_word_for_its_own_redemption(
    cache: CodeCache, service: RedemptionService
) -> None:
    """No record of its own (the cache was lost and reloaded): the redemption HQ knows this
    box made before is all there is, so the single-use code stays redeemed."""
    mine = delta_apply.apply(cache, delta(elsewhere(A, box=cache.box_id)))
    assert (mine.applied, mine.skipped) == (1, 0)
    assert refused(service, A).reason is Reason.ALREADY_REDEEMED


def test_a_campaign_budget_folds_in_what_other_stores_spent(
    cache: CodeCache, service: RedemptionService
) -> None:
    """G1's budget is 10,000; two other boxes spent 9,800 (this box's own use, seen from HQ,
    is not counted again: it keeps its own record), so a 500 discount no longer fits."""
    cache.conn.execute("INSERT INTO campaign_usage VALUES ('G1', 0, 0, 0)")
    delta_apply.apply(
        cache,
        delta(
            used("G1", box="S2-a", discount=4_900),
            used("G1", box="S3-a", store="S3", discount=4_900),
            used("G1", box=cache.box_id, store=STORE, discount=9_999),
        ),
    )
    assert refused(service, G, member=None).reason is Reason.CAMPAIGN_BUDGET_EXHAUSTED
    delta_apply.apply(cache, delta(used("G1", box="S3-a", store="S3", discount=0), seq=6))
    assert service.validate(req(G, member=None))[0].ok


def test_a_stores_allocation_counts_its_other_boxes_not_other_stores(
    cache: CodeCache, service: RedemptionService
) -> None:
    cache.put_campaign(promotion(store_allocation=3))
    far = delta_apply.apply(cache, delta(used("C1", box="S2-a", store="S2", redemptions=50)))
    assert far.applied == 1
    assert service.validate(req(A))[0].ok
    delta_apply.apply(cache, delta(used("C1", box="S1-b", store=STORE, redemptions=3), seq=6))
    assert refused(service, A).reason is Reason.STORE_ALLOCATION_EXHAUSTED


def test_a_revoked_code_is_refused_and_an_issued_one_accepted(
    cache: CodeCache, service: RedemptionService
) -> None:
    new = code("N3WCDE")
    revoked = change(Op.CODE_REVOKED, code=A, at=AT)
    delta_apply.apply(cache, delta(revoked, issued(new, issued_at=NOW - timedelta(hours=1))))
    assert refused(service, A).reason is Reason.REVOKED
    assert service.validate(req(new))[0].ok


def test_a_code_issued_again_keeps_what_the_box_did_with_it(
    cache: CodeCache, service: RedemptionService
) -> None:
    (done,) = service.commit(req(A))
    assert done.redemption is not None
    delta_apply.apply(cache, delta(issued(A, variant="B")))
    assert refused(service, A, txn="T-2").reason is Reason.ALREADY_REDEEMED


def test_a_link_made_at_hq_is_offered_at_the_members_next_checkout(cache: CodeCache) -> None:
    delta_apply.apply(cache, delta(change(Op.CODE_LINKED, code=B, member_id="M7", at=AT)))
    row = cache.conn.execute("SELECT member_id, mode FROM code_links WHERE code = ?", (B,))
    assert row.fetchone() == ("M7", delta_apply.LINK_MODE)


def test_a_member_change_is_seen_at_once(cache: CodeCache) -> None:
    consent = change(
        Op.MEMBER_CHANGED, member_id="M1", segment="lapsed", tier="gold", proximity_consent=True
    )
    delta_apply.apply(cache, delta(consent))
    member = cache.member("M1")
    assert member is not None
    assert (member.segment, member.tier, member.proximity_consent) == ("lapsed", "gold", True)


def test_a_campaign_change_takes_effect_in_the_running_agent(
    cache: CodeCache, service: RedemptionService
) -> None:
    assert service.validate(req(A))[0].discount == 500  # type: ignore[union-attr]
    richer = promotion(benefit=Benefit(kind=BenefitKind.FIXED_OFF, value=900))
    body = json.dumps(promotion_to_dict(richer))
    delta_apply.apply(cache, delta(change(Op.CAMPAIGN_CHANGED, campaign_id="C1", body=body)))
    (decision,) = service.validate(req(A))
    assert isinstance(decision, Accepted)
    assert decision.discount == 900


def test_a_store_key_revoked_by_hq_is_no_longer_trusted(cache: CodeCache) -> None:
    keys = TrustedKeys(cache.conn)
    raw = raw_public_key(Ed25519PrivateKey.generate().public_key())
    kid = key_id_of(raw)
    registered = change(
        Op.STORE_KEY_REGISTERED,
        key_id=kid,
        store_id="S2",
        public_key=public_key_text(raw),
        registered_at=AT,
    )
    delta_apply.apply(cache, delta(registered))
    trusted = keys.get(kid)
    assert trusted is not None
    assert not trusted.revoked
    delta_apply.apply(cache, delta(change(Op.STORE_KEY_REVOKED, key_id=kid, revoked_at=NOW), seq=6))
    after = keys.get(kid)
    assert after is not None
    assert after.revoked


def test_a_duplicate_is_a_no_op_and_a_gap_applies_nothing(
    cache: CodeCache, service: RedemptionService
) -> None:
    old = delta_apply.apply(cache, delta(elsewhere(A), seq=4))
    ahead = delta_apply.apply(cache, delta(elsewhere(A), seq=7))
    assert (old.place, ahead.place) == (Place.DUPLICATE, Place.GAP)
    assert old.position == ahead.position == Position(stream=STREAM, watermark=4)
    assert service.validate(req(A))[0].ok


def test_a_delta_of_another_stream_or_for_a_cache_following_none_applies_nothing(
    tmp_path: Path, cache: CodeCache
) -> None:
    other = delta_apply.apply(cache, delta(elsewhere(A), stream="6" * 32))
    assert other.place is Place.OTHER_STREAM
    loose = open_cache(tmp_path / "loose.db")
    try:
        assert delta_apply.position(loose.conn) == Position(stream=None, watermark=0)
        assert delta_apply.apply(loose, delta(elsewhere(A), seq=1)).place is Place.OTHER_STREAM
    finally:
        loose.close()


def test_a_change_the_box_cannot_take_refuses_the_whole_delta(
    cache: CodeCache, service: RedemptionService
) -> None:
    bad = change(Op.CAMPAIGN_CHANGED, campaign_id="C1", body='{"campaign_id": "C1"}')
    with pytest.raises(DeltaRefusedError) as caught:
        delta_apply.apply(cache, delta(elsewhere(A), bad))
    assert caught.value.reason is Refusal.BAD_CAMPAIGN
    assert delta_apply.position(cache.conn) == Position(stream=STREAM, watermark=4)
    assert service.validate(req(A))[0].ok  # the first change did not land either
    other = promotion("C2")
    body = json.dumps(promotion_to_dict(other))
    with pytest.raises(DeltaRefusedError, match="the body is campaign C2"):
        delta_apply.apply(cache, delta(change(Op.CAMPAIGN_CHANGED, campaign_id="C1", body=body)))
    junk = change(
        Op.STORE_KEY_REGISTERED,
        key_id="0badc0de",
        store_id="S2",
        public_key="not a key",
        registered_at=AT,
    )
    with pytest.raises(DeltaRefusedError) as caught:
        delta_apply.apply(cache, delta(junk))
    assert caught.value.reason is Refusal.BAD_STORE_KEY
    with pytest.raises(DeltaRefusedError) as caught:
        delta_apply.apply(cache, delta(elsewhere(A), store="S9"))
    assert caught.value.reason is Refusal.OTHER_STORE


def test_a_refund_elsewhere_never_hides_this_boxs_own_last_redemption(
    cache: CodeCache, service: RedemptionService
) -> None:
    (done,) = service.commit(req(A, now=NOW - timedelta(days=1)))
    assert done.redemption is not None
    delta_apply.apply(cache, delta(elsewhere(A, uses=0, at=NOW)))
    no = refused(service, A, txn="T-2")
    assert no.reason is Reason.ALREADY_REDEEMED
    assert no.details["store_id"] == STORE


def test_times_are_utc(cache: CodeCache) -> None:
    later = datetime(2025, 3, 1, 14, 0, tzinfo=UTC)
    delta_apply.apply(cache, delta(elsewhere(A, at=later)))
    row = cache.conn.execute("SELECT at_us FROM uses_elsewhere WHERE code = ?", (A,)).fetchone()
    assert row == (int(later.timestamp()) * 1_000_000,)


def test_the_cache_is_as_fresh_as_the_last_delta_applied(cache: CodeCache) -> None:
    delta_apply.apply(cache, delta(elsewhere(A)))
    assert cache.synced_at() == NOW
