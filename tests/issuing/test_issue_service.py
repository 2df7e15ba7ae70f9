"""The issue service on real cache files: minting, recording, idempotency, refusals, holdout,
collisions, expiry, event attribution, hook rollback, and the coupon validating at a till."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cloud_sync.contract.delta import Change, Op
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.basket import AppliedPromotion, Basket
from edge_agent.domain.code_format import make_code, parse
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.coupon_token import CouponClaims
from edge_agent.domain.decision import Accepted, Reason, Refused, ValidationRequest
from edge_agent.domain.offer_policy import NoCouponReason
from edge_agent.domain.promotion import Member
from edge_agent.domain.receipt_campaigns import default_receipt_campaigns
from edge_agent.errors import IdempotencyConflictError, MissingTransactionError
from edge_agent.follow import issues_elsewhere
from edge_agent.issuing import issue_schema
from edge_agent.issuing.minter import CodeSpaceExhaustedError
from edge_agent.issuing.outcome import STORED_FORM
from edge_agent.issuing.service import IssueService
from edge_agent.redemption.service import RedemptionService
from tests.cache.factories import write_snapshot
from tests.issuing.factories import (
    BASKET,
    FMT,
    NAMESPACE,
    NOW,
    STORE,
    HookLog,
    checkout,
    count,
    member_id,
    open_cache,
    policy,
    service,
    sign,
)

LOYAL = member_id("loyal", held_out=False)
LOYAL_2 = member_id("loyal", held_out=False, skip=1)
HELD = member_id("loyal", held_out=True)
MEMBERS = (
    Member(member_id=LOYAL, segment="loyal"),
    Member(member_id=LOYAL_2, segment="loyal"),
    Member(member_id=HELD, segment="loyal"),
    Member(member_id="M-vip", segment="vip"),
)


@pytest.fixture
def cache(tmp_path: Path) -> CodeCache:
    cache = open_cache(tmp_path / "cache.db", members=MEMBERS)
    HookLog.install(cache)
    return cache


def events(cache: CodeCache) -> list[dict[str, object]]:
    rows = cache.conn.execute("SELECT body FROM events ORDER BY seq")
    return [json.loads(body) for (body,) in rows]


def nothing_written(cache: CodeCache) -> None:
    for table in ("codes", "coupon_issues", "events", "outbox", "hook_rows"):
        assert count(cache, table) == 0, table


def test_issue_mints_records_and_hooks_in_one_go(cache: CodeCache) -> None:
    hook = HookLog()
    outcome = service(cache, on_issued=hook).issue(checkout(member=LOYAL))
    coupon = outcome.coupon
    assert coupon is not None and outcome.issued and outcome.reason is None
    assert parse(coupon.code, FMT) == coupon.code
    assert coupon.code[2:4] == NAMESPACE  # the store's own namespace: no clash with HQ
    assert coupon.display == f"SS-{coupon.code[2:6]}-{coupon.code[6:]}"
    assert coupon.campaign_id == "receipt-loyal" and coupon.segment == "loyal"
    assert coupon.channel == "receipt" and coupon.variant == "A"
    assert coupon.member_id == LOYAL
    assert coupon.expires_at == (NOW + timedelta(days=14)).replace(microsecond=0)
    assert coupon.discount == "10% off your whole purchase"
    assert "10% off" in coupon.offer_text and "15 Mar 2025" in coupon.offer_text
    assert coupon.stacking_terms.startswith("Stacks with tier discount, not with")
    assert "store sale" in coupon.stacking_terms
    assert coupon.qr_payload == sign_of(coupon.code, LOYAL)
    assert (coupon.till_id, coupon.cashier_id, coupon.store_id) == ("till-3", "c-7", STORE)
    assert outcome.message == f"Coupon issued: {coupon.offer_text}"
    assert outcome.holdout is not None and not outcome.holdout.in_holdout
    assert outcome.holdout.share_bp == 500 and outcome.holdout.cohort == "receipt-loyal"
    # The code row the till will look up: bound, receipt channel, expiry in epoch seconds.
    row = cache.conn.execute("SELECT * FROM codes WHERE code = ?", (coupon.code,)).fetchone()
    assert row == (
        coupon.code, "receipt-loyal", LOYAL, "active", "receipt", "A",
        int(NOW.timestamp()), int(coupon.expires_at.timestamp()), None,
    )  # fmt: skip
    assert hook.calls == [coupon]
    assert cache.conn.execute("SELECT code FROM hook_rows").fetchall() == [(coupon.code,)]
    assert count(cache, "coupon_issues") == 1


def sign_of(code: str, member: str | None) -> str:
    return sign(
        CouponClaims(
            code=code,
            campaign_id="receipt-loyal",
            member_id=member,
            store_id=STORE,
            issued_at=NOW.replace(microsecond=0),
            expires_at=(NOW + timedelta(days=14)).replace(microsecond=0),
        )
    )


def test_event_carries_full_attribution(cache: CodeCache) -> None:
    coupon = service(cache).issue(checkout("T-77", member=LOYAL)).coupon
    assert coupon is not None
    [event] = events(cache)
    assert event["type"] == "coupon.issued"
    assert event["code"] == coupon.code
    assert event["event_id"] == coupon.event_id
    assert {k: event[k] for k in (
        "store_id", "till_id", "cashier_id", "transaction_id", "member_id", "campaign_id",
        "variant", "channel",
    )} == {
        "store_id": STORE, "till_id": "till-3", "cashier_id": "c-7", "transaction_id": "T-77",
        "member_id": LOYAL, "campaign_id": "receipt-loyal", "variant": "A", "channel": "receipt",
    }  # fmt: skip
    details = event["details"]
    assert isinstance(details, dict)
    assert details["segment"] == "loyal" and details["in_holdout"] is False
    assert details["expires_at"] == coupon.expires_at.isoformat()
    [pending] = cache.pending_outbox()
    assert json.loads(pending.payload) == event


def test_retried_checkout_gets_the_stored_answer_never_a_second_coupon(cache: CodeCache) -> None:
    hook = HookLog()
    svc = service(cache, on_issued=hook)
    first = svc.issue(checkout("T-9", member=LOYAL))
    again = svc.issue(checkout("T-9", member=LOYAL, now=NOW + timedelta(seconds=5)))
    assert again.replayed and not first.replayed
    assert again.coupon == first.coupon
    assert again == replace(first, replayed=True)
    assert count(cache, "codes") == 1 and count(cache, "events") == 1
    assert len(hook.calls) == 1
    # Also after a restart: the answer is in the file, not in memory.
    path = cache.path
    cache.close()
    reopened = CodeCache.open(path, store_id=STORE)
    assert service(reopened).issue(checkout("T-9", member=LOYAL)).coupon == first.coupon
    reopened.close()


def test_a_checkout_belongs_to_its_till_and_a_retry_must_be_the_same_checkout(
    cache: CodeCache,
) -> None:
    """Issue 6: another till's sale of the same number is another sale (before: it was given
    the first till's coupon), and the same sale with another member or basket is no retry."""
    svc = service(cache)
    first = svc.issue(checkout("T-9", member=LOYAL, till="till-1"))
    assert first.coupon is not None
    other = svc.issue(checkout("T-9", member=LOYAL_2, till="till-2"))
    assert not other.replayed and other.coupon is not None
    assert other.coupon.code != first.coupon.code and other.coupon.till_id == "till-2"
    with pytest.raises(IdempotencyConflictError, match="different request"):
        svc.issue(checkout("T-9", member=LOYAL_2, till="till-1"))
    with pytest.raises(IdempotencyConflictError):
        svc.issue(checkout("T-9", member=LOYAL, till="till-1", basket=Basket()))
    assert count(cache, "coupon_issues") == 2


def test_outcome_json_round_trips(cache: CodeCache) -> None:
    svc = service(cache)
    for outcome in (
        svc.issue(checkout("T-1", member=LOYAL)),
        svc.issue(checkout("T-2", member=HELD)),
    ):
        assert STORED_FORM.replay(STORED_FORM.dump(outcome)) == replace(outcome, replayed=True)


@pytest.mark.parametrize(
    ("config", "member", "basket", "reason"),
    [
        ({"enabled": False}, LOYAL, BASKET, NoCouponReason.DISABLED),
        ({}, None, BASKET, NoCouponReason.NOT_A_MEMBER),
        ({}, "M-unknown", BASKET, NoCouponReason.UNKNOWN_MEMBER),
        ({}, "M-vip", BASKET, NoCouponReason.NO_OFFER_FOR_SEGMENT),
        ({"loyal": {"enabled": False}}, LOYAL, BASKET, NoCouponReason.NO_OFFER_FOR_SEGMENT),
        ({}, LOYAL, Basket(), NoCouponReason.BASKET_BELOW_MINIMUM),
        ({"loyal": {"campaign_id": "not-shipped"}}, LOYAL, BASKET,
         NoCouponReason.CAMPAIGN_UNAVAILABLE),
    ],
)  # fmt: skip
def test_refusals_write_nothing(
    *,
    cache: CodeCache,
    config: dict[str, object],
    member: str | None,
    basket: Basket,
    reason: NoCouponReason,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome = service(cache, pol=policy(**config)).issue(checkout(member=member, basket=basket))
    assert outcome.reason is reason and outcome.coupon is None and not outcome.issued
    assert outcome.message.startswith("No coupon this time: ")
    assert outcome.holdout is None
    nothing_written(cache)
    if reason is NoCouponReason.CAMPAIGN_UNAVAILABLE:
        assert "not-shipped skipped: not in this store's cache" in caplog.text


def test_frequency_cap_then_velocity_limit(cache: CodeCache) -> None:
    svc = service(cache)
    assert svc.issue(checkout("T-1", member=LOYAL)).issued
    capped = svc.issue(checkout("T-2", member=LOYAL, now=NOW + timedelta(days=3)))
    assert capped.reason is NoCouponReason.FREQUENCY_CAPPED
    assert capped.retry_after == NOW + timedelta(days=30)
    assert "2025-03-31 12:00 UTC" in capped.message
    assert svc.issue(checkout("T-3", member=LOYAL, now=NOW + timedelta(days=30))).issued
    # Another member is not affected by the first one's cap.
    assert svc.issue(checkout("T-4", member=LOYAL_2, now=NOW + timedelta(days=3))).issued

    fast = service(cache, pol=policy(max_per_member=10, max_per_member_per_day=2))
    later = NOW + timedelta(days=40)
    assert fast.issue(checkout("T-10", member=LOYAL, now=later)).issued
    assert fast.issue(checkout("T-11", member=LOYAL, now=later + timedelta(hours=1))).issued
    limited = fast.issue(checkout("T-12", member=LOYAL, now=later + timedelta(hours=2)))
    assert limited.reason is NoCouponReason.VELOCITY_LIMIT
    assert limited.retry_after == later + timedelta(days=1)
    assert count(cache, "coupon_issues") == 5


def test_holdout_gets_no_coupon_but_the_event_records_the_offer(cache: CodeCache) -> None:
    hook = HookLog()
    svc = service(cache, on_issued=hook)
    outcome = svc.issue(checkout("T-5", member=HELD))
    assert outcome.reason is NoCouponReason.HOLDOUT and outcome.coupon is None
    assert outcome.holdout is not None and outcome.holdout.in_holdout
    would = outcome.holdout.would_have
    assert would is not None and would.campaign_id == "receipt-loyal" and would.member_id == HELD
    assert "control group" in outcome.message
    assert count(cache, "codes") == 0 and hook.calls == []
    [event] = events(cache)
    assert event["type"] == "coupon.withheld" and event["code"] is None
    assert event["event_id"] == outcome.holdout.event_id
    attribution = [event[k] for k in ("member_id", "campaign_id", "channel", "transaction_id")]
    assert attribution == [HELD, "receipt-loyal", "receipt", "T-5"]
    details = event["details"]
    assert isinstance(details, dict)
    assert details["in_holdout"] is True and details["offer_text"] == would.text
    assert details["expires_at"] == would.expires_at.isoformat()
    # Deterministic: held out again next month, and in another store's cache too.
    assert svc.issue(checkout("T-6", member=HELD, now=NOW + timedelta(days=31))).reason is (
        NoCouponReason.HOLDOUT
    )
    # The withheld issue counts toward the cap, like a real one (comparable groups).
    capped = svc.issue(checkout("T-7", member=HELD, now=NOW + timedelta(days=32)))
    assert capped.reason is NoCouponReason.FREQUENCY_CAPPED
    # And a retry replays the withheld answer.
    assert svc.issue(checkout("T-5", member=HELD)).replayed


def test_holdout_agrees_across_stores(tmp_path: Path) -> None:
    answers = []
    for store, namespace in (("S1", "23"), ("S2", "24")):
        c = CodeCache.open(tmp_path / f"{store}.db", store_id=store)
        campaigns = default_receipt_campaigns(
            starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=60)
        )
        snap = tmp_path / f"{store}.snapshot.db"
        write_snapshot(
            snap, store_id=store, campaigns=campaigns, members=MEMBERS, namespace=namespace
        )
        c.load_snapshot(snap)
        answers.append(
            [service(c).issue(checkout(f"{store}-{m}", member=m)).reason for m in (LOYAL, HELD)]
        )
        c.close()
    assert answers[0] == answers[1] == [None, NoCouponReason.HOLDOUT]


def test_minting_retries_past_existing_codes(cache: CodeCache) -> None:
    hq_code = make_code(FMT, NAMESPACE, "HQ2P9X")
    cache.put_codes([CodeRecord(code=hq_code, campaign_id="receipt-loyal", member_id="M-x")])
    svc = service(cache)
    first = svc.issue(checkout("T-1", member=LOYAL)).coupon
    assert first is not None
    fresh = make_code(FMT, NAMESPACE, "K7M4RT")
    # The draw hits a code from HQ's snapshot, then our own earlier coupon, then a fresh one.
    draws = iter([hq_code, first.code, fresh])
    second = service(cache, mint=lambda: next(draws)).issue(checkout("T-2", member=LOYAL_2))
    assert second.coupon is not None and second.coupon.code == fresh
    assert count(cache, "codes") == 3


def test_a_full_namespace_fails_cleanly(cache: CodeCache) -> None:
    taken = make_code(FMT, NAMESPACE, "HQ2P9X")
    cache.put_codes([CodeRecord(code=taken, campaign_id="receipt-loyal", member_id="M-x")])
    with pytest.raises(CodeSpaceExhaustedError) as err:
        service(cache, mint=lambda: taken).issue(checkout(member=LOYAL))
    assert err.value.namespace == NAMESPACE
    assert count(cache, "codes") == 1 and count(cache, "coupon_issues") == 0
    assert count(cache, "events") == 0


def test_a_mint_outside_our_namespace_is_a_bug(cache: CodeCache) -> None:
    foreign = make_code(FMT, "K7", "HQ2P9X")
    with pytest.raises(ValueError, match="namespace"):
        service(cache, mint=lambda: foreign).issue(checkout(member=LOYAL))
    nothing_written(cache)


def test_expiry_is_capped_by_the_campaign_end(cache: CodeCache) -> None:
    end = NOW + timedelta(days=5, hours=3)
    for p in default_receipt_campaigns(starts_at=NOW - timedelta(days=1), ends_at=end):
        cache.put_campaign(p)
    coupon = service(cache).issue(checkout(member=LOYAL)).coupon
    assert coupon is not None
    assert coupon.expires_at == end.replace(microsecond=0)
    stored = cache.conn.execute("SELECT expires_at FROM codes").fetchone()[0]
    assert stored == int(end.timestamp())
    # A campaign ending within a day is not issued at all (min_validity_hours = 24).
    for p in default_receipt_campaigns(
        starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(hours=20)
    ):
        cache.put_campaign(p)
    late = service(cache).issue(checkout("T-2", member=LOYAL_2))
    assert late.reason is NoCouponReason.CAMPAIGN_UNAVAILABLE
    assert "ends too soon" in late.message


@pytest.mark.parametrize("where", ["hook", "sign"])
def test_a_failing_hook_or_signer_rolls_the_whole_issue_back(cache: CodeCache, where: str) -> None:
    def bad_sign(claims: object) -> str:
        raise RuntimeError("signing key unavailable")

    if where == "hook":
        svc = service(cache, on_issued=HookLog(fail=True))
        match = "printer queue"
    else:
        svc = service(cache, signer=bad_sign)
        match = "signing key"
    with pytest.raises(RuntimeError, match=match):
        svc.issue(checkout(member=LOYAL))
    nothing_written(cache)
    assert not cache.conn.in_transaction
    # Nothing was consumed either: the next issue gets event sequence 1 and is not capped.
    ok = service(cache).issue(checkout(member=LOYAL))
    assert ok.issued
    assert cache.conn.execute("SELECT seq FROM events").fetchall() == [(1,)]


def test_issued_coupon_validates_with_tier_discount_not_with_store_sale(cache: CodeCache) -> None:
    coupon = service(cache).issue(checkout(member=LOYAL)).coupon
    assert coupon is not None
    redemptions = RedemptionService(cache, fmt=FMT)
    cache.set_synced_at(NOW + timedelta(days=2) - timedelta(hours=1))

    def validate(member: str, applied: tuple[AppliedPromotion, ...]) -> object:
        [decision] = redemptions.validate(
            ValidationRequest(
                codes=(coupon.display,), store_id=STORE, till_id="till-1", cashier_id="c-1",
                basket=BASKET, now=NOW + timedelta(days=2), member_id=member, applied=applied,
            )
        )  # fmt: skip
        return decision

    tier = AppliedPromotion(name="Gold", stacking_class="tier_discount", discount=50)
    sale = AppliedPromotion(name="Spring sale", stacking_class="store_sale", discount=50)
    accepted = validate(LOYAL, (tier,))
    assert isinstance(accepted, Accepted)
    assert accepted.discount == 75  # 10% of 7.48, half up
    not_combinable = validate(LOYAL, (sale,))
    assert isinstance(not_combinable, Refused) and not_combinable.reason is Reason.NOT_COMBINABLE
    other = validate(LOYAL_2, ())
    assert isinstance(other, Refused) and other.reason is Reason.WRONG_MEMBER


def test_anonymous_offer_mints_an_unbound_code(cache: CodeCache) -> None:
    for p in default_receipt_campaigns(
        starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=60)
    ):
        if p.campaign_id == "receipt-one-timer":
            cache.put_campaign(replace(p, requires_member=False))
    svc = service(cache, pol=policy(anonymous={"campaign_id": "receipt-one-timer"}))
    outcomes = [svc.issue(checkout(f"T-{n}", member=None)) for n in range(40)]
    issued = [o.coupon for o in outcomes if o.coupon is not None]
    assert len(issued) >= 30  # ~5% held out; anonymous customers are never capped
    assert {c.member_id for c in issued} == {None}
    assert {c.segment for c in issued} == {"anonymous"}
    assert len({c.code for c in issued}) == len(issued)


def test_codes_survive_a_snapshot_reload_until_hq_knows_them(
    cache: CodeCache, tmp_path: Path
) -> None:
    svc = service(cache)
    coupon = svc.issue(checkout(member=LOYAL)).coupon
    assert coupon is not None
    snapshot = write_snapshot(
        tmp_path / "snap.db",
        campaigns=default_receipt_campaigns(
            starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=60)
        ),
        members=MEMBERS,
    )
    cache.load_snapshot(snapshot)  # HQ has not learnt the coupon yet: the swap carries it over
    facts = cache.lookup(coupon.code, LOYAL, NOW)
    assert facts is not None and facts.record.channel == "receipt"
    assert facts.record.member_id == LOYAL and facts.record.expires_at == coupon.expires_at
    with cache.transaction() as conn:  # an expired coupon is not carried over
        after = int((coupon.expires_at + timedelta(seconds=1)).timestamp())
        conn.execute("DELETE FROM codes WHERE code = ?", (coupon.code,))
        assert issue_schema.restore_codes(conn, table="codes", now_s=after) == 0


def test_prune_keeps_what_caps_and_retries_need(cache: CodeCache) -> None:
    svc = service(cache)
    assert svc.issue(checkout(member=LOYAL)).issued
    assert svc.prune(NOW + timedelta(days=20)) == 0  # still inside the 30-day cap window
    assert svc.prune(NOW + timedelta(days=31)) == 1
    assert count(cache, "coupon_issues") == 0


def test_bad_requests_are_typed(cache: CodeCache) -> None:
    with pytest.raises(MissingTransactionError):
        service(cache).issue(checkout("", member=LOYAL))
    with pytest.raises(ValueError, match="aware"):
        service(cache).issue(checkout(member=LOYAL, now=NOW.replace(tzinfo=None)))
    with pytest.raises(ValueError, match="namespace"):
        IssueService(cache, fmt=FMT, expected_namespace="0O", policy=policy(), sign=sign)


def _no_namespace_refusal(cache: CodeCache, svc: IssueService, needle: str) -> None:
    outcome = svc.issue(checkout(member=LOYAL))
    assert outcome.coupon is None
    assert outcome.reason is NoCouponReason.NO_NAMESPACE
    assert needle in outcome.message
    assert count(cache, "codes") == 0 and count(cache, "coupon_issues") == 0


def test_no_namespace_from_hq_means_no_receipt_coupons(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "cache.db", members=MEMBERS, namespace="")
    _no_namespace_refusal(cache, service(cache), "namespace assign")


def test_a_config_namespace_is_only_a_cross_check_of_the_snapshots(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "cache.db", members=MEMBERS, namespace="24")
    crossed = IssueService(cache, fmt=FMT, expected_namespace=NAMESPACE, policy=policy(), sign=sign)
    _no_namespace_refusal(cache, crossed, "'24'")
    agreed = IssueService(cache, fmt=FMT, expected_namespace="24", policy=policy(), sign=sign)
    coupon = agreed.issue(checkout("T-2", member=LOYAL)).coupon
    assert coupon is not None and coupon.code[2:4] == "24"


def test_a_format_1_snapshot_leaves_no_namespace(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "cache.db", members=MEMBERS)
    assert cache.minting_namespace() == NAMESPACE
    old = write_snapshot(tmp_path / "v1.db", store_id=STORE, format_version="1", namespace="25")
    cache.load_snapshot(old)
    assert cache.minting_namespace() is None


def _issued_elsewhere(cache: CodeCache, member: str, at: datetime, txn: str) -> None:
    """What a ``member.issued_elsewhere`` from HQ leaves: another store's box issued ``member``
    a coupon (or held them out) at ``at``."""
    change = Change(
        op=Op.MEMBER_ISSUED_ELSEWHERE,
        fields={"member_id": member, "store_id": "S2", "box_id": "box-s2", "till_id": "till-1",
                "transaction_id": txn, "at": at},
    )  # fmt: skip
    with cache.transaction() as conn:
        assert issues_elsewhere.apply(conn, change, cache.box_id)


def test_the_caps_count_what_other_stores_issued_beside_this_ones(cache: CodeCache) -> None:
    svc = service(cache)
    _issued_elsewhere(cache, LOYAL, NOW - timedelta(days=3), "T-S2-1")
    capped = svc.issue(checkout("T-1", member=LOYAL))
    assert capped.reason is NoCouponReason.FREQUENCY_CAPPED
    assert capped.retry_after == NOW - timedelta(days=3) + timedelta(days=30)
    assert svc.issue(checkout("T-2", member=LOYAL_2)).issued  # another member's own count
    # Older than every cap window: it no longer counts.
    _issued_elsewhere(cache, LOYAL_2, NOW - timedelta(days=45), "T-S2-2")
    assert svc.recent_issues(LOYAL_2, NOW) == (NOW,)

    # The velocity limit adds both sources too: one here, one there, newest first.
    fast = service(cache, pol=policy(max_per_member=10, max_per_member_per_day=2))
    later = NOW + timedelta(days=40)
    assert fast.issue(checkout("T-10", member=LOYAL, now=later)).issued
    _issued_elsewhere(cache, LOYAL, later + timedelta(hours=1), "T-S2-3")
    assert fast.recent_issues(LOYAL, later + timedelta(hours=2)) == (
        later + timedelta(hours=1),
        later,
    )
    limited = fast.issue(checkout("T-11", member=LOYAL, now=later + timedelta(hours=2)))
    assert limited.reason is NoCouponReason.VELOCITY_LIMIT
    assert limited.retry_after == later + timedelta(days=1)


def test_prune_forgets_other_stores_issues_once_every_cap_window_left(cache: CodeCache) -> None:
    _issued_elsewhere(cache, LOYAL, NOW - timedelta(days=31), "T-old")
    _issued_elsewhere(cache, LOYAL, NOW - timedelta(days=3), "T-new")
    assert service(cache).prune(NOW) == 1
    assert service(cache).recent_issues(LOYAL, NOW) == (NOW - timedelta(days=3),)
