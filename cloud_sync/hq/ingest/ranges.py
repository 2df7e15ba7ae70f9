"""The holes an ack names: what HQ is missing between its stored stream and what it parked.

HQ holds a box's events 1..stored_through and, beyond a hole, parked batches it cannot store
yet. The ack's ``missing`` ranges are the seqs between ``stored_through`` and the last parked
seq that no parked batch covers: what the box should send first. Anything above the last
parked batch HQ has simply not seen yet, so it is not named. The list is the contract's
canonical form (ascending, a gap between neighbours, ``ack.MAX_RANGES`` at most: the lowest
holes, which the box must fill first anyway).
"""

from __future__ import annotations

from collections.abc import Iterable

from cloud_sync.contract.ack import MAX_RANGES, SeqRange


def missing_ranges(stored_through: int, parked: Iterable[tuple[int, int]]) -> tuple[SeqRange, ...]:
    """The holes above ``stored_through`` below the parked ``(first, last)`` runs."""
    holes: list[SeqRange] = []
    covered = stored_through  # every seq up to here is stored or parked
    for first, last in sorted(parked):
        if first > covered + 1:
            holes.append(SeqRange(first=covered + 1, last=first - 1))
            if len(holes) == MAX_RANGES:
                break
        covered = max(covered, last)
    return tuple(holes)
