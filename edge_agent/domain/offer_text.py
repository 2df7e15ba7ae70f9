"""The words of a receipt offer: the offer text template and the discount with its conditions.

Templates are ``str.format`` strings over ``TEMPLATE_FIELDS`` (config refuses any other name):
``{benefit}`` "10% off", ``{scope}`` "bakery items" / "your whole purchase" (empty for a free
item or bundle, whose benefit words already name the items), ``{until}`` the expiry date
"15 Mar 2025" (UTC), ``{days}`` the days of validity, ``{name}`` the campaign's name.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from datetime import datetime

from edge_agent.domain.discount import format_money
from edge_agent.domain.messages import benefit_words
from edge_agent.domain.promotion import BenefitKind, Promotion

# What an offer text template may name; config refuses any other placeholder.
TEMPLATE_FIELDS = frozenset({"benefit", "scope", "until", "days", "name"})


def template_fields(text: str) -> frozenset[str]:
    """The placeholders of a ``str.format`` template (raises ValueError if it is malformed)."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def _words(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _scope(promotion: Promotion) -> str:
    if promotion.benefit.kind in (BenefitKind.FREE_ITEM, BenefitKind.BUNDLE_PRICE):
        return ""  # the benefit words already name the items
    if promotion.eligible_categories:
        names = sorted(c.replace("_", " ") for c in promotion.eligible_categories)
        return f"{_words(names)} items" + (" and selected items" if promotion.eligible_skus else "")
    if promotion.eligible_skus:
        return "selected items"
    return "your whole purchase"


def discount_words(promotion: Promotion) -> str:
    """The benefit with its conditions, e.g. "10% off bakery items, up to 5.00, on a spend of
    20.00 or more"."""
    parts = [" ".join(filter(None, (benefit_words(promotion.benefit), _scope(promotion))))]
    if promotion.benefit.max_discount is not None:
        parts.append(f"up to {format_money(promotion.benefit.max_discount)}")
    if promotion.min_spend:
        parts.append(f"on a spend of {format_money(promotion.min_spend)} or more")
    if promotion.min_quantity:
        parts.append(f"when buying {promotion.min_quantity} or more items")
    return ", ".join(parts)


def render_text(template: str, promotion: Promotion, *, expires_at: datetime, days: int) -> str:
    text = template.format(
        benefit=benefit_words(promotion.benefit),
        scope=_scope(promotion),
        until=expires_at.strftime("%d %b %Y").lstrip("0"),
        days=str(days),
        name=promotion.name,
    )
    return " ".join(text.split())  # an empty scope must not leave a double space
