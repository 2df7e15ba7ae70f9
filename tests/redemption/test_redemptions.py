"""The redemption service on real SQLite files: holds, commits, voids, returns, idempotency."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.code_format import ALPHABET
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.decision import Accepted, Reason, Refused
from edge_agent.domain.throttle import ThrottleConfig
from edge_agent.errors import (
    IdempotencyConflictError,
    LinkConflictError,
    MissingTransactionError,
    RedemptionNotFoundError,
    RequestError,
    ReversalTooLargeError,
    UnknownCodeError,
)
from edge_agent.redemption.service import RedemptionService
from tests.cache.factories import FMT, NOW, STORE, A, B, G, code, open_cache, req


@pytest.fixture
def cache(tmp_path: Path) -> CodeCache:
    c = open_cache(tmp_path / "c.db")
    yield c  # type: ignore[misc]
    c.close()


@pytest.fixture
def service(cache: CodeCache) -> RedemptionService:
    return RedemptionService(cache, fmt=FMT, hold=timedelta(minutes=5))


def replays(outcomes: Sequence[Any]) -> tuple[Any, ...]:
    """What a retry is answered: the first answers, flagged as replays."""
    return tuple(replace(o, replayed=True) for o in outcomes)


def events(cache: CodeCache) -> list[tuple[int, str, str | None]]:
    return list(cache.conn.execute("SELECT seq, type, code FROM events ORDER BY seq"))


def counts(cache: CodeCache) -> tuple[int, ...]:
    return tuple(
        cache.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("reservations", "redemptions", "events", "outbox", "requests")
    )


def void(service: RedemptionService, txn: str, c: str | None, **kw: object):  # type: ignore[no-untyped-def]
    args = {"store_id": STORE, "till_id": "till-1", "cashier_id": "k", "now": NOW} | kw
    return service.void(transaction_id=txn, code=c, **args)  # type: ignore[arg-type]


def reverse(service: RedemptionService, c: str, *, amount: int | None, return_id: str = "R-1"):  # type: ignore[no-untyped-def]
    return service.reverse(
        code=c,
        transaction_id="T-1",
        return_id=return_id,
        amount=amount,
        store_id=STORE,
        till_id="till-1",
        cashier_id="k",
        now=NOW + timedelta(days=1),
    )


def test_validate_is_read_only(cache: CodeCache, service: RedemptionService) -> None:
    before = counts(cache)
    (decision,) = service.validate(req(A))
    assert isinstance(decision, Accepted)
    assert decision.discount == 500
    assert counts(cache) == before


def test_reserve_then_commit_writes_state_event_and_outbox(
    cache: CodeCache, service: RedemptionService
) -> None:
    (held,) = service.reserve(req(A))
    assert held.decision.ok
    assert held.hold_until == NOW + timedelta(minutes=5)
    (done,) = service.commit(req(A, now=NOW + timedelta(minutes=1)))
    assert done.redemption is not None
    assert done.redemption.amount == 500
    assert done.redemption.seq == 2
    assert events(cache) == [(1, "code.reserved", A), (2, "code.redeemed", A)]
    assert counts(cache) == (0, 1, 2, 2, 2)  # the hold was consumed
    (again,) = service.validate(req(A, txn="T-2", now=NOW + timedelta(minutes=2)))
    assert isinstance(again, Refused)
    assert again.reason is Reason.ALREADY_REDEEMED
    assert again.details["transaction_id"] == "T-1"


def test_every_operation_is_idempotent(cache: CodeCache, service: RedemptionService) -> None:
    first = service.reserve(req(A))
    assert not any(o.replayed for o in first)
    assert service.reserve(req(A, now=NOW + timedelta(seconds=3))) == replays(first)
    committed = service.commit(req(A))
    assert service.commit(req(A, now=NOW + timedelta(seconds=9))) == replays(committed)
    returned = reverse(service, A, amount=200)
    assert reverse(service, A, amount=200) == replace(returned, replayed=True)
    service.reserve(req(B, txn="T-2", member="M2"))
    voided = void(service, "T-2", B)
    assert void(service, "T-2", B) == replays(voided)
    linked = service.link(
        code=G, member_id="M1", store_id=STORE, till_id="t", cashier_id="k", now=NOW
    )
    relinked = service.link(
        code=G, member_id="M1", store_id=STORE, till_id="t", cashier_id="k", now=NOW + timedelta(1)
    )
    assert linked.created and not relinked.created
    assert relinked.linked_at == linked.linked_at
    assert [t for _, t, _ in events(cache)] == [
        "code.reserved",
        "code.redeemed",
        "code.reversed",
        "code.reserved",
        "code.voided",
        "code.linked",
    ]
    assert cache.conn.execute("SELECT count(*) FROM redemptions").fetchone()[0] == 1


def test_commit_without_a_hold_validates_and_commits_in_one_go(
    cache: CodeCache, service: RedemptionService
) -> None:
    (done,) = service.commit(req(A))
    assert done.redemption is not None
    assert events(cache) == [(1, "code.redeemed", A)]


def test_the_same_transaction_is_never_credited_twice(
    cache: CodeCache, service: RedemptionService
) -> None:
    service.commit(req(G, member="M1"))
    (again,) = service.commit(req(G, member="M1"))
    assert again.replayed and again.redemption is not None and again.redemption.amount == 500
    # The same sale with another basket is not a retry: refused, not answered with the old one.
    with pytest.raises(IdempotencyConflictError, match="different request"):
        service.commit(req(G, member="M1", basket=Basket(lines=BIG)))
    n = cache.conn.execute("SELECT count(*) FROM redemptions WHERE code = ?", (G,)).fetchone()
    assert n[0] == 1


BIG = (BasketLine(sku="SKU9", category="food", quantity=9, unit_price=9000),)


def _race(services: list[RedemptionService], c: str, round_: int) -> list[str]:
    """Two tills, each on its own connection and thread, reserve ``c`` at the same instant."""
    barrier = threading.Barrier(len(services))
    results: list[str] = []

    def till(i: int) -> None:
        barrier.wait()
        (o,) = services[i].reserve(req(c, txn=f"T-{round_}-{i}", till=f"till-{i}"))
        d = o.decision
        results.append("OK" if isinstance(d, Accepted) else d.reason.value)

    threads = [threading.Thread(target=till, args=(i,)) for i in range(len(services))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_tills_race_for_one_code_on_two_connections(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    open_cache(path).close()
    caches = [CodeCache.open(path, store_id=STORE) for _ in range(2)]
    services = [RedemptionService(c, fmt=FMT) for c in caches]
    for round_ in range(10):
        c = code(f"RACE{ALPHABET[round_]}X")
        caches[0].put_codes([CodeRecord(code=c, campaign_id="C1", member_id="M1")])
        reasons = sorted(_race(services, c, round_))
        assert reasons == ["OK", "RESERVED_ELSEWHERE"]
    held = caches[0].conn.execute("SELECT count(*) FROM reservations").fetchone()[0]
    assert held == 10
    for c in caches:
        c.close()


def test_a_hold_blocks_other_tills_until_it_expires(service: RedemptionService) -> None:
    service.reserve(req(A))
    (other,) = service.reserve(req(A, txn="T-2", till="till-2", now=NOW + timedelta(minutes=4)))
    assert isinstance(other.decision, Refused)
    assert other.decision.reason is Reason.RESERVED_ELSEWHERE
    assert other.decision.retry_after == NOW + timedelta(minutes=5)
    (later,) = service.reserve(req(A, txn="T-2", till="till-2", now=NOW + timedelta(minutes=5)))
    assert later.decision.ok  # the first hold lapsed: it simply stopped counting
    (late,) = service.commit(req(A, now=NOW + timedelta(minutes=6)))  # the first till pays late
    assert isinstance(late.decision, Refused)
    assert late.decision.reason is Reason.RESERVED_ELSEWHERE
    assert service.expire_holds(NOW + timedelta(minutes=20)) == 1


def test_void_releases_the_hold(cache: CodeCache, service: RedemptionService) -> None:
    service.reserve(req(A))
    service.reserve(req(G))  # the same sale holds a second code
    (released, other) = void(service, "T-1", None)
    assert released.released and other.released
    assert {released.code, other.code} == {A, G}
    assert counts(cache)[0] == 0
    (taken,) = service.reserve(req(A, txn="T-2", till="till-2"))
    assert taken.decision.ok
    (nothing,) = void(service, "T-9", A)  # never held by T-9
    assert not nothing.released
    assert [t for _, t, _ in events(cache)][-3:-1] == ["code.voided", "code.voided"]


def test_full_reverse_restores_the_use_and_the_budget(
    cache: CodeCache, service: RedemptionService
) -> None:
    service.commit(req(A))
    out = reverse(service, A, amount=None)
    assert out.amount == 500 and out.remaining == 0 and out.fully_reversed
    facts = cache.lookup(A, "M1", NOW)
    assert facts is not None
    assert facts.usage.code_uses == 0
    assert facts.usage.member_code_uses == 0
    assert facts.usage.campaign_uses == 0 and facts.usage.campaign_money == 0
    assert facts.usage.last_redemption is None
    (again,) = service.commit(req(A, txn="T-2"))
    assert again.redemption is not None  # the code may be used again
    with pytest.raises(ReversalTooLargeError):
        reverse(service, A, amount=1, return_id="R-2")


def test_partial_reverses_give_back_money_until_the_whole_is_returned(
    cache: CodeCache, service: RedemptionService
) -> None:
    service.commit(req(A))
    first = reverse(service, A, amount=200)
    assert (first.amount, first.remaining, first.fully_reversed) == (200, 300, False)
    facts = cache.lookup(A, "M1", NOW)
    assert facts is not None
    assert facts.usage.code_uses == 1 and facts.usage.campaign_money == 300
    with pytest.raises(ReversalTooLargeError) as err:
        reverse(service, A, amount=301, return_id="R-2")
    assert err.value.remaining == 300
    last = reverse(service, A, amount=300, return_id="R-3")
    assert last.fully_reversed and last.remaining == 0
    status = service.status(A, NOW)
    assert status.uses == 0
    assert [r.return_id for r in status.redemptions[0].reversals] == ["R-1", "R-3"]
    assert [h.type for h in status.history] == ["code.redeemed", "code.reversed", "code.reversed"]


def test_request_errors_are_typed(service: RedemptionService) -> None:
    with pytest.raises(MissingTransactionError):
        service.reserve(req(A, txn=None))
    with pytest.raises(MissingTransactionError):
        service.commit(req(A, txn=None))
    with pytest.raises(RedemptionNotFoundError):
        reverse(service, A, amount=None)
    with pytest.raises(RequestError):
        reverse(service, A, amount=0)
    with pytest.raises(UnknownCodeError):
        service.status("SSK7ZZZZZZZ", NOW)
    with pytest.raises(UnknownCodeError):
        service.status("not a code", NOW)
    with pytest.raises(LinkConflictError):
        service.link(code=A, member_id="M2", store_id=STORE, till_id="t", cashier_id="k", now=NOW)


def test_refusals_are_not_stored_so_a_fixed_basket_can_retry(service: RedemptionService) -> None:
    (refused,) = service.reserve(req(A, basket=Basket()))
    assert not refused.decision.ok
    (accepted,) = service.reserve(req(A))
    assert accepted.decision.ok


def test_guessing_till_is_throttled_and_flagged(cache: CodeCache) -> None:
    config = ThrottleConfig(
        max_failures=3, window=timedelta(minutes=1), cooldown=timedelta(minutes=5)
    )
    service = RedemptionService(cache, fmt=FMT, throttle=config)
    service.reserve(req(A, txn="T-held"))
    guesses = [code(f"GUESS{i + 2}") for i in range(3)]
    for i, g in enumerate(guesses):
        (d,) = service.validate(req(g, now=NOW + timedelta(seconds=i)))
        assert isinstance(d, Refused) and d.reason is Reason.NOT_FOUND
    (blocked,) = service.validate(req(B, member="M2", now=NOW + timedelta(seconds=5)))
    assert isinstance(blocked, Refused) and blocked.reason is Reason.TILL_THROTTLED
    assert blocked.retry_after == NOW + timedelta(seconds=2, minutes=5)
    (other_till,) = service.validate(req(B, member="M2", till="till-2"))
    assert other_till.ok
    # The till may still finish the sale it already holds a code for.
    (paid,) = service.commit(req(A, txn="T-held", now=NOW + timedelta(seconds=6)))
    assert paid.redemption is not None
    flags = [
        b for (b,) in cache.conn.execute("SELECT body FROM events WHERE type = 'till.throttled'")
    ]
    assert len(flags) == 1 and '"till_id":"till-1"' in flags[0]
    (after,) = service.validate(req(B, member="M2", now=NOW + timedelta(minutes=6)))
    assert after.ok


def test_multi_code_basket_reserves_each_accepted_code(
    cache: CodeCache, service: RedemptionService
) -> None:
    out = service.reserve(req(A, "SSK7ZZZZZZZ", A))
    assert [o.decision.ok for o in out] == [True, False, False]
    assert out[0].hold_until is not None and out[2].hold_until is None
    assert counts(cache)[0] == 1
