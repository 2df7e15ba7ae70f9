"""Receipt coupon routes: issue at checkout, print status, reprint.

The POS calls ``POST /v1/receipt-coupons`` when a sale completes. The coupon, its event
and its print job commit in one transaction; the print worker is woken and the route waits a
moment (``print_confirm_wait_s``) so the usual answer is "printed". If the printer is slow or
down the answer is "print_pending" with the code and QR payload, for the POS to show on screen;
the job stays queued and prints when the printer is back. A retried checkout gets the stored
answer: never a second coupon.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Path

from edge_agent.api.deps import Ctx, Till
from edge_agent.api.errors_doc import errors_doc
from edge_agent.api.receipt_schemas import CheckoutIn, PrintOut, ReceiptCouponOut
from edge_agent.errors import RequestError
from edge_agent.fields import Id
from edge_agent.issuing.outcome import Checkout
from edge_agent.printing import print_queue
from edge_agent.printing.print_queue import TransactionPrintStatus
from edge_agent.services import StoreServices

router = APIRouter(tags=["receipt coupons"])
_POLL_S = 0.01
_ISSUE_ERRORS = errors_doc(400, 401, 409, 413, 422, 503)
_PRINT_ERRORS = errors_doc(401, 404, 422, 503)


class NoCouponError(RequestError):
    """The transaction has no receipt coupon (answered 404)."""


async def _status(ctx: Ctx, till_id: str, transaction_id: str) -> TransactionPrintStatus | None:
    return await ctx.db.run(
        lambda s: print_queue.transaction_status(
            s.cache.conn, till_id=till_id, transaction_id=transaction_id
        )
    )


async def _await_print(
    ctx: Ctx, till_id: str, transaction_id: str
) -> TransactionPrintStatus | None:
    """The print status once printed, once an attempt failed (the retry is the queue's job;
    the POS should show the QR now), or as it stands when the wait is over."""
    deadline = time.monotonic() + ctx.print_confirm_wait_s
    while True:
        status = await _status(ctx, till_id, transaction_id)
        if (
            status is None
            or status.status != "print_pending"
            or status.last_error is not None
            or time.monotonic() >= deadline
        ):
            return status
        await asyncio.sleep(_POLL_S)


@router.post("/v1/receipt-coupons", response_model=ReceiptCouponOut, responses=_ISSUE_ERRORS)
async def issue(body: CheckoutIn, till_id: Till, ctx: Ctx) -> ReceiptCouponOut:
    """At checkout: decide, mint, sign and print the next-visit coupon (or say why not)."""
    basket, _ = body.basket.to_domain()
    checkout = Checkout(
        transaction_id=body.transaction_id,
        till_id=till_id,
        cashier_id=body.cashier_id,
        basket=basket,
        now=ctx.clock(),
        member_id=body.member_id,
    )
    outcome = await ctx.db.run(lambda s: s.issuing.issue(checkout))
    status = None
    if outcome.issued:
        ctx.wake_printer()
        status = await _await_print(ctx, till_id, body.transaction_id)
    return ReceiptCouponOut.of(outcome, status)


@router.get(
    "/v1/receipt-coupons/{transaction_id}/print", response_model=PrintOut, responses=_PRINT_ERRORS
)
async def print_status(transaction_id: Annotated[Id, Path()], till_id: Till, ctx: Ctx) -> PrintOut:
    """Whether the coupon of a sale has printed (the POS polls this while it is pending)."""
    status = await _status(ctx, till_id, transaction_id)
    if status is None:
        raise NoCouponError(f"no receipt coupon for transaction {transaction_id} of this till")
    return PrintOut.of(status)


@router.post(
    "/v1/receipt-coupons/{transaction_id}/reprint", response_model=PrintOut, responses=_PRINT_ERRORS
)
async def reprint(transaction_id: Annotated[Id, Path()], till_id: Till, ctx: Ctx) -> PrintOut:
    """Print the coupon again, marked REPRINT (the customer lost it, the paper jammed...)."""
    now = ctx.clock()

    def queue(s: StoreServices) -> int | None:
        with s.cache.transaction() as conn:
            return print_queue.reprint(
                conn, till_id=till_id, transaction_id=transaction_id, now=now
            )

    if await ctx.db.run(queue) is None:
        raise NoCouponError(f"no receipt coupon for transaction {transaction_id} of this till")
    ctx.wake_printer()
    status = await _await_print(ctx, till_id, transaction_id)
    assert status is not None
    return PrintOut.of(status)
