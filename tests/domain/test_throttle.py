"""The per-till throttle is pure: feed it refusals and times, read back blocks and flags."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edge_agent.domain.decision import Reason
from edge_agent.domain.throttle import ThrottleConfig, TillThrottle
from tests.cache.factories import NOW

CONFIG = ThrottleConfig(max_failures=3, window=timedelta(seconds=60), cooldown=timedelta(minutes=5))


def test_blocks_after_n_failures_in_the_window_and_flags_once() -> None:
    t = TillThrottle(config=CONFIG)
    assert t.record_failures("till-1", [Reason.NOT_FOUND], NOW) is None
    assert t.record_failures("till-1", [Reason.MALFORMED], NOW + timedelta(seconds=10)) is None
    flag = t.record_failures("till-1", [Reason.WRONG_MEMBER], NOW + timedelta(seconds=20))
    assert flag is not None
    assert flag.failures == 3
    assert flag.since == NOW
    assert flag.blocked_until == NOW + timedelta(seconds=20, minutes=5)
    assert t.blocked_until("till-1", NOW + timedelta(seconds=30)) == flag.blocked_until
    assert t.blocked_until("till-2", NOW + timedelta(seconds=30)) is None  # per till
    # Further failures during the block raise no second flag.
    for s in range(3):
        assert (
            t.record_failures("till-1", [Reason.NOT_FOUND], NOW + timedelta(seconds=40 + s)) is None
        )
    assert t.blocked_until("till-1", flag.blocked_until) is None  # cool-down over


def test_failures_outside_the_window_do_not_add_up() -> None:
    t = TillThrottle(config=CONFIG)
    for minute in range(10):
        at = NOW + timedelta(minutes=minute)
        assert t.record_failures("till-1", [Reason.NOT_FOUND, Reason.MALFORMED], at) is None
        assert t.blocked_until("till-1", at) is None


def test_honest_refusals_do_not_count() -> None:
    t = TillThrottle(config=CONFIG)
    honest = [Reason.MIN_SPEND_NOT_MET, Reason.EXPIRED, Reason.ALREADY_REDEEMED] * 5
    assert t.record_failures("till-1", honest, NOW) is None
    assert t.blocked_until("till-1", NOW) is None


def test_one_request_with_many_guesses_can_trip_it() -> None:
    t = TillThrottle(config=CONFIG)
    assert t.record_failures("till-1", [Reason.NOT_FOUND] * 3, NOW) is not None


def test_forget_idle_drops_quiet_tills_only() -> None:
    t = TillThrottle(config=CONFIG)
    t.record_failures("quiet", [Reason.NOT_FOUND], NOW)
    t.record_failures("blocked", [Reason.NOT_FOUND] * 3, NOW)
    t.forget_idle(NOW + timedelta(minutes=2))
    assert set(t._tills) == {"blocked"}


def test_config_is_bounded() -> None:
    with pytest.raises(ValueError):
        ThrottleConfig(max_failures=0)
    with pytest.raises(ValueError):
        ThrottleConfig(window=timedelta(0))


def test_carry_over_keeps_counted_failures_and_rebases_blocks_on_the_new_cooldown() -> None:
    old = TillThrottle(config=CONFIG)
    for s in range(3):
        old.record_failures("blocked", [Reason.NOT_FOUND], NOW + timedelta(seconds=s))
    old.record_failures("counting", [Reason.NOT_FOUND], NOW)
    shorter = ThrottleConfig(max_failures=2, window=CONFIG.window, cooldown=timedelta(minutes=1))
    new = TillThrottle(config=shorter)
    new.carry_over(old)
    # The block began at NOW+2s and now lasts the new cooldown from then.
    assert new.blocked_until("blocked", NOW) == NOW + timedelta(seconds=2, minutes=1)
    # One failure before the change plus one after reach the new limit of two.
    flag = new.record_failures("counting", [Reason.MALFORMED], NOW + timedelta(seconds=5))
    assert flag is not None and flag.since == NOW
    assert old.blocked_until("counting", NOW + timedelta(seconds=5)) is None  # old one untouched
