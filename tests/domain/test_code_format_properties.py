"""Hypothesis: normalisation round trips; every typo and every neighbour swap is caught."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.domain.code_format import (
    ALPHABET,
    CodeFormat,
    Malformed,
    display,
    make_code,
    namespace_string,
    new_code,
    normalise,
    parse,
)

formats = st.builds(
    CodeFormat,
    prefix=st.text(alphabet="ABCDEFGHJKMNPQRSTUVWXYZ23456789", min_size=1, max_size=4),
    namespace_length=st.integers(min_value=0, max_value=3),
    random_length=st.integers(min_value=4, max_value=10),
)


@st.composite
def format_and_code(draw: st.DrawFn) -> tuple[CodeFormat, str]:
    fmt = draw(formats)
    namespace = draw(st.integers(min_value=0, max_value=fmt.namespace_count() - 1))
    body = draw(st.text(alphabet=ALPHABET, min_size=fmt.random_length, max_size=fmt.random_length))
    return fmt, make_code(fmt, namespace_string(namespace, fmt), body)


@settings(max_examples=150)
@given(format_and_code(), st.data())
def test_normalisation_round_trip(pair: tuple[CodeFormat, str], data: st.DataObject) -> None:
    fmt, code = pair
    assert parse(code, fmt) == code
    assert parse(display(code, fmt), fmt) == code
    assert parse(code.lower(), fmt) == code
    # Separators anywhere, any case: what a cashier types or a scanner sends.
    typed = "".join(
        data.draw(st.sampled_from(["", " ", "-", ".", "_"]))
        + data.draw(st.sampled_from([ch, ch.lower()]))
        for ch in code
    )
    assert normalise(typed) == code
    assert parse(typed, fmt) == code


@settings(max_examples=200)
@given(format_and_code())
def test_every_single_substitution_is_malformed(pair: tuple[CodeFormat, str]) -> None:
    fmt, code = pair
    for i, original in enumerate(code):
        for ch in ALPHABET + "01OIL":
            if ch != original:
                typo = code[:i] + ch + code[i + 1 :]
                assert isinstance(parse(typo, fmt), Malformed), typo


@settings(max_examples=300)
@given(format_and_code())
def test_every_adjacent_transposition_is_malformed(pair: tuple[CodeFormat, str]) -> None:
    fmt, code = pair
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert isinstance(parse(swapped, fmt), Malformed), swapped


@settings(max_examples=200)
@given(formats, st.data())
def test_generated_codes_parse(fmt: CodeFormat, data: st.DataObject) -> None:
    namespace = namespace_string(data.draw(st.integers(0, fmt.namespace_count() - 1)), fmt)
    code = new_code(fmt, namespace)
    assert len(code) == fmt.length
    assert parse(code, fmt) == code


@settings(max_examples=200)
@given(format_and_code(), st.integers(min_value=1, max_value=3))
def test_missing_or_extra_characters_are_malformed(pair: tuple[CodeFormat, str], n: int) -> None:
    fmt, code = pair
    assert isinstance(parse(code[:-n], fmt), Malformed)
    assert isinstance(parse(code + ALPHABET[:n], fmt), Malformed)
