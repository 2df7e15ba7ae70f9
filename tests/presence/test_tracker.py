"""The presence tracker: enter/dwell/exit, hysteresis, quiet devices, refusals, latency."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edge_agent.presence.smoothing import crossing_delay_s
from edge_agent.presence.tracker import (
    Dropped,
    DropReason,
    Dwelled,
    Entered,
    Exited,
    ExitReason,
    PresenceEvent,
    PresenceTracker,
    Sighting,
)
from edge_agent.presence.zones import TrackerConfig, ZoneSpec

COFFEE = ZoneSpec(
    zone_id="coffee", sources=frozenset({"scan-c1", "scan-c2"}), dwell_marks_s=(10.0, 30.0)
)
ENTRANCE = ZoneSpec(zone_id="entrance", sources=frozenset({"scan-e"}), quiet_s=5.0)
CONFIG = TrackerConfig(zones=(COFFEE, ENTRANCE))
TICK = 0.25


def seen(identity: str, rssi: int, at: float, source: str = "scan-c1") -> Sighting:
    return Sighting(identity=identity, source=source, rssi=rssi, at=at)


def run(
    tracker: PresenceTracker, rssi_at: list[tuple[float, int]], *, until: float, who: str = "M-1"
) -> list[PresenceEvent]:
    """Feed (time, rssi) sightings and tick every TICK seconds until ``until``."""
    out: list[PresenceEvent] = []
    pending = sorted(rssi_at)
    now = 0.0
    while now <= until + 1e-9:
        while pending and pending[0][0] <= now + 1e-9:
            at, rssi = pending.pop(0)
            result = tracker.observe(seen(who, rssi, at))
            assert not isinstance(result, Dropped)
            out.extend(result)
        out.extend(tracker.tick(now))
        now = round(now + TICK, 9)
    return out


def steady(rssi: int, start: float, end: float, hz: float) -> list[tuple[float, int]]:
    n = int((end - start) * hz)
    return [(start + i / hz, rssi) for i in range(n)]


def test_a_member_enters_dwells_and_leaves_by_signal() -> None:
    tracker = PresenceTracker(CONFIG)
    trace = steady(-90, 0, 5, 2) + steady(-50, 5, 50, 2) + steady(-95, 50, 60, 2)
    events = run(tracker, trace, until=60)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Entered", "Dwelled", "Dwelled", "Exited"]
    entered, d10, d30, exited = events
    assert isinstance(entered, Entered) and 5 < entered.at < 8
    assert isinstance(d10, Dwelled) and d10.mark_s == 10 and d10.dwell_s >= 10
    assert isinstance(d30, Dwelled) and d30.mark_s == 30
    assert d10.at - entered.at <= 10.5 and d30.at - entered.at <= 30.5  # one sighting at 2 Hz
    assert isinstance(exited, Exited) and exited.why is ExitReason.SIGNAL
    assert 50 < exited.at < 53
    assert exited.dwell_s == pytest.approx(exited.at - entered.at)
    assert tracker.present()["coffee"] == frozenset()


def test_one_loud_advertisement_enters_nobody() -> None:
    tracker = PresenceTracker(CONFIG)
    assert run(tracker, [(1.0, -40)], until=20) == []
    assert len(tracker) == 0  # forgotten once quiet


def test_a_quiet_device_exits_at_a_tick_and_is_forgotten() -> None:
    tracker = PresenceTracker(CONFIG)
    events = run(tracker, steady(-50, 0, 4, 5), until=30)
    entered, exited = events
    assert isinstance(entered, Entered) and isinstance(exited, Exited)
    assert exited.why is ExitReason.QUIET
    last = 4 - 1 / 5
    assert last + COFFEE.quiet_s <= exited.at <= last + COFFEE.quiet_s + TICK
    assert exited.dwell_s == pytest.approx(last - entered.at)  # the stay ended when last heard
    assert len(tracker) == 0


def test_forget_closes_every_zone_of_an_identity() -> None:
    tracker = PresenceTracker(CONFIG)
    for i in range(5):
        for source in ("scan-c1", "scan-e"):
            tracker.observe(seen("M-1", -50, i * 0.2, source))
        tracker.observe(seen("M-2", -50, i * 0.2))
    tracker.tick(1.0)
    assert tracker.present() == {"coffee": {"M-1", "M-2"}, "entrance": {"M-1"}}
    exits = tracker.forget("M-1", 1.1)
    assert {(e.zone, e.why) for e in exits} == {
        ("coffee", ExitReason.FORGOTTEN),
        ("entrance", ExitReason.FORGOTTEN),
    }
    assert tracker.present() == {"coffee": {"M-2"}, "entrance": frozenset()}


@pytest.mark.parametrize(
    ("sighting", "reason"),
    [
        (seen("M-1", -50, 0, source="scan-unknown"), DropReason.UNKNOWN_SOURCE),
        (seen("M-1", 127, 0), DropReason.BAD_RSSI),  # HCI's "RSSI not available"
        (seen("M-1", -128, 0), DropReason.BAD_RSSI),
        (seen("M-1", 21, 0), DropReason.BAD_RSSI),
        (seen("M-1", -50, math.nan), DropReason.BAD_TIME),
        (seen("M-1", -50, math.inf), DropReason.BAD_TIME),
        (seen("", -50, 0), DropReason.NO_IDENTITY),
    ],
)
def test_bad_sightings_are_refused_with_a_reason(sighting: Sighting, reason: DropReason) -> None:
    tracker = PresenceTracker(CONFIG)
    assert tracker.observe(sighting) == Dropped(reason)
    assert len(tracker) == 0


def test_the_track_cap_refuses_new_devices_and_keeps_the_present_ones() -> None:
    tracker = PresenceTracker(TrackerConfig(zones=(COFFEE,), max_tracks=3))
    for who in ("A", "B", "C"):
        assert tracker.observe(seen(who, -50, 0)) == ()
    assert tracker.observe(seen("D", -50, 0)) == Dropped(DropReason.CAPACITY)
    assert tracker.observe(seen("A", -50, 1)) != Dropped(DropReason.CAPACITY)
    tracker.tick(100)  # all quiet: room again
    assert tracker.observe(seen("D", -50, 100)) == ()


def test_reordered_sightings_from_two_scanners_do_not_break_the_clock() -> None:
    tracker = PresenceTracker(CONFIG)
    tracker.observe(seen("M-1", -50, 1.0, "scan-c1"))
    tracker.observe(seen("M-1", -50, 0.9, "scan-c2"))  # delivered late
    events = tracker.tick(1.6)
    assert [type(e) for e in events] == [Entered]


@pytest.mark.parametrize("hz", [0.8, 1, 2, 10])  # 0.8: a slow phone, sightings 1.25 s apart
@pytest.mark.parametrize("direction", ["enter", "exit"])
def test_decided_within_a_second_of_the_smoothed_crossing(hz: float, direction: str) -> None:
    # Simulated time: the sighting at which the smoothed value crosses the threshold is found
    # by replaying the same EWMA; the event must come at most 1 s later.
    tracker = PresenceTracker(CONFIG)
    low, high = -95, -50
    if direction == "enter":
        trace = steady(low, 0, 10, hz) + steady(high, 10, 30, hz)
        threshold, step_at = COFFEE.enter_dbm, 10.0
    else:
        trace = steady(high, 0, 10, hz) + steady(low, 10, 30, hz)
        threshold, step_at = COFFEE.exit_dbm, 10.0
    events = run(tracker, trace, until=30)
    wanted = Entered if direction == "enter" else Exited
    event = next(e for e in events if isinstance(e, wanted) and e.at > step_at)
    smoothed, crossed, last = float(trace[0][1]), None, trace[0][0]
    for at, rssi in trace[1:]:
        smoothed += (1 - math.exp(-max(at - last, 0.02) / CONFIG.time_constant_s)) * (
            rssi - smoothed
        )
        last = at
        if at >= step_at and (
            smoothed >= threshold if direction == "enter" else smoothed < threshold
        ):
            crossed = at
            break
    assert crossed is not None
    assert 0 <= event.at - crossed <= 1.0, (hz, direction, crossed, event)


def test_crossing_delay_of_a_step() -> None:
    # -90 -> -50 crosses -65 after tau * ln(40/15).
    assert crossing_delay_s(start=-90, target=-50, threshold=-65, tau_s=1.0) == pytest.approx(
        math.log(40 / 15)
    )
    assert crossing_delay_s(start=-90, target=-70, threshold=-65, tau_s=1.0) == math.inf


# -- properties ----------------------------------------------------------------------------------

BETWEEN = st.integers(min_value=int(COFFEE.exit_dbm) + 1, max_value=int(COFFEE.enter_dbm) - 1)
GAPS = st.floats(min_value=0.05, max_value=1.5)


def feed(
    tracker: PresenceTracker, steps: list[tuple[float, int]], *, start: float
) -> list[PresenceEvent]:
    """Sightings after the given gaps, with the agent's ticks every TICK in between."""
    at, next_tick, events = start, start, []
    for gap, rssi in steps:
        at += gap
        while next_tick < at:
            events += tracker.tick(next_tick)
            next_tick += TICK
        result = tracker.observe(seen("M-1", rssi, at))
        assert not isinstance(result, Dropped)
        events += result
    return events


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(GAPS, BETWEEN), min_size=1, max_size=60))
def test_a_signal_between_the_thresholds_never_enters(steps: list[tuple[float, int]]) -> None:
    tracker = PresenceTracker(CONFIG)
    assert feed(tracker, steps, start=0.0) == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(GAPS, BETWEEN), min_size=1, max_size=60))
def test_a_signal_between_the_thresholds_never_exits(steps: list[tuple[float, int]]) -> None:
    tracker = PresenceTracker(CONFIG)
    entered = run(tracker, steady(-50, 0, 3, 4), until=2.9)
    assert [type(e) for e in entered] == [Entered]
    events = feed(tracker, steps, start=3.0)
    assert [e for e in events if not isinstance(e, Dwelled)] == []  # no flapping: never out


sightings = st.tuples(
    st.sampled_from(["A", "B", "C"]),
    st.sampled_from(["scan-c1", "scan-c2", "scan-e"]),
    st.integers(min_value=-110, max_value=-30),
    st.floats(min_value=0.0, max_value=3.0),
)


class TrackerMachine(RuleBasedStateMachine):
    """Random sightings, ticks and forgets; the event stream must stay well formed."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = PresenceTracker(CONFIG)
        self.now = 0.0
        self.inside: set[tuple[str, str]] = set()
        self.marks: dict[tuple[str, str], list[float]] = {}

    def _apply(self, events: tuple[PresenceEvent, ...]) -> None:
        for event in events:
            key = (event.identity, event.zone)
            if isinstance(event, Entered):
                assert key not in self.inside, "entered twice without an exit"
                self.inside.add(key)
                self.marks[key] = []
            elif isinstance(event, Exited):
                assert key in self.inside, "an exit without an enter"
                assert event.dwell_s >= 0
                self.inside.discard(key)
            else:
                assert key in self.inside, "a dwell outside a stay"
                assert event.dwell_s >= event.mark_s - 1e-6
                assert event.mark_s not in self.marks[key], "a dwell mark twice in one stay"
                self.marks[key].append(event.mark_s)

    @rule(s=sightings)
    def observe(self, s: tuple[str, str, int, float]) -> None:
        who, source, rssi, gap = s
        self.now += gap
        result = self.tracker.observe(seen(who, rssi, self.now, source))
        assert not isinstance(result, Dropped)
        self._apply(result)

    @rule(gap=st.floats(min_value=0.0, max_value=4.0))
    def tick(self, gap: float) -> None:
        self.now += gap
        self._apply(self.tracker.tick(self.now))

    @precondition(lambda self: bool(self.inside))
    @rule(data=st.data())
    def forget(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from(sorted({k[0] for k in self.inside})))
        exits = self.tracker.forget(who, self.now)
        assert all(e.why is ExitReason.FORGOTTEN for e in exits)
        self._apply(exits)
        assert not any(k[0] == who for k in self.inside)

    @invariant()
    def present_matches_the_events(self) -> None:
        present = {(who, zone) for zone, ids in self.tracker.present().items() for who in ids}
        assert present == self.inside

    def teardown(self) -> None:
        # Quiet devices always exit: after every zone's quiet_s with no sighting, nobody is in
        # and nothing is remembered.
        self._apply(self.tracker.tick(self.now + max(z.quiet_s for z in CONFIG.zones)))
        assert self.inside == set()
        assert len(self.tracker) == 0


TestTrackerMachine = TrackerMachine.TestCase
TestTrackerMachine.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
