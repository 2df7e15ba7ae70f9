"""Promotions as JSON-ready dicts: the campaign file, the body HQ stores and snapshots ship.

One definition (``CampaignFile``, pydantic) serves all three: ``storeside-hq campaign create``
validates a file with it, HQ and the store write and read campaign bodies with it, and
``config/campaign.schema.json`` is generated from it (a test keeps it current). Its JSON is
exactly what the hand-written codec before it wrote, so a box reads old and new bodies alike.

Closed and strict: unknown keys are errors, integers must be integers (``true`` and ``"5"`` are
not), timestamps are ISO 8601 strings with a UTC offset, and every number has a bound (an
unbounded one once crashed ``timedelta`` or SQLite). Every error is reported at once, with its
path: ``benefit.value: ...; limits.total_uses_per_code: ...``.

Units: money is in minor units (cents); a percentage is in **basis points** (1 bp = 0.01%,
1000 = 10%, 10000 = 100%); durations are seconds. pydantic is a data-definition library, not
I/O, so the domain may use it (``tests/test_import_boundaries.py``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Self, TypeVar, get_type_hints

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from edge_agent.domain.promotion import BenefitKind, Promotion

MAX_COUNT = 10**12  # uses, budgets, allocations: far above any campaign, inside SQLite's int64
MAX_MONEY = 10**12  # minor units
MAX_SECONDS = 10 * 366 * 86_400  # ten years; timedelta and epoch arithmetic stay safe
MAX_BASIS_POINTS = 10_000  # 100%


class PromotionFormatError(ValueError):
    """A campaign document that does not describe a valid promotion; ``problems`` lists all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 is before datetime.min in UTC
        raise ValueError("timestamp is out of range in UTC") from None


def _text_only(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 timestamp with a UTC offset, as a string")
    return value


Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
Money = Annotated[StrictInt, Field(ge=0, le=MAX_MONEY)]
Seconds = Annotated[StrictInt, Field(ge=0, le=MAX_SECONDS)]
Names = Annotated[
    frozenset[Annotated[StrictStr, Field(min_length=1, max_length=128)]],
    Field(max_length=100_000),
    PlainSerializer(sorted, return_type=list[str]),
]
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_text_only),
    AfterValidator(_utc),
    PlainSerializer(lambda d: d.astimezone(UTC).isoformat(), return_type=str),
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SectionT = TypeVar("SectionT", bound=_Section)


class BenefitFile(_Section):
    """What the code gives: the kind decides which other fields matter."""

    model_config = ConfigDict(title="Benefit")

    kind: Annotated[
        BenefitKind,
        Field(description="percent_off, fixed_off, free_item or bundle_price."),
    ]
    value: Annotated[
        StrictInt,
        Field(
            ge=0,
            le=MAX_MONEY,
            validate_default=True,
            description="percent_off: basis points (1 bp = 0.01%; 1000 = 10%, at most 10000). "
            "fixed_off: minor units off the eligible lines. bundle_price: what the bundle "
            "costs, in minor units. free_item: unused (0).",
        ),
    ] = 0
    free_sku: Annotated[
        StrictStr | None,
        Field(
            min_length=1,
            max_length=128,
            validate_default=True,
            description="free_item: the SKU of which one unit is free (it must be in the basket).",
        ),
    ] = None
    bundle_skus: Annotated[
        tuple[Annotated[StrictStr, Field(min_length=1, max_length=128)], ...],
        Field(
            max_length=100,
            validate_default=True,
            description="bundle_price: the SKUs bought together (two or more).",
        ),
        AfterValidator(lambda skus: tuple(sorted(skus))),  # one bundle, one value
    ] = ()
    max_discount: Annotated[
        Money | None, Field(description="Cap on the discount in minor units; null: uncapped.")
    ] = None

    @field_validator("value")
    @classmethod
    def _percent_in_basis_points(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("kind") is BenefitKind.PERCENT_OFF and value > MAX_BASIS_POINTS:
            raise ValueError(
                f"percent_off is in basis points (1000 = 10%): at most {MAX_BASIS_POINTS}, "
                f"got {value}"
            )
        return value

    @field_validator("free_sku")
    @classmethod
    def _free_item_names_its_sku(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") is BenefitKind.FREE_ITEM and not value:
            raise ValueError("required for free_item")
        return value

    @field_validator("bundle_skus")
    @classmethod
    def _bundle_has_two(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if info.data.get("kind") is BenefitKind.BUNDLE_PRICE and len(set(value)) < 2:
            raise ValueError("a bundle needs two or more SKUs")
        return value


class StackingFile(_Section):
    """Explicit stacking (DOMAIN.md section 1): what this combines with, and in which order."""

    model_config = ConfigDict(title="Stacking")

    stacking_class: Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=64,
            description="This promotion's class, e.g. member_coupon, partner_code, "
            "receipt_coupon; other promotions name it in their combines_with.",
        ),
    ]
    exclusive: Annotated[StrictBool, Field(description="Combines with nothing at all.")] = False
    combines_with: Annotated[
        Names,
        Field(description="Classes this may combine with; both sides must name each other."),
    ] = frozenset()
    order: Annotated[
        Count,
        Field(description="Application order, lower first; later discounts apply to what is left."),
    ] = 100


class LimitsFile(_Section):
    """Use limits; a member-bound single-use code has total_uses_per_code 1."""

    model_config = ConfigDict(title="Limits")

    total_uses_per_code: Annotated[
        Count | None, Field(description="Redemptions of one code in all; null: unlimited.")
    ] = 1
    uses_per_member: Annotated[
        Count | None,
        Field(description="Redemptions of one code per member (generic codes); null: unlimited."),
    ] = None
    uses_per_transaction: Annotated[
        Count, Field(description="How many times one transaction may apply the code.")
    ] = 1
    member_velocity_count: Annotated[
        Count | None,
        Field(description="At most this many redemptions by one member per window; null: off."),
    ] = None
    member_velocity_window_s: Annotated[
        Seconds, Field(description="The rolling window of member_velocity_count, in seconds.")
    ] = 86_400


class OfflineFile(_Section):
    """How stale the store's cache may be before this campaign needs an online check."""

    model_config = ConfigDict(title="Offline")

    max_cache_age_s: Annotated[
        Seconds, Field(description="Oldest snapshot age at which codes still redeem, seconds.")
    ] = 86_400
    high_value_threshold: Annotated[
        Money | None,
        Field(description="Discounts at or above this (minor units) need fresh data; null: off."),
    ] = None
    uncapped_max_cache_age_s: Annotated[
        Seconds,
        Field(description="The shorter bound for codes with no use cap or money cap, seconds."),
    ] = 3_600


class CampaignFile(_Section):
    """A campaign: the promotion its codes unlock. Money in minor units, percent in basis points."""

    model_config = ConfigDict(title="Campaign")

    campaign_id: Annotated[
        StrictStr, Field(min_length=1, max_length=128, description="Unique campaign id.")
    ]
    name: Annotated[
        StrictStr, Field(min_length=1, max_length=200, description="Shown to cashier and member.")
    ]
    benefit: Annotated[BenefitFile, Field(description="What a code gives.")]
    stacking: Annotated[StackingFile, Field(description="What it combines with.")]
    starts_at: Annotated[Timestamp, Field(description="ISO 8601 with offset; codes work from.")]
    ends_at: Annotated[
        Timestamp,
        Field(validate_default=True, description="ISO 8601 with offset, after starts_at."),
    ]
    min_spend: Annotated[
        Money, Field(description="Minimum eligible spend, minor units; 0: none.")
    ] = 0
    min_quantity: Annotated[Count, Field(description="Minimum eligible items; 0: none.")] = 0
    eligible_skus: Annotated[
        Names, Field(description="SKUs the benefit applies to; with categories empty: all.")
    ] = frozenset()
    eligible_categories: Annotated[
        Names, Field(description="Categories the benefit applies to (or the SKUs above).")
    ] = frozenset()
    eligible_segments: Annotated[
        Names, Field(description="Member segments that may get codes; empty: every segment.")
    ] = frozenset()
    allowed_stores: Annotated[
        Names, Field(description="Stores that redeem it (and get it in snapshots); empty: all.")
    ] = frozenset()
    requires_member: Annotated[
        StrictBool, Field(description="Only for an identified member (loyalty card or app).")
    ] = False
    budget_count: Annotated[
        Count | None, Field(description="Redemptions in all, every store; null: unlimited.")
    ] = None
    budget_money: Annotated[
        Money | None, Field(description="Discount given in all, minor units; null: unlimited.")
    ] = None
    store_allocation: Annotated[
        Count | None,
        Field(description="A store's share of budget_count (HQ sets it per store); null: none."),
    ] = None
    limits: Annotated[LimitsFile, Field(description="Use limits.")] = LimitsFile()
    offline: Annotated[OfflineFile, Field(description="Offline redemption policy.")] = OfflineFile()
    active: Annotated[
        StrictBool, Field(description="false withdraws the whole campaign at every store.")
    ] = True

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        starts = info.data.get("starts_at")
        if starts is not None and value <= starts:
            raise ValueError("must be after starts_at")
        return value

    def to_promotion(self) -> Promotion:
        promotion: Promotion = _to_domain(self, Promotion)
        return promotion

    @classmethod
    def from_promotion(cls, p: Promotion) -> Self:
        return _from_domain(p, cls)


# The file and the domain name their fields alike, section by section (benefit: Benefit, ...), so
# they convert field by field, with one rule: a duration is whole seconds in a file, named with
# "_s", and a timedelta in the domain without it (member_velocity_window_s: member_velocity_window).
# A field added to both converts with no code; one added to only one side fails here (a KeyError
# or a TypeError naming it) and in tests/hq/test_campaign_file.py's round trip.
_SECONDS = "_s"


_TYPES: dict[type[Any], dict[str, Any]] = {}


def _domain_types(kind: type[Any]) -> dict[str, Any]:
    types = _TYPES.get(kind)
    if types is None:
        types = _TYPES[kind] = get_type_hints(kind)
    return types


def _domain_name(name: str, types: dict[str, Any]) -> str:
    bare = name.removesuffix(_SECONDS)
    return bare if bare != name and types.get(bare) is timedelta else name


def _to_domain(section: _Section, kind: type[Any]) -> Any:
    types = _domain_types(kind)
    values: dict[str, Any] = {}
    for name in type(section).model_fields:
        value, target = getattr(section, name), _domain_name(name, types)
        if isinstance(value, _Section):
            value = _to_domain(value, types[target])
        elif target != name:
            value = timedelta(seconds=value)
        values[target] = value
    return kind(**values)


def _from_domain(value: Any, model: type[SectionT]) -> SectionT:
    types = _domain_types(type(value))
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        source = getattr(value, _domain_name(name, types))
        if isinstance(source, timedelta):
            source = int(source.total_seconds())
        elif isinstance(info.annotation, type) and issubclass(info.annotation, _Section):
            source = _from_domain(source, info.annotation)
        values[name] = source
    # model_construct: a Promotion is already valid, and the box writes bodies often.
    return model.model_construct(**values)


def promotion_to_dict(p: Promotion) -> dict[str, Any]:
    out: dict[str, Any] = CampaignFile.from_promotion(p).model_dump(mode="json")
    return out


def promotion_from_dict(doc: object) -> Promotion:
    """Build a Promotion from its dict form; missing optional keys take their defaults."""
    try:
        return CampaignFile.model_validate(doc).to_promotion()
    except ValidationError as exc:
        raise PromotionFormatError(
            [
                f"{'.'.join(str(part) for part in err['loc']) or 'campaign'}: {err['msg']}"
                for err in exc.errors()
            ]
        ) from None


def campaign_json_schema() -> str:
    """``config/campaign.schema.json`` (``storeside-hq campaign schema`` prints it)."""
    return json.dumps(CampaignFile.model_json_schema(), indent=2, sort_keys=True) + "\n"
