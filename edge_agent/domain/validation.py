"""Validation of codes on a basket: pure, deterministic, no I/O.

Theory of operation
-------------------
``evaluate`` answers every code on a basket at once, in three passes.

1. **Each code alone**, in a fixed order of checks; the first that fails is the answer:

   ==  ==========================  ====================================================
    1  MALFORMED                   format and check character, before any lookup
    2  NOT_FOUND                   not in the store's cache
    3  ALREADY_IN_BASKET           scanned more often than ``uses_per_transaction``
                                   (by scan position: the later copies are refused)
    4  MEMBER_REQUIRED             bound/linked code, members-only or segment-targeted
                                   campaign, and no member identified
    5  WRONG_MEMBER                bound/linked to another member
    6  REVOKED                     code revoked or campaign withdrawn
    7  NOT_STARTED                 before the campaign starts (``retry_after`` = start)
    8  EXPIRED                     code expiry or campaign end, whichever is first
    9  WRONG_STORE                 ``allowed_stores``
   10  SEGMENT_NOT_ELIGIBLE        member's segment (unknown member: not eligible)
   11  ALREADY_REDEEMED            single-use code already used (when and where)
   12  RESERVED_ELSEWHERE          every use left is held by another transaction
   13  CODE_LIMIT_REACHED          ``total_uses_per_code`` reached
   14  MEMBER_LIMIT_REACHED        ``uses_per_member`` reached by this member
   15  VELOCITY_LIMIT              member's redemptions in the rolling window
   16  CAMPAIGN_BUDGET_EXHAUSTED   count reached, or money all spent
   17  STORE_ALLOCATION_EXHAUSTED  this store's share of the count
   18  NO_ELIGIBLE_ITEMS           no qualifying line at all
   19  MIN_SPEND_NOT_MET           qualifying spend, capped by the bill after POS discounts
   20  MIN_QTY_NOT_MET             qualifying quantity
   21  NO_ELIGIBLE_ITEMS           the benefit yields nothing (free item absent, ...)
       DISCOUNT_ROUNDS_TO_ZERO     a percentage of qualifying items that rounds to 0
   22  NOT_COMBINABLE              with a promotion the POS already applied
   23  CACHE_STALE                 cache older than ``offline.max_cache_age`` or never synced
   ==  ==========================  ====================================================

   Why this order: cheap input checks first; then who may use the code, before anything about
   its state, so a stranger's code says nothing about itself; then its life cycle and where it
   may be used; then use limits; then the basket; offline policy last, because a stale cache
   can only make us accept wrongly: refusals on stale data are the safe side.

2. **The codes together.** Survivors are ranked by their discount on the basket as it stands
   (after the POS's promotions only), larger first, then code string; each is kept if it
   combines with every code kept before it, else refused NOT_COMBINABLE naming the code and rule
   (see ``stacking``).

3. **Application** in stacking order (``StackingRule.order``, code, position). Each code's
   discount is computed on what earlier ones left, and the checks that depend on the other
   codes are repeated counting them: 12-17 (two uses of one code, two codes of one campaign, the
   member's redemptions), 21, then the money budget (CAMPAIGN_BUDGET_EXHAUSTED when the discount
   exceeds what is left of it) and ONLINE_CHECK_REQUIRED (a high-value discount, or a code with
   no use cap and no campaign budget, when the cache is older than
   ``offline.uncapped_max_cache_age``). If a kept code is refused here, pass 2 runs again without
   it, so a code that cannot be used never blocks one that can.

Nothing depends on the order of ``request.codes`` except which copy of a duplicated code is
the extra one. On a customer-facing channel, refusals of unproven codes then go through
``disclosure``. TILL_THROTTLED is the service layer's: it never reaches this function.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge_agent.domain import messages
from edge_agent.domain.basket import BasketLine
from edge_agent.domain.code_format import CodeFormat, Malformed, parse
from edge_agent.domain.code_record import CodeFacts, CodeStatus
from edge_agent.domain.decision import (
    Audience,
    Decision,
    LineDiscount,
    Refused,
    ValidationRequest,
)
from edge_agent.domain.disclosure import disclose
from edge_agent.domain.discount import NoDiscount, Share, compute
from edge_agent.domain.stacking import code_conflict, pos_conflict, summary


@dataclass(slots=True, kw_only=True)
class _Basket:
    """Per-request values every check reuses, computed once."""

    request: ValidationRequest
    lines: tuple[BasketLine, ...]
    totals: list[int]  # per line, before any code
    quantities: list[int]
    bill: int  # basket total after the POS's own discounts (>= 0)
    synced_at: datetime | None  # None: never synced
    cache_age: timedelta | None


def canonical(raw: str, fmt: CodeFormat, known: Container[str]) -> str | Malformed:
    """The code ``raw`` stands for, or why it cannot be one.

    Codes we mint carry a check character and are refused as MALFORMED on a typo. Brand-supplied
    codes (bulk imports) and generic literal codes (``HOLIMAN100``) have no such structure: they
    are stored verbatim, normalised, so a string that fails our format but is ``known`` is that
    literal code.
    """
    parsed = parse(raw, fmt)
    if isinstance(parsed, Malformed) and parsed.normalised in known:
        return parsed.normalised
    return parsed


def evaluate(
    request: ValidationRequest,
    facts: Mapping[str, CodeFacts],
    *,
    fmt: CodeFormat,
    store_cache_synced_at: datetime | None,
) -> tuple[Decision, ...]:
    """One decision per entry of ``request.codes``, in the same order.

    ``facts`` is keyed by canonical (normalised) code; a well-formed code missing from it is
    NOT_FOUND. ``store_cache_synced_at`` is when this store's cache last heard from HQ
    (None: never), for the offline policy.
    """
    lines = request.basket.lines
    totals = [line.quantity * line.unit_price for line in lines]
    pos_discounts = sum(a.discount for a in request.applied)
    ctx = _Basket(
        request=request,
        lines=lines,
        totals=totals,
        quantities=[line.quantity for line in lines],
        bill=max(0, sum(totals) - pos_discounts),
        synced_at=store_cache_synced_at,
        cache_age=(
            None
            if store_cache_synced_at is None
            else max(timedelta(0), request.now - store_cache_synced_at)
        ),
    )
    count = len(request.codes)
    decisions: list[Decision | None] = [None] * count
    codes: list[str] = []
    found: list[CodeFacts | None] = []
    shares: dict[int, Share] = {}
    occurrences: dict[str, int] = {}
    for pos, raw in enumerate(request.codes):
        parsed = canonical(raw, fmt, facts)
        if isinstance(parsed, Malformed):
            codes.append(parsed.normalised)
            found.append(None)
            decisions[pos] = messages.malformed(parsed.normalised, parsed.hint)
            continue
        codes.append(parsed)
        fact = facts.get(parsed)
        found.append(fact)
        if fact is None:
            decisions[pos] = messages.not_found(parsed)
            continue
        seen = occurrences.get(parsed, 0) + 1
        occurrences[parsed] = seen
        per_transaction = fact.promotion.limits.uses_per_transaction
        if seen > per_transaction:
            decisions[pos] = messages.already_in_basket(parsed, seen, per_transaction)
            continue
        outcome = _check_alone(parsed, fact, request, ctx)
        if isinstance(outcome, Refused):
            decisions[pos] = outcome
            continue
        shares[pos] = outcome
    if shares:
        facts_at = {pos: fact for pos, fact in enumerate(found) if fact is not None}
        _settle(ctx, codes, facts_at, shares, decisions)
    if request.audience is Audience.CUSTOMER:
        _disclose_all(decisions, found, request.member_id)
    result = tuple(d for d in decisions if d is not None)
    assert len(result) == count, "every code gets exactly one decision"
    return result


def _check_alone(
    code: str, fact: CodeFacts, request: ValidationRequest, ctx: _Basket
) -> Refused | Share:
    """Checks 4-23 of the table: everything that does not depend on the other codes."""
    record = fact.record
    promo = fact.promotion
    member = request.member_id
    now = request.now
    for owner, why in ((record.member_id, "bound"), (record.linked_member_id, "linked")):
        if owner is not None:
            if member is None:
                return messages.member_required(code, why)
            if member != owner:
                return messages.wrong_member(code, why)
    if member is None:
        if promo.requires_member:
            return messages.member_required(code, "campaign")
        if promo.eligible_segments:
            return messages.member_required(code, "segment")
    if record.status is not CodeStatus.ACTIVE:
        return messages.revoked(code, "code")
    if not promo.active:
        return messages.revoked(code, "campaign")
    if now < promo.starts_at:
        return messages.not_started(code, promo.starts_at)
    if record.expires_at is not None and record.expires_at < promo.ends_at:
        if now >= record.expires_at:
            return messages.expired(code, record.expires_at, "code")
    elif now >= promo.ends_at:
        return messages.expired(code, promo.ends_at, "campaign")
    if promo.allowed_stores and request.store_id not in promo.allowed_stores:
        return messages.wrong_store(code, request.store_id)
    if promo.eligible_segments:
        segment = fact.member.segment if fact.member is not None else None
        if segment not in promo.eligible_segments:
            return messages.segment_not_eligible(code, segment, sorted(promo.eligible_segments))
    refusal = _check_usage(code, fact, request)
    if refusal is not None:
        return refusal
    spend = quantity = 0
    any_eligible = False
    for line in ctx.lines:
        if line.quantity > 0 and promo.line_is_eligible(line.sku, line.category):
            any_eligible = True
            spend += line.quantity * line.unit_price
            quantity += line.quantity
    if not any_eligible:
        return messages.no_eligible(code, "no_eligible_lines", ())
    spend = min(spend, ctx.bill)
    if spend < promo.min_spend:
        return messages.min_spend(code, spend, promo.min_spend)
    if quantity < promo.min_quantity:
        return messages.min_quantity(code, quantity, promo.min_quantity)
    share = compute(promo, ctx.lines, ctx.totals, ctx.quantities, ctx.bill)
    if isinstance(share, NoDiscount):
        return messages.no_discount(code, promo, share)
    for applied in request.applied:
        rule = pos_conflict(promo.stacking, applied.stacking_class)
        if rule is not None:
            return messages.not_combinable(
                code, applied.name, "pos_promotion", applied.stacking_class, rule
            )
    max_age = promo.offline.max_cache_age
    if ctx.cache_age is None or ctx.cache_age > max_age:
        return messages.cache_stale(code, ctx.synced_at, ctx.cache_age or timedelta(0), max_age)
    return share


def _check_usage(
    code: str,
    fact: CodeFacts,
    request: ValidationRequest,
    *,
    used_code: int = 0,
    used_campaign: int = 0,
    used_member: int = 0,
    spent_campaign: int = 0,
) -> Refused | None:
    """Checks 11-17, counting uses earlier codes in this basket would add (0 when alone)."""
    promo = fact.promotion
    usage = fact.usage
    limits = promo.limits
    now = request.now
    total = limits.total_uses_per_code
    if total is not None:
        uses = usage.code_uses + used_code
        if uses >= total:
            if total == 1 and used_code == 0:
                return messages.already_redeemed(code, usage.last_redemption)
            return messages.code_limit(code, uses, total)
        if usage.reservations:
            # A sale is (till, transaction id): another till's sale of the same number holds
            # the code for someone else.
            sale = (request.till_id, request.transaction_id)
            holds = [
                r
                for r in usage.reservations
                if r.until > now and (r.till_id, r.transaction_id) != sale
            ]
            if holds and uses + len(holds) >= total:
                # The use this request needs frees up when the first hold lapses.
                return messages.reserved_elsewhere(code, min(holds, key=lambda r: r.until))
    if request.member_id is not None:
        per_member = limits.uses_per_member
        if per_member is not None and usage.member_code_uses + used_code >= per_member:
            return messages.member_limit(code, usage.member_code_uses + used_code, per_member)
        velocity = limits.member_velocity_count
        if velocity is not None:
            window = limits.member_velocity_window
            cutoff = now - window
            recent = sorted(t for t in usage.member_recent_redemptions if t > cutoff)
            in_window = len(recent) + used_member
            if in_window >= velocity:
                # The member may redeem again once in_window - velocity + 1 of them have left
                # the window: the (in_window - velocity)-th oldest leaves last of those.
                times = recent + [now] * used_member
                leave = in_window - velocity
                retry = times[leave] + window if leave < len(times) else None
                return messages.velocity(code, in_window, velocity, window, retry)
    if promo.budget_count is not None:
        used = usage.campaign_uses + used_campaign
        if used >= promo.budget_count:
            return messages.budget_count(code, used, promo.budget_count)
    if promo.budget_money is not None:
        spent = usage.campaign_money + spent_campaign
        if spent >= promo.budget_money:
            return messages.budget_money(code, None, spent, promo.budget_money)
    if promo.store_allocation is not None:
        used = usage.store_campaign_uses + used_campaign
        if used >= promo.store_allocation:
            return messages.store_allocation(code, used, promo.store_allocation)
    return None


def _check_offline(code: str, fact: CodeFacts, amount: int, ctx: _Basket) -> Refused | None:
    """ONLINE_CHECK_REQUIRED: risky codes get the shorter cache-age bound."""
    promo = fact.promotion
    policy = promo.offline
    age = ctx.cache_age
    bound = policy.uncapped_max_cache_age
    if age is None or age <= bound:
        return None
    timing: dict[str, object] = {
        "cache_age_s": messages.seconds(age),
        "max_age_s": messages.seconds(bound),
    }
    threshold = policy.high_value_threshold
    if threshold is not None and amount >= threshold:
        return messages.online_check(
            code, "high_value", {"discount": amount, "threshold": threshold, **timing}
        )
    if (
        promo.limits.total_uses_per_code is None
        and promo.budget_count is None
        and promo.budget_money is None
    ):
        return messages.online_check(code, "uncapped", timing)
    return None


def _settle(
    ctx: _Basket,
    codes: list[str],
    facts: dict[int, CodeFacts],
    shares: dict[int, Share],
    decisions: list[Decision | None],
) -> None:
    """Passes 2 and 3: keep combinable codes, apply them in stacking order, decide them."""
    pending = sorted(shares)
    while pending:
        ranked = sorted(pending, key=lambda p: (-shares[p].amount, codes[p], p))
        kept: list[int] = []
        displaced: dict[int, tuple[int, str]] = {}
        for pos in ranked:
            rule = facts[pos].promotion.stacking
            for other in kept:
                if codes[other] == codes[pos]:
                    continue  # copies of one code: uses_per_transaction decided already
                why = code_conflict(rule, facts[other].promotion.stacking)
                if why is not None:
                    displaced[pos] = (other, why)
                    break
            else:
                kept.append(pos)
        kept.sort(key=lambda p: (facts[p].promotion.stacking.order, codes[p], p))
        applied, refused = _apply(ctx, kept, codes, facts, shares)
        if refused:
            for pos, refusal in refused.items():
                decisions[pos] = refusal
                pending.remove(pos)
            continue
        for pos, (other, why) in displaced.items():
            other_class = facts[other].promotion.stacking.stacking_class
            decisions[pos] = messages.not_combinable(
                codes[pos], codes[other], "code", other_class, why
            )
        on_basket = {a.stacking_class for a in ctx.request.applied}
        on_basket.update(f.promotion.stacking.stacking_class for f in facts.values())
        for order, pos in enumerate(kept, start=1):
            share = applied[pos]
            promo = facts[pos].promotion
            stacks, not_stacks = summary(promo.stacking, on_basket)
            decisions[pos] = messages.accepted(
                codes[pos],
                promotion=promo,
                amount=share.amount,
                lines=tuple(
                    LineDiscount(sku=ctx.lines[i].sku, amount=amount)
                    for i, amount in sorted(share.lines)
                ),
                stacks_with=stacks,
                does_not_stack_with=not_stacks,
                applied_order=order,
            )
        return


def _apply(
    ctx: _Basket,
    kept: list[int],
    codes: list[str],
    facts: dict[int, CodeFacts],
    shares: dict[int, Share],
) -> tuple[dict[int, Share], dict[int, Refused]]:
    """Pass 3: apply ``kept`` in order, each on what the earlier ones left."""
    applied: dict[int, Share] = {}
    refused: dict[int, Refused] = {}
    request = ctx.request
    remaining = ctx.totals
    units = ctx.quantities
    headroom = ctx.bill
    used_code: dict[str, int] = {}
    used_campaign: dict[str, int] = {}
    spent_campaign: dict[str, int] = {}
    accepted = 0
    for pos in kept:
        code = codes[pos]
        fact = facts[pos]
        promo = fact.promotion
        campaign = promo.campaign_id
        share: Share | NoDiscount
        if accepted == 0:
            # Nothing applied yet: the basket is as pass 1 saw it, and so is the share.
            share = shares[pos]
        else:
            refusal = _check_usage(
                code,
                fact,
                request,
                used_code=used_code.get(code, 0),
                used_campaign=used_campaign.get(campaign, 0),
                used_member=accepted,
                spent_campaign=spent_campaign.get(campaign, 0),
            )
            if refusal is not None:
                refused[pos] = refusal
                continue
            share = compute(promo, ctx.lines, remaining, units, headroom)
            if isinstance(share, NoDiscount):
                refused[pos] = messages.no_discount(code, promo, share)
                continue
        spent = fact.usage.campaign_money + spent_campaign.get(campaign, 0)
        if promo.budget_money is not None and spent + share.amount > promo.budget_money:
            refused[pos] = messages.budget_money(code, share.amount, spent, promo.budget_money)
            continue
        refusal = _check_offline(code, fact, share.amount, ctx)
        if refusal is not None:
            refused[pos] = refusal
            continue
        applied[pos] = share
        if accepted == 0:
            remaining = list(remaining)  # copy on first write: ctx stays as pass 1 saw it
            units = list(units)
        for i, amount in share.lines:
            remaining[i] -= amount
        for i in share.units:
            units[i] -= 1
        headroom -= share.amount
        accepted += 1
        used_code[code] = used_code.get(code, 0) + 1
        used_campaign[campaign] = used_campaign.get(campaign, 0) + 1
        spent_campaign[campaign] = spent_campaign.get(campaign, 0) + share.amount
    return applied, refused


def _disclose_all(
    decisions: list[Decision | None], found: list[CodeFacts | None], member_id: str | None
) -> None:
    """Customer channel: refusals of codes the customer has not proven go through disclosure."""
    for pos, decision in enumerate(decisions):
        if not isinstance(decision, Refused):
            continue
        fact = found[pos]
        owners = () if fact is None else (fact.record.member_id, fact.record.linked_member_id)
        claimed = [owner for owner in owners if owner is not None]
        if claimed and member_id is not None and all(o == member_id for o in claimed):
            continue  # proven: the identified member owns it and may hear everything
        decisions[pos] = disclose(decision, owned_by_other=bool(claimed))
