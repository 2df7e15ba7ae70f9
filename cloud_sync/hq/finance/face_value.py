"""What a point is worth: ``points_per_unit`` points make one currency unit of
``minor_per_unit`` minor units (default 100 points = 1 unit = 100 minor units, a cent a
point). Money is integers of minor units; a value that falls between two minor units is
rounded half to even, so summing many rounded values does not drift one way."""

from __future__ import annotations

from dataclasses import dataclass


def rounded_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half to even, in integers (denominator > 0)."""
    q, r = divmod(numerator, denominator)
    if 2 * r > denominator or (2 * r == denominator and q % 2 == 1):
        q += 1
    return q


@dataclass(frozen=True, slots=True, kw_only=True)
class FaceValue:
    points_per_unit: int = 100
    minor_per_unit: int = 100

    def __post_init__(self) -> None:
        for name in ("points_per_unit", "minor_per_unit"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ValueError(f"{name} must be a whole number above 0, not {value!r}")

    def minor(self, points: int) -> int:
        """The face value of ``points`` in minor units."""
        return rounded_div(points * self.minor_per_unit, self.points_per_unit)
