"""The verdict the fault tests rest on finds each way HQ can differ from the box."""

from __future__ import annotations

from tests.faults.exactly_once import problems


def verdict(seqs: list[int], last: int, hq: list[str], tills: list[str]) -> list[str]:
    return problems(stored_seqs=seqs, last_seq=last, redeemed_at_hq=hq, committed_by_tills=tills)


def test_exact_is_clean() -> None:
    assert verdict([1, 2, 3], 3, ["A", "B"], ["B", "A"]) == []
    assert verdict([], 0, [], []) == []


def test_each_discrepancy_is_named() -> None:
    assert verdict([1, 3], 3, [], []) == ["1 seqs missing at HQ, first [2]"]
    assert verdict([1, 2, 2, 3], 3, [], []) == ["1 seqs stored more than once, first [2]"]
    assert verdict([1, 2, 3, 4], 3, [], []) == ["1 seqs the box never committed, first [4]"]
    assert verdict([1], 1, [], ["A"]) == ["1 till redemptions without one event at HQ, first ['A']"]
    assert verdict([1], 1, ["A", "A"], ["A"]) == [
        "1 redemption events at HQ no till was told of, first ['A']"
    ]


def test_all_discrepancies_at_once() -> None:
    assert len(verdict([2, 2, 9], 3, ["B"], ["A"])) == 5
