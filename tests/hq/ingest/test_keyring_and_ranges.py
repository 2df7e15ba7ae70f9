"""The pure parts of ingest: the keyring's rate-limited reload and the ack's missing ranges."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.contract.ack import MAX_RANGES, SeqRange
from cloud_sync.hq.ingest.keyring import Keyring, central_keys
from cloud_sync.hq.ingest.ranges import missing_ranges
from cloud_sync.hq.store_keys import StoreKey
from tests.hq.ingest.builders import (
    KEY,
    OTHER_KEY,
)
from tests.sync.test_batch_signing import registered


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_unknown_key_id_reloads_at_most_once_per_interval() -> None:
    known: list[StoreKey] = [registered(KEY)]
    clock = Clock()
    ring = Keyring(lambda: list(known), min_reload_s=5.0, clock=clock)
    other = registered(OTHER_KEY)
    known.append(other)
    clock.now += 4.9
    assert other not in ring.keys_for(other.key_id)  # too soon: no reload
    assert ring.reloads == 0
    clock.now += 0.1
    assert other in ring.keys_for(other.key_id)
    assert ring.keys_for(registered(KEY).key_id)  # a known id never reloads
    assert ring.reloads == 1


def test_a_reload_that_fails_keeps_the_keys_held(central_file: Path) -> None:
    clock = Clock()
    ring = Keyring(central_keys(central_file), clock=clock)
    central_file.unlink()  # moved away by an operator
    clock.now += 60
    assert ring.keys_for("00000000") == (registered(KEY),)
    assert ring.reloads == 1


def test_keys_load_from_the_central_store_file(central_file: Path) -> None:
    # central_file: store-001's key registered with `keys register`'s code (conftest.py)
    (key,) = central_keys(central_file)()
    assert key == registered(KEY)


def test_the_holes_below_parked_batches() -> None:
    parked = [(21, 30), (11, 12), (41, 50), (25, 35)]
    assert missing_ranges(8, parked) == (
        SeqRange(first=9, last=10),
        SeqRange(first=13, last=20),
        SeqRange(first=36, last=40),
    )
    assert missing_ranges(12, [(5, 12), (13, 20)]) == ()


@given(st.integers(0, 50), st.lists(st.tuples(st.integers(1, 400), st.integers(0, 20))))
def test_holes_are_exactly_the_unparked_seqs_below_the_last_parked(
    through: int, runs: list[tuple[int, int]]
) -> None:
    parked = [(first, first + length) for first, length in runs]
    holes = missing_ranges(through, parked)
    covered = {s for f, la in parked for s in range(f, la + 1)}
    top = max((la for _, la in parked), default=0)
    expected = [s for s in range(through + 1, top + 1) if s not in covered]
    named = [s for r in holes for s in range(r.first, r.last + 1)]
    assert len(holes) <= MAX_RANGES
    if len(holes) < MAX_RANGES:
        assert named == expected
    else:
        assert named == expected[: len(named)]
    assert all(a.last + 1 < b.first for a, b in pairwise(holes))
