"""What the redemption service answers, and the JSON form its idempotency records store.

The HTTP layer serialises these dataclasses; a retried request is answered from the stored JSON,
so every type here round-trips exactly: ``*_from_json(*_to_json(x))`` equals ``x`` except that
it is flagged ``replayed`` (stored JSON is only ever read back to answer a retry).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_agent.domain.code_record import CodeRecord, Reservation
from edge_agent.domain.decision import Accepted, Decision, LineDiscount, Reason, Refused


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveOutcome:
    decision: Decision
    hold_until: datetime | None = None  # set when the code is now held for this transaction
    replayed: bool = False  # the stored answer to an identical earlier request


@dataclass(frozen=True, slots=True, kw_only=True)
class Redemption:
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
    decision: Decision
    redemption: Redemption | None = None  # set when the code was redeemed
    replayed: bool = False  # the stored answer to an identical earlier request


@dataclass(frozen=True, slots=True, kw_only=True)
class VoidOutcome:
    code: str
    transaction_id: str
    released: bool  # False: there was no hold to release (already voided, expired, committed)
    voided_at: datetime | None = None
    event_id: str | None = None
    replayed: bool = False  # the stored answer to an earlier void of this code


@dataclass(frozen=True, slots=True, kw_only=True)
class ReverseOutcome:
    code: str
    transaction_id: str  # the sale given money back on
    sale_till_id: str  # ... and the till that made it
    return_id: str  # the returning till's own id for the return
    amount: int  # reversed by this return, minor units
    remaining: int  # still credited on the redemption after it
    fully_reversed: bool  # the use is restored (counts and budget)
    reversed_at: datetime
    event_id: str
    replayed: bool = False  # the stored answer to an identical earlier request


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkOutcome:
    code: str
    member_id: str
    mode: str
    linked_at: datetime
    created: bool  # False: it was already linked to this member (idempotent repeat)


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


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_ts(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def decision_to_dict(d: Decision) -> dict[str, Any]:
    if isinstance(d, Accepted):
        return {
            "ok": True,
            "code": d.code,
            "campaign_id": d.campaign_id,
            "discount": d.discount,
            "lines": [[line.sku, line.amount] for line in d.lines],
            "cashier_message": d.cashier_message,
            "customer_message": d.customer_message,
            "stacks_with": list(d.stacks_with),
            "does_not_stack_with": list(d.does_not_stack_with),
            "details": d.details,
        }
    return {
        "ok": False,
        "code": d.code,
        "reason": d.reason.value,
        "cashier_message": d.cashier_message,
        "customer_message": d.customer_message,
        "details": d.details,
        "retry_after": _ts(d.retry_after),
    }


def decision_from_dict(doc: dict[str, Any]) -> Decision:
    if doc["ok"]:
        return Accepted(
            code=doc["code"],
            campaign_id=doc["campaign_id"],
            discount=doc["discount"],
            lines=tuple(LineDiscount(sku=s, amount=a) for s, a in doc["lines"]),
            cashier_message=doc["cashier_message"],
            customer_message=doc["customer_message"],
            stacks_with=tuple(doc["stacks_with"]),
            does_not_stack_with=tuple(doc["does_not_stack_with"]),
            details=doc["details"],
        )
    return Refused(
        code=doc["code"],
        reason=Reason(doc["reason"]),
        cashier_message=doc["cashier_message"],
        customer_message=doc["customer_message"],
        details=doc["details"],
        retry_after=_parse_ts(doc["retry_after"]),
    )


# No sort_keys: a replayed answer keeps the details' key order too. One encoder for every
# answer: json.dumps with options builds a new one per call.
_ANSWER_JSON = json.JSONEncoder(separators=(",", ":"))


def _dump(doc: dict[str, Any]) -> str:
    return _ANSWER_JSON.encode(doc)


def reserve_to_json(o: ReserveOutcome) -> str:
    return _dump({"decision": decision_to_dict(o.decision), "hold_until": _ts(o.hold_until)})


def reserve_from_json(text: str) -> ReserveOutcome:
    doc = json.loads(text)
    return ReserveOutcome(
        decision=decision_from_dict(doc["decision"]),
        hold_until=_parse_ts(doc["hold_until"]),
        replayed=True,
    )


def commit_to_json(o: CommitOutcome) -> str:
    r = o.redemption
    red = None
    if r is not None:
        red = {
            "code": r.code,
            "transaction_id": r.transaction_id,
            "campaign_id": r.campaign_id,
            "member_id": r.member_id,
            "amount": r.amount,
            "redeemed_at": _ts(r.redeemed_at),
            "store_id": r.store_id,
            "till_id": r.till_id,
            "cashier_id": r.cashier_id,
            "event_id": r.event_id,
            "seq": r.seq,
        }
    return _dump({"decision": decision_to_dict(o.decision), "redemption": red})


def commit_from_json(text: str) -> CommitOutcome:
    doc = json.loads(text)
    red = doc["redemption"]
    redemption = None
    if red is not None:
        at = _parse_ts(red.pop("redeemed_at"))
        assert at is not None
        redemption = Redemption(redeemed_at=at, **red)
    return CommitOutcome(
        decision=decision_from_dict(doc["decision"]), redemption=redemption, replayed=True
    )


def void_to_json(o: VoidOutcome) -> str:
    return _dump(
        {
            "code": o.code,
            "transaction_id": o.transaction_id,
            "released": o.released,
            "voided_at": _ts(o.voided_at),
            "event_id": o.event_id,
        }
    )


def void_from_json(text: str) -> VoidOutcome:
    doc = json.loads(text)
    return VoidOutcome(
        code=doc["code"],
        transaction_id=doc["transaction_id"],
        released=doc["released"],
        voided_at=_parse_ts(doc["voided_at"]),
        event_id=doc["event_id"],
        replayed=True,
    )


def reverse_to_json(o: ReverseOutcome) -> str:
    return _dump(
        {
            "code": o.code,
            "transaction_id": o.transaction_id,
            "sale_till_id": o.sale_till_id,
            "return_id": o.return_id,
            "amount": o.amount,
            "remaining": o.remaining,
            "fully_reversed": o.fully_reversed,
            "reversed_at": _ts(o.reversed_at),
            "event_id": o.event_id,
        }
    )


def reverse_from_json(text: str) -> ReverseOutcome:
    doc = json.loads(text)
    at = _parse_ts(doc.pop("reversed_at"))
    assert at is not None
    doc.setdefault("sale_till_id", "")  # stored before v7, when sales had no till in their key
    return ReverseOutcome(reversed_at=at, replayed=True, **doc)
