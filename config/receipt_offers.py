"""Receipt coupon offers: which offer each segment gets. (Initial shape; the issuing work
extends it.)"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from config.base import Section


class ReceiptOffersConfig(Section):
    enabled: Annotated[bool, Field(description="Print next-visit coupons on receipts.")] = True
