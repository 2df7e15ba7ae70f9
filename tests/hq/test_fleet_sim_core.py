"""The fleet simulator's pure parts: the load model's mean rate and bursts, and one box's
batches, signature, chain and send window (what the pump's window does, without a socket)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from cloud_sync.contract import batch as batches
from cloud_sync.contract.ack import Ack, SeqRange
from cloud_sync.contract.chain import ChainLink, verify_chain
from cloud_sync.fleet_sim import identities
from cloud_sync.fleet_sim.load_model import LoadModel, box_rng, next_arrival
from cloud_sync.fleet_sim.sim_box import SimBox
from cloud_sync.hq.broker.password_file import read_password_file, verify_password
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.cli import main
from cloud_sync.hq.store_keys import keys
from edge_agent.domain.coupon_token import key_id

WALL = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_load_model_averages_its_rate_with_bursts_of_its_size() -> None:
    seed = random.randrange(2**32)
    print(f"load model seed {seed}")
    model = LoadModel(rate=1.0, burst_size=50, burst_prob=0.01)
    rng = box_rng(seed, 0)
    now, events, sizes = 0.0, 0, set()
    horizon = 200_000.0  # ~1,300 bursts: the mean is within a few percent
    while now < horizon:
        now, size = next_arrival(model, rng, now)
        events += size
        sizes.add(size)
    assert sizes == {1, 50}
    assert 0.9 < events / horizon < 1.1


def _ack(through: int, *missing: SeqRange) -> Ack:
    return Ack(
        store_id="sim-store-0001", box_id="sim-box-00001", stored_through=through, missing=missing
    )


def _box(batch_events: int = 4, in_flight: int = 2) -> SimBox:
    (ident,) = identities.provision(1, 1)
    return SimBox(ident, index=0, batch_events=batch_events, in_flight=in_flight)


def test_batches_are_signed_chained_runs_and_the_window_bounds_them() -> None:
    box = _box()
    box.create(10, now=0.0, wall=WALL, measured=True)
    first, second = box.next_batch(1.0), box.next_batch(1.0)
    assert first is not None and second is not None
    assert box.next_batch(1.0) is None  # two in flight: the window is full
    got = [batches.decode(p) for p in (first, second)]
    assert [(g.batch.first_seq, g.batch.last_seq) for g in got] == [(1, 4), (5, 8)]
    public = box.identity.key.public_key()
    for g in got:
        public.verify(g.signed.signature, batches.signing_bytes(g.batch))  # raises if forged
    verdict = verify_chain(
        [e for g in got for e in g.events], anchor=ChainLink.start(box.identity.box_id)
    )
    assert verdict.ok and verdict.head.seq == 8

    assert box.on_ack(_ack(4), now=1.5, wall=WALL) == 4
    assert box.lags == [1.5] * 4
    third = box.next_batch(2.0)
    assert third is not None and batches.decode(third).batch.first_seq == 9


def test_an_unanswered_batch_is_sent_again_from_the_last_ack() -> None:
    box = _box(batch_events=3, in_flight=4)
    box.create(6, now=0.0, wall=WALL, measured=False)
    assert box.next_batch(0.0) is not None and box.next_batch(0.0) is not None
    assert not box.expired(now=14.9, timeout_s=15.0)
    assert box.expired(now=15.0, timeout_s=15.0)
    again = box.next_batch(15.0)
    assert again is not None and batches.decode(again).batch.first_seq == 1
    assert box.resent_events == 3


def test_a_hole_no_batch_in_flight_covers_rewinds_there_and_one_that_does_not() -> None:
    box = _box(batch_events=2, in_flight=4)
    box.create(6, now=0.0, wall=WALL, measured=True)
    for _ in range(3):
        assert box.next_batch(0.0) is not None  # 1-2, 3-4, 5-6
    # HQ has 1-2 and 5-6; 3-4 is still in flight (two workers can store out of order): wait.
    box.on_ack(_ack(2, SeqRange(first=3, last=4)), now=0.1, wall=WALL)
    assert box.next_batch(0.1) is None  # nothing unsent
    # The same hole once 3-4 has timed out of the window (lost on the way): send it again.
    box.in_flight = [b for b in box.in_flight if b.first != 3]
    box.on_ack(_ack(2, SeqRange(first=3, last=4)), now=0.2, wall=WALL)
    again = box.next_batch(0.2)
    assert again is not None and batches.decode(again).batch.first_seq == 3


def test_an_overtaken_ack_does_not_send_the_window_again() -> None:
    box = _box(batch_events=2, in_flight=4)
    box.create(6, now=0.0, wall=WALL, measured=True)
    for _ in range(3):
        assert box.next_batch(0.0) is not None  # 1-2, 3-4, 5-6
    box.on_ack(_ack(4), now=0.1, wall=WALL)
    # The other worker parked 3-4 before the first stored 1-2 and answers only now.
    box.on_ack(_ack(2, SeqRange(first=3, last=4)), now=0.2, wall=WALL)
    assert box.next_batch(0.2) is None  # 5-6 still in flight: nothing to send again
    assert box.resent_events == 0


def test_provision_registers_every_key_for_its_store_and_keeps_the_secrets_private(
    tmp_path: Path, central: CentralStore
) -> None:
    users, passwords = tmp_path / "fleet.json", tmp_path / "storeside.passwd"
    central.close()
    code = main(
        [
            "--db", str(central.path), "simulate-fleet", "provision", "--boxes", "12",
            "--stores", "5", "--users-file", str(users), "--hq-db", str(central.path),
            "--password-file", str(passwords),
        ]
    )  # fmt: skip
    assert code == 0
    fleet = identities.read_users_file(users)
    assert users.stat().st_mode & 0o077 == 0
    assert len({i.box_id for i in fleet}) == 12 and len({i.store_id for i in fleet}) == 5
    with CentralStore.open(central.path) as reopened:
        registered = {k.key_id: k.store_id for k in keys(reopened)}
    assert registered == {key_id(i.key.public_key()): i.store_id for i in fleet}
    hashes = read_password_file(passwords)
    assert all(verify_password(i.password, hashes[i.box_id]) for i in fleet)
