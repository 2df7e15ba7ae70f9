"""Receipt coupon offers: which next-visit coupon each segment gets, the holdout and the caps.

The defaults are DOMAIN.md section 3's segment table; the benefit itself (5%, 10%, 20-25%,
30%, 15% on a second category) is the Promotion of each segment's campaign, which HQ ships
(see ``edge_agent/domain/receipt_campaigns.py`` for the default campaigns). A segment table given in
TOML is merged onto that segment's defaults, so ``[receipt_offers.loyal] validity_days = 21``
changes only the validity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from config.base import Section
from edge_agent.domain.offer_policy import DEFAULT_CAMPAIGN_IDS, SEGMENTS, OfferPolicy, OfferRule
from edge_agent.domain.offer_text import TEMPLATE_FIELDS, template_fields

_DEFAULT_TEXTS = {
    "champion": "Thank you for shopping with us: {benefit} {scope} on your next visit, "
    "until {until}.",
    "loyal": "Try something new: {benefit} {scope} on your next visit, until {until}.",
    "at_risk": "We miss you! {benefit} {scope} when you come back by {until}.",
    "hibernating": "Welcome back: {benefit} {scope}. Valid until {until} - don't miss it!",
    "one_timer": "Come back soon: {benefit} {scope} on your next visit, until {until}.",
}
# Hibernating: "30% + free shipping + reminder". Shipping has no meaning in a store; the reminder
# ("3 days left", DOMAIN.md section 1) is recorded on the issue event for HQ's messaging to send.
_DEFAULT_REMINDER_DAYS = {"hibernating": 3}
# Loyal: category nudge; one-timer: a second category. Both prefer a campaign on categories the
# customer did not buy today when nudge campaigns are configured.


class VariantShare(Section):
    name: Annotated[
        str,
        Field(pattern=r"^[A-Za-z0-9_-]{1,16}$", description="Variant label recorded on the code."),
    ]
    weight: Annotated[
        int, Field(ge=1, le=1000, description="Relative share of members who see this variant.")
    ] = 1


class SegmentOffer(Section):
    enabled: Annotated[bool, Field(description="Issue this segment's offer at all.")] = True
    campaign_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="Campaign whose Promotion defines the benefit; also the holdout cohort.",
        ),
    ]
    nudge_campaign_ids: Annotated[
        tuple[str, ...],
        Field(
            max_length=16,
            description="Alternative campaigns on other categories: the first whose categories "
            "the customer did not buy today is preferred (a category nudge).",
        ),
    ] = ()
    text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=240,
            description="Offer text on the receipt; placeholders: "
            + ", ".join("{" + f + "}" for f in sorted(TEMPLATE_FIELDS))
            + ".",
        ),
    ] = "{benefit} {scope} on your next visit, until {until}."
    validity_days: Annotated[
        int | None,
        Field(
            ge=7,
            le=30,
            description="Days the coupon is valid (DOMAIN.md: 7..30); unset: the section's "
            "validity_days.",
        ),
    ] = None
    variants: Annotated[
        tuple[VariantShare, ...],
        Field(
            min_length=1,
            max_length=8,
            description="A/B split: each member sees one variant, always the same one.",
        ),
    ] = (VariantShare(name="A"),)
    reminder_days_before_expiry: Annotated[
        int | None,
        Field(
            ge=1,
            le=29,
            description="Record a reminder this many days before expiry on the issue event "
            "(HQ's messaging sends it); unset: no reminder.",
        ),
    ] = None

    @field_validator("text")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            names = template_fields(value)
        except ValueError as exc:
            raise ValueError(f"malformed template: {exc}") from exc
        unknown = names - TEMPLATE_FIELDS
        if unknown or any(not n for n in names):
            raise ValueError(
                f"unknown placeholders {sorted(unknown) or ['{}']}; "
                f"allowed: {sorted(TEMPLATE_FIELDS)}"
            )
        return value

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, value: tuple[VariantShare, ...]) -> tuple[VariantShare, ...]:
        names = [v.name for v in value]
        if len(names) != len(set(names)):
            raise ValueError("variant names must be unique")
        return value

    def to_rule(self, segment: str, *, default_validity_days: int) -> OfferRule:
        return OfferRule(
            segment=segment,
            campaign_id=self.campaign_id,
            nudge_campaign_ids=self.nudge_campaign_ids,
            text=self.text,
            validity=timedelta(days=self.validity_days or default_validity_days),
            variants=tuple((v.name, v.weight) for v in self.variants),
            reminder_before_expiry=(
                None
                if self.reminder_days_before_expiry is None
                else timedelta(days=self.reminder_days_before_expiry)
            ),
        )


def _default(segment: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "campaign_id": DEFAULT_CAMPAIGN_IDS[segment],
        "text": _DEFAULT_TEXTS[segment],
    }
    if segment in _DEFAULT_REMINDER_DAYS:
        out["reminder_days_before_expiry"] = _DEFAULT_REMINDER_DAYS[segment]
    return out


class ReceiptOffersConfig(Section):
    enabled: Annotated[bool, Field(description="Print next-visit coupons on receipts.")] = True
    validity_days: Annotated[
        int, Field(ge=7, le=30, description="Default days a receipt coupon is valid.")
    ] = 14
    holdout_percent: Annotated[
        float,
        Field(
            ge=5,
            le=10,
            description="Share of every targeted cohort that gets no coupon (the control "
            "group for measuring lift; DOMAIN.md: 5-10%).",
        ),
    ] = 5.0
    holdout_key: Annotated[
        str,
        Field(
            min_length=8,
            max_length=128,
            description="Key of the holdout/variant hash. Must be the same in every store, so a "
            "member is held out everywhere or nowhere; changing it reshuffles the groups.",
        ),
    ] = "storeside-receipt-holdout-v1"
    max_per_member: Annotated[
        int, Field(ge=1, le=31, description="Frequency cap: coupons per member per window.")
    ] = 1
    frequency_window_days: Annotated[
        int, Field(ge=1, le=365, description="Window of the frequency cap, in days.")
    ] = 30
    max_per_member_per_day: Annotated[
        int,
        Field(ge=1, le=50, description="Issue velocity limit: coupons per member per 24 hours."),
    ] = 2
    min_basket_total: Annotated[
        int,
        Field(
            ge=0,
            le=10_000_000,
            description="Smallest purchase (minor units) that earns a receipt coupon.",
        ),
    ] = 1
    min_validity_hours: Annotated[
        int,
        Field(
            ge=1,
            le=720,
            description="Skip a campaign that ends sooner than this: a coupon that expires "
            "before the next visit is worse than none.",
        ),
    ] = 24
    champion: Annotated[
        SegmentOffer | None,
        Field(description="High RFM: 5% or a perk (discount erodes margin without lift)."),
    ] = SegmentOffer(**_default("champion"))
    loyal: Annotated[
        SegmentOffer | None, Field(description="Steady RFM: 10% with a category nudge.")
    ] = SegmentOffer(**_default("loyal"))
    at_risk: Annotated[
        SegmentOffer | None, Field(description="Falling frequency: 20-25%, urgent.")
    ] = SegmentOffer(**_default("at_risk"))
    hibernating: Annotated[
        SegmentOffer | None, Field(description="60-90 days idle: 30% and a reminder.")
    ] = SegmentOffer(**_default("hibernating"))
    one_timer: Annotated[
        SegmentOffer | None, Field(description="One purchase: 15% on a second category.")
    ] = SegmentOffer(**_default("one_timer"))
    anonymous: Annotated[
        SegmentOffer | None,
        Field(
            description="Offer for customers who did not identify (unbound code); none by default."
        ),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _merge_segment_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for segment in SEGMENTS:
            given = merged.get(segment)
            if isinstance(given, dict):
                merged[segment] = {**_default(segment), **given}
        return merged

    def to_policy(self) -> OfferPolicy:
        """The pure domain policy this section describes."""
        rules = []
        for segment in SEGMENTS:
            offer: SegmentOffer | None = getattr(self, segment)
            if offer is not None and offer.enabled:
                rules.append(offer.to_rule(segment, default_validity_days=self.validity_days))
        anonymous = None
        if self.anonymous is not None and self.anonymous.enabled:
            anonymous = self.anonymous.to_rule(
                "anonymous", default_validity_days=self.validity_days
            )
        return OfferPolicy(
            holdout_key=self.holdout_key.encode(),
            rules=tuple(rules),
            anonymous=anonymous,
            enabled=self.enabled,
            holdout_bp=round(self.holdout_percent * 100),
            frequency_max=self.max_per_member,
            frequency_window=timedelta(days=self.frequency_window_days),
            velocity_max=self.max_per_member_per_day,
            velocity_window=timedelta(days=1),
            min_basket_total=self.min_basket_total,
            min_validity=timedelta(hours=self.min_validity_hours),
        )
