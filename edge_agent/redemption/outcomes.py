"""What the redemption service answers: each shape defined once, here.

Every result is a frozen dataclass, and every other form of it is derived from that one
definition by pydantic, never written out again:

* the POS API sends the dataclass as it is: FastAPI serialises it, and its schema in
  ``/openapi.json`` is generated from these fields and their descriptions;
* the CLI's ``--json`` prints the same JSON (``edge_agent.api.schemas``);
* the idempotency store keeps that JSON, less ``replayed`` (``StoredForm``), and a retry is
  answered from it: ``replay(dump(x)) == replace(x, replayed=True)``.

So a field added to a dataclass here is stored, replayed, sent and documented with no other
change. A ``Decision`` (the domain's ``Accepted | Refused``, which stays free of pydantic) goes
on every wire in one flat form, ``DecisionOut``, whose fields are the union's
(``tests/api/test_one_definition.py`` holds them equal).

Answers stored by the box before these definitions (a hand-written codec) are read through
``_upgrade_*``: a replay after the upgrade answers exactly what it answered before.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer, PlainValidator

from edge_agent.cache.idempotency import StoredForm
from edge_agent.domain.code_record import CodeRecord, Reservation
from edge_agent.domain.decision import Accepted, Decision, LineDiscount, Reason, Refused

Replayed = Annotated[
    bool, Field(description="The stored answer to an identical earlier request (a retry).")
]


class DecisionOut(BaseModel):
    """A decision on the wire: ``ok`` tells an acceptance (discount, lines) from a refusal
    (stable ``reason``); the fields of the other kind take their defaults."""

    ok: bool
    code: str
    reason: Annotated[Reason | None, Field(description="Stable reason code when refused.")] = None
    cashier_message: str
    customer_message: str
    discount: int = 0
    lines: tuple[LineDiscount, ...] = ()
    campaign_id: str | None = None
    stacks_with: tuple[str, ...] = ()
    does_not_stack_with: tuple[str, ...] = ()
    retry_after: datetime | None = None
    details: dict[str, object] = {}

    @classmethod
    def of(cls, decision: Decision) -> DecisionOut:
        # By field name: a field added to Accepted or Refused (and here) needs no code. (The
        # validating constructor: on this path it is faster than model_construct.)
        values = {name: getattr(decision, name) for name in _FIELDS[type(decision)]}
        return cls(ok=decision.ok, **values)

    def to_domain(self) -> Decision:
        kind: type[Accepted] | type[Refused] = Accepted if self.ok else Refused
        return kind(**{name: getattr(self, name) for name in _FIELDS[kind]})


# Each kind's field names, read once: DecisionOut.of runs for every decision answered.
_FIELDS: dict[type[Decision], tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(kind)) for kind in (Accepted, Refused)
}


def _decision_in(value: object) -> Decision:
    if isinstance(value, Accepted | Refused):
        return value
    return DecisionOut.model_validate(value).to_domain()


# A Decision inside a result: kept as the domain's value, sent and stored as a DecisionOut.
WireDecision = Annotated[
    Decision,
    PlainValidator(_decision_in, json_schema_input_type=DecisionOut),
    PlainSerializer(DecisionOut.of, return_type=DecisionOut),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveOutcome:
    """One code's answer to a reserve."""

    decision: WireDecision
    hold_until: Annotated[datetime | None, Field(description="Set when now held.")] = None
    replayed: Replayed = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Redemption:
    """A committed use of a code."""

    code: str
    transaction_id: str
    campaign_id: str
    member_id: str | None
    amount: int  # discount granted, minor units
    redeemed_at: datetime
    store_id: str
    till_id: str
    cashier_id: str
    event_id: str
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitOutcome:
    """One code's answer to a commit."""

    decision: WireDecision
    redemption: Annotated[
        Redemption | None, Field(description="Set when the code was redeemed.")
    ] = None
    replayed: Replayed = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VoidOutcome:
    """One code's answer to a void; ``released`` false: there was no hold to release (already
    voided, expired or committed)."""

    code: str
    transaction_id: str
    released: bool
    voided_at: datetime | None = None
    event_id: str | None = None
    replayed: Replayed = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ReverseOutcome:
    """A return's answer: what it gave back on the sale and what stays credited."""

    code: str
    transaction_id: str  # the sale given money back on
    sale_till_id: str  # ... and the till that made it
    return_id: str  # the returning till's own id for the return
    amount: int  # reversed by this return, minor units
    remaining: int  # still credited on the redemption after it
    fully_reversed: bool  # the use is restored (counts and budget)
    reversed_at: datetime
    event_id: str
    replayed: Replayed = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkOutcome:
    """A code linked to a member; ``created`` false: it already was (an idempotent repeat)."""

    code: str
    member_id: str
    mode: str
    linked_at: datetime
    created: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ReversalView:
    return_id: str
    amount: int
    reversed_at: datetime
    till_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RedemptionView:
    transaction_id: str
    member_id: str | None
    amount: int
    reversed_amount: int
    fully_reversed: bool
    redeemed_at: datetime
    store_id: str
    till_id: str
    cashier_id: str
    reversals: tuple[ReversalView, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    seq: int
    event_id: str
    type: str
    occurred_at: datetime
    transaction_id: str | None
    till_id: str
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeStatusView:
    record: CodeRecord  # with the link overlay applied
    uses: int
    holds: tuple[Reservation, ...]  # live ones
    redemptions: tuple[RedemptionView, ...]  # oldest first
    history: tuple[HistoryEntry, ...]  # events still kept, oldest first


# -- answers stored by earlier versions of the box ---------------------------------------------
# Its hand-written codec wrote a decision's lines as [sku, amount] pairs and left out the other
# kind's fields (which take their defaults here); times had "+00:00" where pydantic writes "Z"
# (both read the same).


def _upgrade_decision(doc: dict[str, Any]) -> dict[str, Any]:
    lines = doc.get("lines", ())
    if any(isinstance(line, list) for line in lines):
        doc = {**doc, "lines": [{"sku": s, "amount": a} for s, a in lines]}
    return doc


def _upgrade_decided(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "decision": _upgrade_decision(doc["decision"])}


def _upgrade_reverse(doc: dict[str, Any]) -> dict[str, Any]:
    # Stored before v7, when a sale had no till in its key.
    return {"sale_till_id": "", **doc}


RESERVED = StoredForm(ReserveOutcome, upgrade=_upgrade_decided)
COMMITTED = StoredForm(CommitOutcome, upgrade=_upgrade_decided)
VOIDED = StoredForm(VoidOutcome)
REVERSED = StoredForm(ReverseOutcome, upgrade=_upgrade_reverse)
