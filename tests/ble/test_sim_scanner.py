"""The twin's scenario files: parsed strictly (every error at once), replayed with virtual time."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.presence.ble_port import Phase
from hardware.ble.sim_scanner import (
    ScenarioError,
    SimAdvert,
    SimBeaconScanner,
    SimEvent,
    load_scenario,
)
from tests.ble.harness import keep_all
from tests.ble.test_scanner_contract import EDDYSTONE, EDDYSTONE_UID, IBEACON

pytestmark = pytest.mark.timeout(30)

_SVC = {EDDYSTONE: EDDYSTONE_UID.hex()}
SCENARIO = "\n".join(
    [
        "# a member walks to the coffee beacon; the dongle is unplugged for a while",
        json.dumps({"t": 0, "device": "anna-phone", "rssi": -82, "service_data": _SVC}),
        json.dumps(
            {
                "t": 1.5,
                "device": "coffee-tag",
                "rssi": -60,
                "manufacturer_data": {"0x004c": IBEACON.hex()},
                "tx_power": -59,
            }
        ),
        "",
        json.dumps({"t": 2.0, "device": "anna-phone", "rssi": -70, "service_data": _SVC}),
        json.dumps({"t": 3.0, "event": "adapter_removed"}),
        json.dumps({"t": 4.0, "device": "anna-phone", "rssi": -65}),
        json.dumps({"t": 5.0, "event": "adapter_added"}),
        json.dumps(
            {
                "t": 100,
                "device": "coffee-tag",
                "rssi": -61,
                "manufacturer_data": {"76": IBEACON.hex()},
            }
        ),
    ]
)


def test_a_scenario_replays_in_virtual_time() -> None:
    steps = load_scenario(SCENARIO.splitlines())
    assert len(steps) == 7
    assert isinstance(steps[3], SimEvent) and isinstance(steps[1], SimAdvert)
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    async def main() -> None:
        clock = iter(range(1000, 10**6)).__next__
        twin = SimBeaconScanner(
            keep=keep_all,
            scenario=steps,
            sleep=fake_sleep,
            watchdog_s=30.0,
            settle_s=1.0,
            clock=lambda: float(clock()),
        )
        task = asyncio.create_task(twin.run())
        got = [await asyncio.wait_for(twin.adverts.get(), 5) for _ in range(4)]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert [a.rssi for a in got] == [-82, -60, -70, -61]  # -65 fell while unplugged
        assert got[1].manufacturer_data[0x004C] == IBEACON and got[1].tx_power == -59
        assert got[1].device == got[3].device != got[0].device
        assert "coffee-tag" not in repr(got)
        state = twin.state
        # 95 s of silence with a 30 s watchdog: 3 watchdog restarts, plus the adapter's return.
        assert state.restarts == 4 and state.adverts_seen == 4
        assert state.phase is Phase.STOPPED
        assert twin.scenario_time == 100.0
        assert sum(slept) == pytest.approx(100.0 + 1.0)  # scenario time, plus settle once

    asyncio.run(main())


def test_every_bad_line_is_reported_at_once() -> None:
    text = "\n".join(
        [
            '{"t": 1, "device": "a", "rssi": -70}',
            '{"t": 0.5, "device": "a", "rssi": -70}',  # backwards
            '{"t": 2, "device": "", "rssi": -70}',
            '{"t": 3, "device": "a", "rssi": "loud"}',
            '{"t": 4, "event": "explode"}',
            '{"t": 5, "device": "a", "rssi": -70, "manufacturer_data": {"0x10000": "00"}}',
            '{"t": 6, "device": "a", "rssi": -70, "service_data": {"x": "zz"}}',
            "not json",
        ]
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(text.splitlines())
    assert [e.split(":")[0] for e in caught.value.errors] == [f"line {n}" for n in range(2, 9)]


@given(st.lists(st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.hex()), max_size=8))
def test_scenario_parsing_never_raises_anything_but_scenario_error(lines: list[str]) -> None:
    with contextlib.suppress(ScenarioError):
        load_scenario(lines)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "t",
                "device",
                "rssi",
                "event",
                "manufacturer_data",
                "service_data",
                "service_uuids",
                "tx_power",
            ]
        ),
        st.none()
        | st.integers(-200, 70000)
        | st.floats(allow_nan=True)
        | st.text(max_size=8)
        | st.lists(st.text(max_size=4), max_size=2)
        | st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2),
    )
)
def test_structured_junk_is_a_scenario_error_or_a_step(obj: dict[str, object]) -> None:
    try:
        steps = load_scenario([json.dumps(obj)])
    except ScenarioError:
        return
    assert len(steps) == 1
