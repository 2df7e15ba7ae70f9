"""The issuing path's ``on_issued`` hook: queue the coupon's print job in the issue's transaction.

``IssueService(on_issued=print_on_issue(...))`` calls the hook on the cache connection inside
the ``BEGIN IMMEDIATE`` transaction that records the coupon, so the coupon and its print job
commit together (``print_queue.enqueue`` never begins or commits). The agent then calls
``PrintWorker.wake()`` once the issue has returned.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import timedelta

from edge_agent.issuing.outcome import IssuedCoupon
from edge_agent.printing import print_queue
from edge_agent.printing.document import CouponDocument

OnIssued = Callable[[sqlite3.Connection, IssuedCoupon], None]


def coupon_document(
    coupon: IssuedCoupon, *, header_lines: Sequence[str], reminder: str
) -> CouponDocument:
    """What gets printed for ``coupon``. The printed date is the last valid day: a coupon that
    expires at 00:00 UTC on the 15th is valid until the 14th (UTC; the agent has no store
    time zone setting yet)."""
    return CouponDocument(
        header_lines=tuple(header_lines),
        offer_text=coupon.offer_text,
        qr_payload=coupon.qr_payload,
        display_code=coupon.display,
        expires_on=(coupon.expires_at - timedelta(microseconds=1)).date(),
        terms=coupon.stacking_terms,
        reminder=reminder,
    )


def print_on_issue(*, header_lines: Sequence[str], reminder: str = "") -> OnIssued:
    """An ``on_issued`` hook that enqueues the coupon's first print job."""
    header = tuple(header_lines)

    def hook(conn: sqlite3.Connection, coupon: IssuedCoupon) -> None:
        print_queue.enqueue(
            conn,
            code=coupon.code,
            till_id=coupon.till_id,
            transaction_id=coupon.transaction_id,
            document=coupon_document(coupon, header_lines=header, reminder=reminder),
            now=coupon.issued_at,
        )

    return hook
