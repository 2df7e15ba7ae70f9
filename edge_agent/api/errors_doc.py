"""The error answers of the POS API as the OpenAPI document lists them, one place for all routes.

Every error is sent as ``{error, detail}`` (``ErrorOut``); ``error`` is the stable name a POS
switches on. Each status's description lists the names it can carry, so the document says what
the handlers in ``app.py`` (``_STATUS_BY_ERROR`` and the framework handlers), ``body_limit`` and
the receipt routes actually send. A route lists only the statuses it can give.
"""

from __future__ import annotations

from typing import Any

from edge_agent.api.schemas import ErrorOut

_WHY: dict[int, str] = {
    400: "`bad_request`: the body could not be read as JSON text (e.g. not UTF-8).",
    401: "`unauthorized`: no till bearer token, or one this box does not know.",
    403: "`other_till`: a till asked about (or to void) another till's.",
    404: "`unknown_code`, `redemption_not_found`, `no_receipt_coupon`, `unknown_member` or "
    "`points_sale_not_found`: nothing to act on.",
    409: "`idempotency_conflict` (the sale's or return's id already answered a different "
    "request: a retry must repeat it exactly), `reversal_too_large` or `link_conflict`: the "
    "request contradicts what is recorded.",
    413: "`body_too_large`: the body is over the box's limit (64 KiB).",
    422: "`invalid_request` (`detail` names the field or path parameter, e.g. "
    "`basket.lines.0.quantity` or `path.code`) or `missing_transaction`.",
    503: "`store_unavailable` (the cache cannot be used now), on receipt routes "
    "`receipts_unavailable` (this box cannot issue receipt coupons), or on points routes "
    "`points_disabled` (points are off on this box).",
}


def errors_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer these error statuses."""
    return {s: {"model": ErrorOut, "description": _WHY[s]} for s in sorted(statuses)}
