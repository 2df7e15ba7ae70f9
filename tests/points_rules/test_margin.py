"""Margin bands from a cost or from the POS's band, and the discount a floor allows."""

from __future__ import annotations

import pytest

from edge_agent.domain.points_rules.margin import (
    MarginBand,
    MarginBands,
    assess,
    margin_bp,
    max_discount,
)
from tests.points_rules.factories import banded, costed

BANDS = MarginBands()


@pytest.mark.parametrize(
    ("price", "cost", "band"),
    [
        (1000, 550, MarginBand.A),  # exactly 45%: A (>=)
        (1000, 551, MarginBand.B),  # 44.9%
        (1000, 849, MarginBand.B),  # 15.1%
        (1000, 850, MarginBand.C),  # exactly 15%: C (<=)
        (1000, 1200, MarginBand.C),  # sold at a loss
        (0, 0, MarginBand.C),  # free line: no margin to speak of
    ],
)
def test_band_follows_the_cost(price: int, cost: int, band: MarginBand) -> None:
    line = costed("x", price, cost, quantity=3)
    assert assess(line, BANDS).band is band
    assert assess(line, BANDS).cost_known


def test_cost_wins_over_the_band_the_pos_sent() -> None:
    line = banded("x", 1000, "C")
    with_cost = costed("x", 1000, 100)
    assert assess(line, BANDS).band is MarginBand.C
    assert assess(with_cost, BANDS).band is MarginBand.A


def test_without_cost_the_band_is_trusted_at_its_worst_margin() -> None:
    assert assess(banded("x", 1000, "A"), BANDS).margin_bp == 4500
    assert assess(banded("x", 1000, "B"), BANDS).margin_bp == 1500
    assert assess(banded("x", 1000, "C"), BANDS).margin_bp is None


def test_unknown_band_label_and_negative_cost_are_read_safely() -> None:
    assert assess(banded("x", 1000, "D"), BANDS).band is MarginBand.C
    negative = costed("x", 1000, -5)
    assert not assess(negative, BANDS).cost_known


def test_thresholds_are_configurable_and_checked() -> None:
    bands = MarginBands(a_min_bp=3000, c_max_bp=500)
    assert bands.band_of(3000) is MarginBand.A
    assert bands.band_of(501) is MarginBand.B
    with pytest.raises(ValueError, match="c_max_bp"):
        MarginBands(a_min_bp=1000, c_max_bp=1000)


def test_margin_rounds_towards_the_worse_margin() -> None:
    assert margin_bp(3, 1) == 6666  # 66.67% floored
    assert margin_bp(3, 4) == -3334  # a loss floors further down


def test_max_discount_lands_exactly_on_the_floor() -> None:
    line = costed("x", 1000, 800, quantity=2)  # total 2000, cost 1600, margin 20%
    margin = assess(line, BANDS)
    d = max_discount(line, margin, 1000)  # keep 10%: net >= 1600 / 0.9 = 1777.8 -> 1778
    assert d == 222
    net = 2000 - d
    assert (net - 1600) * 10_000 >= 1000 * net  # at the floor...
    assert (net - 1 - 1600) * 10_000 < 1000 * (net - 1)  # ...and one more cent breaks it


def test_unknown_margin_allows_no_discount_and_bad_floor_is_refused() -> None:
    line = banded("x", 1000, "C")
    assert max_discount(line, assess(line, BANDS), 0) == 0
    with pytest.raises(ValueError, match="floor"):
        max_discount(line, assess(line, BANDS), 10_000)
