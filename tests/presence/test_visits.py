"""Store visits from presence events: one visit across zones and short gaps."""

from __future__ import annotations

from edge_agent.presence.tracker import Entered, Exited, ExitReason
from edge_agent.presence.visits import VisitBook


def entered(zone: str, at: float) -> Entered:
    return Entered(identity="M-1", zone=zone, at=at, rssi=-50.0)


def exited(zone: str, at: float) -> Exited:
    return Exited(identity="M-1", zone=zone, at=at, dwell_s=1.0, why=ExitReason.SIGNAL)


def test_a_visit_spans_zones_and_short_gaps_and_ends_after_the_gap() -> None:
    book = VisitBook(gap_s=600)
    assert book.observe(entered("entrance", 0)) is True
    assert book.observe(entered("coffee", 30)) is False
    book.observe(exited("entrance", 40))
    book.observe(exited("coffee", 100))
    assert book.started_at("M-1", 500) == 0  # out of every zone, but within the gap
    assert book.observe(entered("coffee", 650)) is False  # back within 600 s: same visit
    book.observe(exited("coffee", 700))
    assert book.started_at("M-1", 1300) is None
    assert book.observe(entered("coffee", 1400)) is True  # a new visit
    assert book.started_at("M-1", 1401) == 1400


def test_prune_forgets_ended_visits_only() -> None:
    book = VisitBook(gap_s=60)
    book.observe(entered("coffee", 0))
    book.observe(Entered(identity="M-2", zone="coffee", at=0, rssi=-50.0))
    book.observe(exited("coffee", 10))
    assert book.prune(100) == 1
    assert book.started_at("M-2", 100) == 0
