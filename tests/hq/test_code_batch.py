"""The vectorised generator agrees with the scalar code format and stays uniform and unique."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.hq import code_batch
from edge_agent.domain.code_format import ALPHABET, BASE, CodeFormat, check_symbol, parse
from tests.hq.conftest import FMT

symbols = st.text(alphabet=ALPHABET, min_size=1, max_size=code_batch.MAX_RANDOM_LENGTH)


@settings(max_examples=300, deadline=None)
@given(namespace=st.text(alphabet=ALPHABET, max_size=4), payloads=st.lists(symbols, min_size=1))
def test_vectorised_check_equals_scalar_check(namespace: str, payloads: list[str]) -> None:
    width = len(payloads[0])
    payloads = [(p * width)[:width] for p in payloads]  # one width per batch, as when minting
    matrix = np.array([[ALPHABET.index(c) for c in p] for p in payloads], dtype=np.uint8)
    got = [ALPHABET[v] for v in code_batch.check_values(namespace, matrix)]
    assert got == [check_symbol(namespace + p) for p in payloads]


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from(["SS", "FNDL", "X9"]),
    namespace_length=st.integers(0, 3),
    random_length=st.integers(4, 8),
    data=st.data(),
)
def test_encoded_codes_parse_and_decode_back(
    prefix: str, namespace_length: int, random_length: int, data: st.DataObject
) -> None:
    fmt = CodeFormat(prefix=prefix, namespace_length=namespace_length, random_length=random_length)
    namespace = data.draw(st.text(ALPHABET, min_size=namespace_length, max_size=namespace_length))
    space = BASE**random_length
    values = sorted(data.draw(st.sets(st.integers(0, space - 1), min_size=1, max_size=50)))
    codes = code_batch.to_strings(code_batch.encode(fmt, namespace, np.array(values)))
    assert codes == sorted(codes)  # value order is code order
    assert all(parse(c, fmt) == c for c in codes)
    assert all(c.startswith(prefix + namespace) for c in codes)
    decoded = code_batch.decode(fmt, namespace, "".join(codes))
    assert decoded.tolist() == values


def test_decode_ignores_other_namespaces_and_bad_check_characters() -> None:
    good = code_batch.to_strings(code_batch.encode(FMT, "K7", np.array([5, 99])))
    other = code_batch.to_strings(code_batch.encode(FMT, "K8", np.array([7])))
    broken = good[0][:-1] + ("2" if good[0][-1] != "2" else "3")
    decoded = code_batch.decode(FMT, "K7", "".join([*good, *other, broken]))
    assert decoded.tolist() == [5, 99]


def test_symbols_are_uniform_over_the_alphabet() -> None:
    drawn = code_batch.random_symbols(1_000_000)
    assert drawn.max() < BASE
    counts = np.bincount(drawn, minlength=BASE)
    expected = len(drawn) / BASE
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    # 30 degrees of freedom: mean 30, sd ~7.7. 90 is ~p=1e-7 for a fair source; a biased
    # mapping (e.g. plain byte % 31: values 0..7 over-represented by 1/8) scores in the thousands.
    assert chi_square < 90, chi_square


def test_every_position_of_minted_values_is_uniform() -> None:
    values = code_batch.random_values(200_000, 6)
    digits = code_batch.values_to_symbols(values, 6)
    expected = len(values) / BASE
    for position in range(6):
        counts = np.bincount(digits[:, position], minlength=BASE)
        assert float(((counts - expected) ** 2 / expected).sum()) < 90


def test_draw_unique_tops_up_duplicates_until_the_space_is_exhausted() -> None:
    # 31 values from a space of 31: duplicates are certain, the result must be all of them.
    draw = code_batch.draw_unique(31, 1)
    assert draw.values.tolist() == list(range(31))
    assert draw.duplicates > 0


def test_draw_unique_avoids_taken_values() -> None:
    taken = np.arange(0, BASE**2, 2, dtype=np.int64)  # every even value of 961
    draw = code_batch.draw_unique(BASE**2 - len(taken), 2, taken)
    assert draw.values.tolist() == list(range(1, BASE**2, 2))
    assert draw.collisions > 0


def test_draw_unique_is_sorted_and_distinct() -> None:
    draw = code_batch.draw_unique(20_000, 3)  # 29,791 values: many duplicate draws
    assert len(draw.values) == 20_000
    assert (np.diff(draw.values) > 0).all()
    assert draw.duplicates > 0


def test_draw_unique_refuses_more_than_the_space_holds() -> None:
    with pytest.raises(ValueError, match="cannot draw"):
        code_batch.draw_unique(30, 1, np.array([0, 1], dtype=np.int64))


def test_random_permutation_is_a_permutation() -> None:
    perm = code_batch.random_permutation(10_000)
    assert sorted(perm.tolist()) == list(range(10_000))
    assert perm.tolist() != list(range(10_000))
