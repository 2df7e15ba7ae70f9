"""Each data shape is defined once, and every form of it follows that definition.

The results the POS API sends are the service's own dataclasses: their OpenAPI schemas, their
JSON bodies and their stored answers must carry exactly the dataclass's fields. The API's other
shapes are envelopes, flattened views, projections or request bodies of a dataclass; each is held
here to its source's fields, so a field added in one place and not the other fails a test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from dataclasses import MISSING, dataclass, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from edge_agent.api.receipt_schemas import CheckoutIn, CouponOut, PrintOut, ReceiptCouponOut
from edge_agent.api.schemas import (
    AppliedIn,
    CodeStatusOut,
    LineIn,
    TaskOut,
    ValidateIn,
)
from edge_agent.cache.idempotency import StoredForm
from edge_agent.cli.main import main as edge_agent
from edge_agent.domain.basket import AppliedPromotion, BasketLine
from edge_agent.domain.code_record import CodeRecord, Reservation
from edge_agent.domain.decision import (
    Accepted,
    Decision,
    LineDiscount,
    Reason,
    Refused,
    ValidationRequest,
)
from edge_agent.issuing.outcome import Checkout, IssuedCoupon, IssueOutcome
from edge_agent.printing.print_queue import TransactionPrintStatus
from edge_agent.redemption import outcomes
from edge_agent.redemption.outcomes import (
    CodeStatusView,
    CommitOutcome,
    DecisionOut,
    HistoryEntry,
    LinkOutcome,
    Redemption,
    RedemptionView,
    ReserveOutcome,
    ReversalView,
    ReverseOutcome,
    VoidOutcome,
)
from edge_agent.runtime.supervisor import TaskStatus
from tests.api.conftest import Server
from tests.cache.factories import A
from tests.cli.test_edge_agent_cli import write_config

# OpenAPI component: the dataclass the API sends as it is.
SENT_AS_DEFINED: dict[str, type[Any]] = {
    "ReserveOutcome": ReserveOutcome,
    "CommitOutcome": CommitOutcome,
    "Redemption": Redemption,
    "VoidOutcome": VoidOutcome,
    "ReverseOutcome": ReverseOutcome,
    "LinkOutcome": LinkOutcome,
    "Reservation": Reservation,
    "RedemptionView": RedemptionView,
    "ReversalView": ReversalView,
    "HistoryEntry": HistoryEntry,
    "LineDiscount": LineDiscount,
}


def _components(server: Server) -> dict[str, Any]:
    with server.client(None) as anon:
        doc: dict[str, Any] = anon.get("/openapi.json").json()
    return dict(doc["components"]["schemas"])


def _names(kind: Any) -> list[str]:
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return list(kind.model_fields)
    return [f.name for f in fields(kind)]


def test_results_are_documented_with_exactly_their_dataclass_fields(server: Server) -> None:
    components = _components(server)
    for name, kind in SENT_AS_DEFINED.items():
        schema = components[name]
        assert list(schema["properties"]) == _names(kind), name
        required = [
            f.name for f in fields(kind) if f.default is MISSING and f.default_factory is MISSING
        ]
        assert schema.get("required", []) == required, name
    # The flattened and projected views carry their sources' fields too (below).
    assert list(components["CodeStatusOut"]["properties"]) == _names(CodeStatusOut)
    assert list(components["DecisionOut"]["properties"]) == _names(DecisionOut)


def test_a_decision_on_the_wire_has_every_field_of_both_kinds() -> None:
    union = {"ok"} | set(_names(Accepted)) | set(_names(Refused))
    assert set(_names(DecisionOut)) == union


def _compatible(model_type: Any, source_type: Any) -> bool:
    """The view's type is the source's, or its JSON form (a StrEnum as str, a tuple as list)."""
    if model_type == source_type:
        return True
    if model_type is str and isinstance(source_type, type) and issubclass(source_type, StrEnum):
        return True
    if get_origin(model_type) is list and get_origin(source_type) is tuple:
        return get_args(model_type)[0] == get_args(source_type)[0]
    return False


def _projection(model: type[BaseModel], source: type[Any], *, own: Collection[str] = ()) -> None:
    hints = get_type_hints(source)
    for name, info in model.model_fields.items():
        if name in own:
            continue
        assert name in hints, f"{model.__name__}.{name} is not a field of {source.__name__}"
        assert _compatible(info.annotation, hints[name]), (model.__name__, name)


def test_flattened_views_and_projections_are_their_sources_fields() -> None:
    record = set(_names(CodeRecord))
    view = set(_names(CodeStatusView)) - {"record"}
    assert set(_names(CodeStatusOut)) == record | view
    _projection(CodeStatusOut, CodeRecord, own=view)
    _projection(CodeStatusOut, CodeStatusView, own=record)
    assert _names(TaskOut) == _names(TaskStatus)
    _projection(TaskOut, TaskStatus)
    _projection(CouponOut, IssuedCoupon)
    _projection(PrintOut, TransactionPrintStatus)
    # ``issued`` is IssueOutcome's property; ``coupon`` and ``print`` are projections themselves.
    _projection(ReceiptCouponOut, IssueOutcome, own={"issued", "coupon", "print"})


def test_request_bodies_have_their_dataclass_fields() -> None:
    for body, kind in ((LineIn, BasketLine), (AppliedIn, AppliedPromotion)):
        assert _names(body) == _names(kind)
        defaults = {f.name: f.default for f in fields(kind) if f.default is not MISSING}
        assert {n: body.model_fields[n].default for n in defaults} == defaults
    # What the body does not carry, the route supplies: the till from its token, the store and
    # the time from the box; a basket body carries the POS's applied promotions.
    from_route = {"store_id", "till_id", "now", "applied"}
    assert set(_names(ValidateIn)) | from_route == set(_names(ValidationRequest))
    assert set(_names(CheckoutIn)) | {"till_id", "now"} == set(_names(Checkout))


# -- a field added once appears everywhere --------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _VoidWithNote(VoidOutcome):
    """VoidOutcome with one field added, as a developer would add it."""

    note: Annotated[str, Field(description="A field added once.")] = "hello"


def test_a_field_added_to_a_result_is_stored_replayed_sent_and_documented() -> None:
    outcome = _VoidWithNote(code="C", transaction_id="T", released=False)
    stored = StoredForm(_VoidWithNote)
    text = stored.dump(outcome)
    assert json.loads(text)["note"] == "hello"
    assert stored.replay(text).note == "hello"

    app = FastAPI()

    @app.get("/void", response_model=_VoidWithNote)
    async def void() -> _VoidWithNote:
        return outcome

    transport = httpx.ASGITransport(app=app)

    async def call() -> tuple[dict[str, Any], dict[str, Any]]:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get("/void")).json(), (await client.get("/openapi.json")).json()

    body, doc = asyncio.run(call())
    assert body["note"] == "hello"
    schema = doc["components"]["schemas"]["_VoidWithNote"]["properties"]["note"]
    assert schema["description"] == "A field added once."


# -- stored answers round-trip exactly ------------------------------------------------------

_text = st.text(min_size=1, max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
_details = st.dictionaries(st.text(max_size=6), _json, max_size=4)
_zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_zones
)
_accepted = st.builds(
    Accepted,
    code=_text,
    campaign_id=_text,
    discount=st.integers(0, 10**8),
    lines=st.lists(st.builds(LineDiscount, sku=_text, amount=st.integers(0, 10**8))).map(tuple),
    cashier_message=st.text(),
    customer_message=st.text(),
    stacks_with=st.lists(_text, max_size=3).map(tuple),
    does_not_stack_with=st.lists(_text, max_size=3).map(tuple),
    details=_details,
)
_refused = st.builds(
    Refused,
    code=_text,
    reason=st.sampled_from(Reason),
    cashier_message=st.text(),
    customer_message=st.text(),
    details=_details,
    retry_after=st.none() | _times,
)
_decisions: st.SearchStrategy[Decision] = _accepted | _refused
_redemptions = st.builds(
    Redemption,
    code=_text,
    transaction_id=_text,
    campaign_id=_text,
    member_id=st.none() | _text,
    amount=st.integers(0, 10**8),
    redeemed_at=_times,
    store_id=_text,
    till_id=_text,
    cashier_id=_text,
    event_id=_text,
    seq=st.integers(0, 2**62),
)


AnswerT = TypeVar("AnswerT", ReserveOutcome, CommitOutcome, VoidOutcome, ReverseOutcome)


def _round_trip(form: StoredForm[AnswerT], answer: AnswerT) -> None:
    text = form.dump(answer)
    assert set(json.loads(text)) == set(_names(type(answer))) - {"replayed"}
    assert form.replay(text) == replace(answer, replayed=True)


@given(decision=_decisions, until=st.none() | _times, redemption=st.none() | _redemptions)
def test_stored_answers_round_trip_exactly(
    decision: Decision, until: datetime | None, redemption: Redemption | None
) -> None:
    assert DecisionOut.of(decision).to_domain() == decision
    _round_trip(outcomes.RESERVED, ReserveOutcome(decision=decision, hold_until=until))
    _round_trip(outcomes.COMMITTED, CommitOutcome(decision=decision, redemption=redemption))


@given(at=_times, event=st.none() | _text)
def test_void_and_reverse_answers_round_trip_exactly(at: datetime, event: str | None) -> None:
    void = VoidOutcome(code="C", transaction_id="T", released=True, voided_at=at, event_id=event)
    _round_trip(outcomes.VOIDED, void)
    reverse = ReverseOutcome(
        code="C",
        transaction_id="T",
        sale_till_id="till-2",
        return_id="R",
        amount=1,
        remaining=0,
        fully_reversed=True,
        reversed_at=at,
        event_id="e",
    )
    _round_trip(outcomes.REVERSED, reverse)


def test_a_reversal_stored_before_sales_had_a_till_replays_with_none() -> None:
    old = (
        '{"code":"C","transaction_id":"T","return_id":"R","amount":1,"remaining":0,'
        '"fully_reversed":true,"reversed_at":"2025-03-01T12:00:00+00:00","event_id":"e"}'
    )
    replayed = outcomes.REVERSED.replay(old)
    assert replayed.sale_till_id == "" and replayed.replayed
    assert replayed.reversed_at == datetime(2025, 3, 1, 12, tzinfo=UTC)


# -- the CLI prints the API's shapes ---------------------------------------------------------


def test_the_cli_json_has_the_api_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(write_config(tmp_path, synced=True))
    line = "--line=SKU1:food:2:1500"
    assert edge_agent(["--config", cfg, "validate", A, "--member", "M1", line, "--json"]) == 0
    [decision] = json.loads(capsys.readouterr().out)
    assert list(decision) == _names(DecisionOut)
    assert edge_agent(["--config", cfg, "status", A, "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == _names(CodeStatusOut)
