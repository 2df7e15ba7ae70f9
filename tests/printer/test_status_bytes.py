"""DLE EOT status decoding: every flag combination round-trips; arbitrary bytes never crash."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.printing.printer_port import (
    StatusFormatError,
    decode_status,
    stray_status_answers,
)
from hardware.printer.sim_printer import status_bytes

FLAGS = ("online", "cover_open", "paper_out", "paper_near_end", "cutter_error")


@pytest.mark.parametrize("values", list(itertools.product((False, True), repeat=len(FLAGS))))
def test_every_state_round_trips(values: tuple[bool, ...]) -> None:
    state = dict(zip(FLAGS, values, strict=True))
    status = decode_status(status_bytes(**state))
    assert status.cover_open == state["cover_open"]
    assert status.paper_out == state["paper_out"]
    assert status.paper_near_end == state["paper_near_end"]
    assert status.cutter_error == state["cutter_error"]
    offline = not state["online"] or state["cover_open"] or state["paper_out"]
    assert status.online == (not offline and not state["cutter_error"])
    assert status.ready == (state["online"] and not any(values[1:3]) and not values[4])


@settings(max_examples=300)
@given(st.binary(min_size=0, max_size=6))
def test_decoding_arbitrary_bytes_returns_or_refuses(data: bytes) -> None:
    try:
        decode_status(data)
    except StatusFormatError:
        assert len(data) != 4 or any(b & 0x93 != 0x12 for b in data)


def test_stray_answers_are_counted_like_a_printer_would_answer() -> None:
    assert stray_status_answers(b"") == 0
    assert stray_status_answers(b"\x10\x04\x01abc\x10\x04\x04") == 2
    assert stray_status_answers(b"\x10\x04\x05\x10\x04") == 0
    assert stray_status_answers(b"\x10\x04\x10\x04\x02") == 1
