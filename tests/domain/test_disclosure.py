"""Disclosure mode: a customer channel learns nothing from a code it has not proven."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from edge_agent.domain.code_record import UsageFacts
from edge_agent.domain.decision import Accepted, Audience, Reason, Refused
from edge_agent.domain.disclosure import DISCLOSED_REASONS, PUBLIC_REASON, public_reason
from edge_agent.domain.promotion import Limits
from tests.domain.factories import NOW, code, facts, promotion, request, run
from tests.domain.test_reasons import SCENARIOS

A = code("HQ2P9X")
CUSTOMER = Audience.CUSTOMER


def test_every_reason_has_a_public_form() -> None:
    assert set(PUBLIC_REASON) == set(Reason)
    assert set(PUBLIC_REASON.values()) <= DISCLOSED_REASONS
    assert all(public_reason(r, owned_by_other=True) is Reason.NOT_FOUND for r in Reason)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_customer_channel_only_sees_three_reasons_unless_proven(name: str) -> None:
    req, known, synced = SCENARIOS[name][1]()
    req = replace(req, audience=CUSTOMER)
    decision = run(req, known, synced)[-1]
    assert isinstance(decision, Refused)
    fact = known.get(decision.code)
    proven = (
        fact is not None
        and req.member_id is not None
        and fact.record.member_id in (None, req.member_id)
        and fact.record.linked_member_id in (None, req.member_id)
        and (fact.record.member_id or fact.record.linked_member_id) is not None
    )
    if proven:
        assert decision.reason is SCENARIOS[name][0]
    else:
        assert decision.reason in DISCLOSED_REASONS
        assert decision.details == {}
        assert decision.retry_after is None
        assert decision.cashier_message == decision.customer_message


def test_a_strangers_code_looks_exactly_like_an_unknown_one() -> None:
    stranger = facts(
        A, member_id="M-2", expires_at=NOW - timedelta(days=1), usage=UsageFacts(code_uses=1)
    )
    (guessed,) = run(request(A, audience=CUSTOMER), {A: stranger})
    (unknown,) = run(request(A, audience=CUSTOMER), {})
    assert guessed == unknown
    assert isinstance(guessed, Refused)
    assert guessed.reason is Reason.NOT_FOUND
    # Anonymous guess of a member-bound code: the same.
    (anonymous,) = run(request(A, audience=CUSTOMER, member_id=None), {A: stranger})
    assert anonymous == unknown


def test_generic_codes_may_say_expired_or_limit_reached() -> None:
    generic = facts(A, promotion(limits=Limits(total_uses_per_code=10)), member_id=None)
    (expired,) = run(
        request(A, audience=CUSTOMER),
        {A: replace(generic, record=replace(generic.record, expires_at=NOW))},
    )
    assert isinstance(expired, Refused)
    assert (expired.reason, expired.details) == (Reason.EXPIRED, {})
    (used_up,) = run(
        request(A, audience=CUSTOMER), {A: replace(generic, usage=UsageFacts(code_uses=10))}
    )
    assert isinstance(used_up, Refused)
    assert used_up.reason is Reason.CODE_LIMIT_REACHED
    (short,) = run(
        request(A, audience=CUSTOMER), {A: replace(generic, promotion=promotion(min_spend=10_000))}
    )
    assert isinstance(short, Refused)
    assert short.reason is Reason.NOT_FOUND


def test_proven_code_gets_the_full_answer_and_acceptances_pass() -> None:
    mine = facts(A, usage=UsageFacts(code_uses=1))
    (decision,) = run(request(A, audience=CUSTOMER), {A: mine})
    assert isinstance(decision, Refused)
    assert decision.reason is Reason.ALREADY_REDEEMED
    (ok,) = run(request(A, audience=CUSTOMER), {A: facts(A)})
    assert isinstance(ok, Accepted)


def test_cashier_channel_is_precise() -> None:
    (decision,) = run(request(A), {A: facts(A, member_id="M-2")})
    assert isinstance(decision, Refused)
    assert decision.reason is Reason.WRONG_MEMBER
