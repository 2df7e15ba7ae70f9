"""The words of every refusal and acceptance: precise for the cashier, polite for the customer.

One constructor per reason keeps the wording in one place and the ``details`` keys stable.
Details are JSON-ready: ints (money in minor units), strings, ISO 8601 UTC timestamps and lists
of strings. Customer messages never name another member, a store or a till.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge_agent.domain.code_record import RedemptionInfo, Reservation
from edge_agent.domain.decision import Accepted, LineDiscount, Reason, Refused
from edge_agent.domain.discount import NoDiscount, format_money
from edge_agent.domain.promotion import Benefit, BenefitKind, Promotion
from edge_agent.domain.stacking import describe

CUSTOMER: dict[Reason, str] = {
    Reason.MALFORMED: "That code doesn't look right. Please check it and try again.",
    Reason.NOT_FOUND: "We couldn't find that code. Please check it and try again.",
    Reason.NOT_STARTED: "This offer isn't active yet.",
    Reason.EXPIRED: "Sorry, this code has expired.",
    Reason.REVOKED: "Sorry, this code is no longer valid.",
    Reason.ALREADY_REDEEMED: "This code has already been used.",
    Reason.RESERVED_ELSEWHERE: "This code is being used in another purchase right now.",
    Reason.MEMBER_REQUIRED: "Please show your membership card or app to use this code.",
    Reason.WRONG_MEMBER: "This code can't be used with this membership.",
    Reason.CODE_LIMIT_REACHED: "Sorry, this code has reached its limit.",
    Reason.MEMBER_LIMIT_REACHED: "You have already used this code as often as it allows.",
    Reason.VELOCITY_LIMIT: "You've used several codes recently; please try again later.",
    Reason.CAMPAIGN_BUDGET_EXHAUSTED: "Sorry, this offer has ended: it was fully claimed.",
    Reason.STORE_ALLOCATION_EXHAUSTED: "Sorry, this offer is fully claimed in this store.",
    Reason.WRONG_STORE: "Sorry, this code can't be used in this store.",
    Reason.MIN_SPEND_NOT_MET: "Your purchase doesn't reach this offer's minimum yet.",
    Reason.MIN_QTY_NOT_MET: "This offer needs more qualifying items.",
    Reason.NO_ELIGIBLE_ITEMS: "None of the items in this purchase qualify for this code.",
    Reason.DISCOUNT_ROUNDS_TO_ZERO: "This code's discount rounds to nothing on this purchase, "
    "so it hasn't been used. Keep it for a larger purchase.",
    Reason.SEGMENT_NOT_ELIGIBLE: "Sorry, this offer isn't available for this membership.",
    Reason.NOT_COMBINABLE: "This code can't be combined with another offer in this purchase.",
    Reason.ALREADY_IN_BASKET: "This code is already applied to this purchase.",
    Reason.CACHE_STALE: "We can't check this code right now; please ask a member of staff.",
    Reason.ONLINE_CHECK_REQUIRED: "This code needs a quick check; please ask a member of staff.",
    Reason.TILL_THROTTLED: "Please wait a moment and ask a member of staff.",
    Reason.INVALID_TOKEN: "We couldn't read that coupon. Please type the code printed under it.",
    Reason.INVALID_SIGNATURE: "Sorry, this coupon isn't valid.",
    Reason.UNKNOWN_ISSUER: "Sorry, this coupon isn't valid here.",
}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def when(moment: datetime) -> str:
    """For people: ``2025-03-01 14:05 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def seconds(span: timedelta) -> int:
    return int(span.total_seconds())


def _refused(
    code: str,
    reason: Reason,
    cashier: str,
    details: dict[str, object],
    *,
    customer: str | None = None,
    retry_after: datetime | None = None,
) -> Refused:
    return Refused(
        code=code,
        reason=reason,
        cashier_message=cashier,
        customer_message=customer if customer is not None else CUSTOMER[reason],
        details=details,
        retry_after=retry_after,
    )


def malformed(code: str, hint: str) -> Refused:
    return _refused(code, Reason.MALFORMED, f"Not a valid code: {hint}", {"hint": hint})


def not_found(code: str) -> Refused:
    return _refused(code, Reason.NOT_FOUND, f"{code} is not a code this store knows.", {})


def already_in_basket(code: str, occurrence: int, per_transaction: int) -> Refused:
    return _refused(
        code,
        Reason.ALREADY_IN_BASKET,
        f"{code} is already in this basket; it may be used {per_transaction} time(s) "
        "per transaction.",
        {"occurrence": occurrence, "uses_per_transaction": per_transaction},
    )


def member_required(code: str, why: str) -> Refused:
    texts = {
        "bound": "is issued to a member: identify the member first.",
        "linked": "is linked to a member's account: identify the member first.",
        "campaign": "is for members only: identify the member first.",
        "segment": "targets member segments: identify the member first.",
    }
    return _refused(code, Reason.MEMBER_REQUIRED, f"{code} {texts[why]}", {"why": why})


def wrong_member(code: str, why: str) -> Refused:
    # The owner's id is deliberately not in the details: a till does not need it.
    text = "issued to" if why == "bound" else "linked to"
    return _refused(
        code,
        Reason.WRONG_MEMBER,
        f"{code} is {text} a different member than the one identified.",
        {"why": why},
    )


def revoked(code: str, what: str) -> Refused:
    text = "has been revoked" if what == "code" else "belongs to a campaign HQ has withdrawn"
    return _refused(code, Reason.REVOKED, f"{code} {text}.", {"revoked": what})


def not_started(code: str, starts_at: datetime) -> Refused:
    return _refused(
        code,
        Reason.NOT_STARTED,
        f"{code} is valid from {when(starts_at)}.",
        {"starts_at": iso(starts_at)},
        customer=f"This offer starts on {starts_at.astimezone(UTC):%Y-%m-%d}.",
        retry_after=starts_at,
    )


def expired(code: str, expired_at: datetime, what: str) -> Refused:
    text = "expired" if what == "code" else "expired when its campaign ended"
    return _refused(
        code,
        Reason.EXPIRED,
        f"{code} {text} on {when(expired_at)}.",
        {"expired_at": iso(expired_at), "expiry_of": what},
    )


def wrong_store(code: str, store_id: str) -> Refused:
    return _refused(
        code, Reason.WRONG_STORE, f"{code} is not valid in store {store_id}.", {"store": store_id}
    )


def segment_not_eligible(code: str, segment: str | None, allowed: list[str]) -> Refused:
    seg = segment if segment is not None else "unknown"
    return _refused(
        code,
        Reason.SEGMENT_NOT_ELIGIBLE,
        f"{code} is for {', '.join(allowed)} members; this member is {seg}.",
        {"segment": seg, "eligible_segments": allowed},
    )


def already_redeemed(code: str, last: RedemptionInfo | None) -> Refused:
    if last is None:
        return _refused(code, Reason.ALREADY_REDEEMED, f"{code} has already been used.", {})
    return _refused(
        code,
        Reason.ALREADY_REDEEMED,
        f"{code} was used on {when(last.at)} in store {last.store_id}, till {last.till_id} "
        f"(transaction {last.transaction_id}).",
        {
            "redeemed_at": iso(last.at),
            "store_id": last.store_id,
            "till_id": last.till_id,
            "transaction_id": last.transaction_id,
        },
    )


def reserved_elsewhere(code: str, hold: Reservation) -> Refused:
    return _refused(
        code,
        Reason.RESERVED_ELSEWHERE,
        f"{code} is held by till {hold.till_id} in store {hold.store_id} until {when(hold.until)}.",
        {
            "store_id": hold.store_id,
            "till_id": hold.till_id,
            "transaction_id": hold.transaction_id,
            "until": iso(hold.until),
        },
        retry_after=hold.until,
    )


def code_limit(code: str, uses: int, limit: int) -> Refused:
    return _refused(
        code,
        Reason.CODE_LIMIT_REACHED,
        f"{code} has been used {uses} of {limit} allowed times.",
        {"uses": uses, "limit": limit},
    )


def member_limit(code: str, uses: int, limit: int) -> Refused:
    return _refused(
        code,
        Reason.MEMBER_LIMIT_REACHED,
        f"This member has used {code} {uses} of {limit} allowed times.",
        {"uses": uses, "limit": limit},
    )


def velocity(
    code: str, recent: int, limit: int, window: timedelta, retry: datetime | None
) -> Refused:
    details: dict[str, object] = {"recent": recent, "limit": limit, "window_s": seconds(window)}
    text = (
        f"This member redeemed {recent} codes in the last {seconds(window) // 60} minutes "
        f"(limit {limit})"
    )
    if retry is not None:
        details["retry_after"] = iso(retry)
        text += f"; next possible at {when(retry)}"
    return _refused(code, Reason.VELOCITY_LIMIT, text + ".", details, retry_after=retry)


def budget_count(code: str, used: int, budget: int) -> Refused:
    return _refused(
        code,
        Reason.CAMPAIGN_BUDGET_EXHAUSTED,
        f"The campaign of {code} has used all {budget} redemptions it was budgeted.",
        {"budget": "count", "used": used, "limit": budget},
    )


def budget_money(code: str, discount: int | None, spent: int, budget: int) -> Refused:
    """``discount`` None: the money budget is spent already, whatever the discount."""
    left = max(0, budget - spent)
    details: dict[str, object] = {"budget": "money", "spent": spent, "limit": budget, "left": left}
    text = f"The campaign of {code} has {format_money(left)} of its budget left"
    if discount is not None:
        details["discount"] = discount
        text += f"; this discount would be {format_money(discount)}"
    return _refused(code, Reason.CAMPAIGN_BUDGET_EXHAUSTED, text + ".", details)


def store_allocation(code: str, used: int, allocation: int) -> Refused:
    return _refused(
        code,
        Reason.STORE_ALLOCATION_EXHAUSTED,
        f"This store has used all {allocation} redemptions allocated to the campaign of {code}.",
        {"used": used, "limit": allocation},
    )


def min_spend(code: str, spend: int, minimum: int) -> Refused:
    short = minimum - spend
    return _refused(
        code,
        Reason.MIN_SPEND_NOT_MET,
        f"{code} needs a spend of {format_money(minimum)} on qualifying items; "
        f"the basket has {format_money(spend)}, {format_money(short)} short.",
        {"spend": spend, "minimum": minimum, "shortfall": short},
        customer=f"Spend {format_money(short)} more to use this code.",
    )


def min_quantity(code: str, quantity: int, minimum: int) -> Refused:
    short = minimum - quantity
    return _refused(
        code,
        Reason.MIN_QTY_NOT_MET,
        f"{code} needs {minimum} qualifying items; the basket has {quantity}, {short} short.",
        {"quantity": quantity, "minimum": minimum, "shortfall": short},
        customer=f"Add {short} more qualifying item(s) to use this code.",
    )


_NO_ELIGIBLE = {
    "no_eligible_lines": "no item in the basket qualifies",
    "fully_discounted": "the qualifying items are already fully discounted",
    "already_discounted": "the free item is already taken by another promotion",
    "free_item_missing": "the free item is not in the basket",
    "bundle_incomplete": "the bundle is not complete in the basket",
    "bundle_saves_nothing": "the bundle price is not below the items' prices",
    "no_value": "the discount comes to nothing on these items",
}


def no_eligible(code: str, why: str, missing: tuple[str, ...]) -> Refused:
    text = _NO_ELIGIBLE.get(why, why)
    if missing:
        text += f" (missing: {', '.join(missing)})"
    return _refused(
        code,
        Reason.NO_ELIGIBLE_ITEMS,
        f"{code} gives nothing here: {text}.",
        {"why": why, "missing_skus": list(missing)},
    )


def rounds_to_zero(code: str, benefit: Benefit, eligible_amount: int) -> Refused:
    return _refused(
        code,
        Reason.DISCOUNT_ROUNDS_TO_ZERO,
        f"{code} gives nothing here: {benefit_words(benefit).removesuffix(' off')} of the "
        f"qualifying {format_money(eligible_amount)} rounds to 0.00; the code is kept unused.",
        {"eligible_amount": eligible_amount, "percent_bp": benefit.value},
    )


def no_discount(code: str, promotion: Promotion, share: NoDiscount) -> Refused:
    """The refusal for a benefit that yields nothing (``discount.compute``'s ``NoDiscount``)."""
    if share.why == "rounds_to_zero":
        return rounds_to_zero(code, promotion.benefit, share.eligible_amount)
    return no_eligible(code, share.why, share.missing_skus)


def not_combinable(code: str, with_what: str, kind: str, with_class: str, rule: str) -> Refused:
    label = "the POS promotion" if kind == "pos_promotion" else "code"
    return _refused(
        code,
        Reason.NOT_COMBINABLE,
        f"{code} cannot be combined with {label} {with_what}: {rule}.",
        {"conflict": with_what, "conflict_kind": kind, "conflict_class": with_class, "rule": rule},
    )


def cache_stale(code: str, synced_at: datetime | None, age: timedelta, limit: timedelta) -> Refused:
    if synced_at is None:
        text = "this store's code cache has never synced with HQ"
        details: dict[str, object] = {"synced_at": "never", "max_age_s": seconds(limit)}
    else:
        text = f"this store's code cache last synced {when(synced_at)}"
        details = {"synced_at": iso(synced_at), "age_s": seconds(age), "max_age_s": seconds(limit)}
    return _refused(
        code,
        Reason.CACHE_STALE,
        f"{code} cannot be checked offline: {text} (older than the campaign allows).",
        details,
    )


def online_check(code: str, why: str, details: dict[str, object]) -> Refused:
    text = "is a high-value discount" if why == "high_value" else "has no use or budget cap"
    return _refused(
        code,
        Reason.ONLINE_CHECK_REQUIRED,
        f"{code} {text} and the store's cache is too old to accept it offline; "
        "check it online with HQ.",
        {"why": why, **details},
    )


def benefit_words(benefit: Benefit) -> str:
    if benefit.kind is BenefitKind.PERCENT_OFF:
        whole, part = divmod(benefit.value, 100)
        pct = f"{whole}" if not part else f"{whole}.{part:02d}".rstrip("0")
        return f"{pct}% off"
    if benefit.kind is BenefitKind.FIXED_OFF:
        return f"{format_money(benefit.value)} off"
    if benefit.kind is BenefitKind.FREE_ITEM:
        return f"one {benefit.free_sku} free"
    return f"{' + '.join(benefit.bundle_skus)} for {format_money(benefit.value)}"


def accepted(
    code: str,
    *,
    promotion: Promotion,
    amount: int,
    lines: tuple[LineDiscount, ...],
    stacks_with: tuple[str, ...],
    does_not_stack_with: tuple[str, ...],
    applied_order: int,
) -> Accepted:
    return Accepted(
        code=code,
        campaign_id=promotion.campaign_id,
        discount=amount,
        lines=lines,
        cashier_message=(
            f"{code} accepted: {promotion.name} ({benefit_words(promotion.benefit)}), "
            f"{format_money(amount)} off. {describe(stacks_with, does_not_stack_with)}"
        ),
        customer_message=f"Code accepted: you save {format_money(amount)}.",
        stacks_with=stacks_with,
        does_not_stack_with=does_not_stack_with,
        details={
            "benefit": promotion.benefit.kind.value,
            "stacking_class": promotion.stacking.stacking_class,
            "applied_order": applied_order,
        },
    )


# -- signed QR tokens: ``code`` is the scanned text when the token is unreadable or unproven --


def invalid_token(scanned: str, fault: str, detail: str) -> Refused:
    return _refused(
        scanned,
        Reason.INVALID_TOKEN,
        f"The scanned QR coupon cannot be read ({detail}): it may be damaged or not one of "
        "ours. Type the code printed under the QR instead.",
        {"fault": fault, "detail": detail},
    )


def invalid_signature(scanned: str, key_id: str, store_id: str) -> Refused:
    return _refused(
        scanned,
        Reason.INVALID_SIGNATURE,
        f"The scanned QR coupon claims store {store_id}'s key {key_id} but its signature does "
        "not match: it was forged or altered. Do not accept it.",
        {"key_id": key_id, "store_id": store_id},
    )


def unknown_issuer(scanned: str, key_id: str, why: str, store_id: str | None) -> Refused:
    details: dict[str, object] = {"key_id": key_id, "why": why}
    if why == "revoked" and store_id is not None:
        details["store_id"] = store_id
        text = f"is signed by key {key_id} of store {store_id}, which HQ has revoked"
    else:
        text = f"is signed by key {key_id}, which this store does not know"
    return _refused(
        scanned, Reason.UNKNOWN_ISSUER, f"The scanned QR coupon {text}. Do not accept it.", details
    )


def token_campaign_unknown(code: str, store_id: str) -> Refused:
    return _refused(
        code,
        Reason.NOT_FOUND,
        f"{code} is a genuine coupon from store {store_id}, but its offer has not reached this "
        "store's cache yet; it cannot be honoured here until the next sync.",
        {"why": "campaign_unknown", "issuer_store": store_id},
    )
