"""Real network partitions between a store box and HQ's broker, and a broker crash, while two
tills keep redeeming through the box's POS API: HQ's real ingest worker ends with exactly the
events the box committed (seqs 1..N each once, the chain unbroken, nothing quarantined) and
the box's outbox empties on HQ's acks.

The short partitions store into SQLite, the long one into PostgreSQL (tests/hq/ingest/pg.py).
The seed chooses the subnet, the codes' order and every interval; thread and network timing
are not reproducible, so a failure's seed replays the same schedule, not the same race.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from cloud_sync.hq.ingest import views
from tests.faults.conftest import Rig, RigFactory
from tests.faults.exactly_once import problems
from tests.faults.store_box import Tills, TillTally, box_facts
from tests.hq.ingest import pg

CATCH_UP_S = 30.0


def settle(rig: Rig, tally: TillTally, seed: int) -> int:
    """After the last fault: wait for HQ to hold everything, then check it is exact.
    Answers the box's last committed seq."""
    assert tally.errors == [], f"seed {seed}: {tally.errors[:5]}"
    assert tally.committed, f"seed {seed}: no till committed anything"
    last = box_facts(rig.box.cache).last_seq
    rig.hq.wait_for(rig.box.box_id, last, timeout_s=CATCH_UP_S)
    assert views.chain_breaks(rig.hq.store) == [], f"seed {seed}"
    assert views.quarantined(rig.hq.store) == [], f"seed {seed}"
    assert views.conflicts(rig.hq.store) == [], f"seed {seed}"
    where = views.EventFilter(box_id=rig.box.box_id, type="code.redeemed", limit=1_000_000)
    found = problems(
        stored_seqs=rig.hq.stored_seqs(rig.box.box_id),
        last_seq=last,
        redeemed_at_hq=[str(e.code) for e in views.events(rig.hq.store, where)],
        committed_by_tills=tally.committed,
    )
    assert found == [], f"seed {seed}: {found}"
    deadline = time.monotonic() + 10
    while box_facts(rig.box.cache).outbox_depth != 0:  # HQ's last ack reaches the box
        assert time.monotonic() < deadline, f"seed {seed}: the outbox did not empty"
        time.sleep(0.05)
    assert box_facts(rig.box.cache).last_seq == last  # no till was still writing
    return last


def wait_connected(rig: Rig, since: float) -> float:
    """Seconds from ``since`` until the box's pump records that it is connected again."""
    while not box_facts(rig.box.cache).connected:
        assert time.monotonic() - since < CATCH_UP_S, "the box did not reconnect"
        time.sleep(0.02)
    return time.monotonic() - since


def test_short_partitions_then_a_broker_crash_mid_drain(
    seed: int, rig: RigFactory, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    with rig(rng, str(tmp_path / "events.db")) as r:
        tills = Tills(r.box, r.agent, rng).start()
        cuts = 4  # each cut and each heal lasts 0.2-2 s: ~9 s on average
        for _ in range(cuts):
            time.sleep(rng.uniform(0.2, 2.0))
            r.net.cut()
            time.sleep(rng.uniform(0.2, 2.0))
            r.net.heal()
        # The backlog of the last cut is draining: crash the broker (SIGKILL by its PID)
        # while it does, and bring it back on the same port and persistence directory.
        time.sleep(rng.uniform(0.0, 0.2))
        backlog = box_facts(r.box.cache).outbox_depth
        r.hq.broker.kill()
        time.sleep(rng.uniform(0.2, 1.0))
        r.hq.broker.start()
        time.sleep(1.0)  # the tills keep going across the restart
        tally = tills.stop()
        stopped_at = time.monotonic()
        last = settle(r, tally, seed)
        print(
            f"{cuts} cuts; outbox {backlog} at the broker kill; {last} events "
            f"({len(tally.committed)} redemptions); caught up {time.monotonic() - stopped_at:.2f}"
            f" s after the tills stopped; duplicates absorbed {r.hq.duplicates_absorbed()}; "
            f"{box_facts(r.box.cache).connect_attempts} connect attempts"
        )


def test_a_partition_longer_than_keepalive_and_ack_timeout(
    seed: int, rig: RigFactory, pg_database: str
) -> None:
    rng = random.Random(seed)
    with rig(rng, pg.fresh_schema(pg_database)) as r:
        tills = Tills(r.box, r.agent, rng).start()
        time.sleep(rng.uniform(0.5, 1.5))
        r.net.cut()
        cut_at_us = time.time_ns() // 1000
        # Longer than the 2 s ack timeout, and than the keepalive's verdict: paho pings after
        # keepalive_s (5 s) without an answer from the broker and drops the link when no
        # answer comes within keepalive_s more (8.5-9.4 s after the cut here).
        cut_for = rng.uniform(11.0, 13.0)
        time.sleep(cut_for)
        during = box_facts(r.box.cache)
        before = r.hq.stored_seqs(r.box.box_id)
        r.net.heal()
        healed_at = time.monotonic()
        # The pump saw the link die (keepalive) while the tills kept committing.
        assert during.connected is False, f"seed {seed}: {during}"
        assert during.outbox_depth > 0, f"seed {seed}"
        assert during.link_changed_us is not None
        noticed_s = (during.link_changed_us - cut_at_us) / 1e6
        reconnected_s = wait_connected(r, healed_at)
        r.hq.wait_for(r.box.box_id, during.last_seq, timeout_s=CATCH_UP_S)
        caught_up = time.monotonic() - healed_at
        time.sleep(rng.uniform(0.5, 1.5))
        tally = tills.stop()
        last = settle(r, tally, seed)
        after = box_facts(r.box.cache)
        print(
            f"cut {cut_for:.1f} s; the box noticed after {noticed_s:.1f} s; reconnected "
            f"{reconnected_s:.2f} s after the heal; backlog at the heal {during.outbox_depth} "
            f"events (HQ had {len(before)}); HQ had all {during.last_seq} of them "
            f"{caught_up:.2f} s after the heal; {last} events in all "
            f"({len(tally.committed)} redemptions); duplicates absorbed "
            f"{r.hq.duplicates_absorbed()}; {after.connect_attempts} connect attempts"
        )
