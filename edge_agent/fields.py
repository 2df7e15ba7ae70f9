"""One definition of each id and field the agent accepts from outside, used by every entry.

The POS API's bodies and path parameters (``edge_agent.api``) and the ``edge-agent`` command line
import these same ``Annotated`` types, so a value one of them refuses the other refuses too: a
transaction id with a space, an empty SKU, a quantity over the maximum. The bounds are there so
that a buggy or hostile caller cannot make the agent store or compute without limit.

The types carry constraints, not strictness: the API's bodies are validated in strict mode
(``"quantity": true`` or ``"2"`` is refused, not coerced; ``2.0`` is the JSON number 2), while
the CLI, whose arguments are always text, validates them with :func:`check` in lax mode
(``--amount 100`` is the int 100).

This module is not in ``edge_agent.domain`` because the domain stays free of pydantic's
validation layer; it holds no logic beyond the definitions.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError

ID_PATTERN: Final = r"^[A-Za-z0-9._:@/-]+$"
ID_MAX_LENGTH: Final = 64
RAW_CODE_MAX_LENGTH: Final = 256
MAX_QUANTITY: Final = 10_000
MAX_MINOR_UNITS: Final = 100_000_000  # one million in a two-decimal currency

# Transaction, cashier, member, till, return and SKU ids: printable, no spaces.
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]
# Up to 256: a scanned receipt QR carries a signed token (~150 characters), not just a code.
RawCode = Annotated[str, Field(min_length=1, max_length=RAW_CODE_MAX_LENGTH)]
Category = Annotated[str, Field(min_length=1, max_length=64)]


def _whole(value: object) -> object:
    # JSON has one number type and JSON Schema's "integer" is any number without a fraction,
    # so 2.0 is the integer 2 (as the OpenAPI document promises); 2.5, true and "2" are not.
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SAFE_FLOAT_INT:
        return int(value)
    return value


MAX_SAFE_FLOAT_INT: Final = 2**53  # past this a float no longer holds every integer
_WHOLE = BeforeValidator(_whole)  # after the bounds, so they stay in the JSON schema
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY), _WHOLE]
MinorUnits = Annotated[int, Field(ge=0, le=MAX_MINOR_UNITS, description="Minor units."), _WHOLE]
PositiveMinorUnits = Annotated[
    int, Field(ge=1, le=MAX_MINOR_UNITS, description="Minor units."), _WHOLE
]
MarginBand = Literal["A", "B", "C"]
MAX_POINTS: Final = 1_000_000_000
Points = Annotated[int, Field(ge=0, le=MAX_POINTS, description="Points."), _WHOLE]
MAX_LINES: Final = 500  # a basket's lines (the POS API's bound)
LineIndex = Annotated[
    int, Field(ge=0, lt=MAX_LINES, description="Position in the sale's basket."), _WHOLE
]
PromotionName = Annotated[str, Field(min_length=1, max_length=80)]
StackingClass = Annotated[str, Field(min_length=1, max_length=40)]

_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


class FieldError(ValueError):
    """A value outside its field's definition; the message names what is wrong."""


def check(kind: Any, value: object, *, name: str) -> Any:
    """``value`` validated (lax, so text converts to numbers) as ``kind``, or a FieldError
    naming ``name`` with pydantic's reason."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]) for e in exc.errors())
        raise FieldError(f"{name} {value!r}: {reasons}") from None
