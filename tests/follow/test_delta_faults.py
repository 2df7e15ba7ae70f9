"""A real ``edge-agent serve`` following HQ through a broken delivery, and through a long time
away. HQ's real fan-out, change journal and snapshot shelf over the test's Mosquitto; the
test's own HQ-side client stands in for a link that reorders, repeats and loses deltas.

1. Online, the box is sent HQ's next deltas shuffled, a quarter of them twice and a quarter
   never: it applies what follows its watermark, ignores repeats, asks HQ for the rest, and
   the fan-out, started afterwards, answers from the position the box left retained.
2. Killed (``kill -9``) while HQ revokes and mints through many more deltas than one answer
   carries (some published into the broker's queue for the dead box's session, some made
   while no fan-out ran), the box comes back and catches up page by page.

Each time the till's own view (``/v1/validate`` over HTTP) is what is checked: every revoked
code refused ``REVOKED``, every other code, new ones included, valid; and the cache's
watermark is HQ's head. The seed picks the codes and the disorder; it is printed."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cloud_sync.contract import topics
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.fanout import delta_log, producer
from cloud_sync.hq.fanout.central_journal import CentralJournal
from cloud_sync.hq.fanout.service import FanoutService
from cloud_sync.hq.fanout.snapshot_shelf import SnapshotShelf
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from cloud_sync.hq.minting import mint_anonymous
from edge_agent.api.auth import new_token
from tests.agent_process import LoggedAgent, free_port
from tests.follow.one_box import box_on, hq_with_codes
from tests.follow.test_follow_over_mqtt import HQ_KEY, HQ_PUBLIC, login
from tests.hq.ingest.test_worker_mqtt import running, worker_of
from tests.mqtt.broker import BrokerFiles, MosquittoBroker
from tests.mqtt.fixtures import ClientFactory
from tests.sync.test_agent_process_sync import BOX, STORE, write_toml

WAIT_S = 60.0
CODES = 300
PAGE = 20  # deltas in one answer to a position: the long absence needs several
BASKET = {"lines": [{"sku": "tea", "category": "drinks", "quantity": 2, "unit_price": 450}]}


def until(what: str, done: Callable[[], object], seed: int) -> None:
    """Poll ``done`` until it says True; anything else it says goes in the failure message."""
    deadline = time.monotonic() + WAIT_S
    while (said := done()) is not True:
        assert time.monotonic() < deadline, f"seed {seed}: timed out waiting for {what}: {said}"
        time.sleep(0.1)


def reasons(url: str, token: str, codes: Iterable[str]) -> dict[str, str | None]:
    """Each code's answer at the till, None when valid, else the refusal's reason: one code
    a basket, since two codes of one campaign on a basket do not combine."""
    found: dict[str, str | None] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as till:
        for c in codes:
            body: dict[str, Any] = {"codes": [c], "cashier_id": "c-1", "member_id": None}
            answer = till.post("/v1/validate", json={**body, "basket": BASKET}, timeout=10)
            answer.raise_for_status()
            found[c] = answer.json()["decisions"][0].get("reason")
    return found


def hq_step(store: EventStore, central: Path) -> list[delta_log.Published]:
    journal = CentralJournal(central)
    return store.run(
        lambda tx: producer.step(tx, journal=journal, key=HQ_KEY, now=datetime.now(UTC))
    )


def revoke_each(central: Path, codes: Iterable[str], *, then: Callable[[], object]) -> None:
    """Revoke codes one transaction at a time, calling ``then`` after each."""
    with CentralStore.open(central) as hq_db:
        for c in codes:
            hq_db.revoke(c, now=datetime.now(UTC))
            then()


def watermark(cache: Path) -> tuple[str, int]:
    conn = sqlite3.connect(cache)
    try:
        rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()
    return str(rows["delta_stream"]), int(rows["delta_watermark"])


def test_reordered_repeated_lost_deltas_and_a_long_absence(
    tmp_path: Path,
    *,
    mosquitto: MosquittoBroker,
    broker_files: BrokerFiles,
    mqtt_passwords: dict[str, str],
    mqtt_client: ClientFactory,
    seed: int,
) -> None:
    rng = random.Random(seed)
    cfg = box_on(tmp_path, mosquitto, broker_files, mqtt_passwords)
    central, minted = hq_with_codes(tmp_path, cfg, CODES)
    rng.shuffle(minted)
    events = str(tmp_path / "events.db")
    hq_events = open_event_store(events)
    hq_login = login(mosquitto, broker_files, "hq-fanout", mqtt_passwords["hq-fanout"])
    shelf = SnapshotShelf(central=central, directory=tmp_path / "shelf", key=HQ_KEY)

    def fanout() -> FanoutService:
        return FanoutService(
            login=hq_login, store=hq_events, journal=CentralJournal(central), key=HQ_KEY,
            client_id="hq-fanout-1", interval_s=0.1, catch_up_limit=PAGE, shelf=shelf,
        )  # fmt: skip

    ingest = worker_of(events, central, login(mosquitto, broker_files, "hq-ingest",
                                              mqtt_passwords["hq-ingest"]))  # fmt: skip
    port, token, config = free_port(), new_token(), tmp_path / "agent.toml"
    write_toml(cfg, config, port=port, token=token)
    with config.open("a", encoding="utf-8") as f:
        f.write(f'hq_public_key = "{HQ_PUBLIC}"\nposition_quiet_s = 0.3\n')
    url = f"http://127.0.0.1:{port}"
    agent = LoggedAgent(config, tmp_path / "agent.log")
    revoked: list[str] = []
    try:
        with running(ingest):
            with running(fanout()):
                agent.start(url)
                until("the snapshot", lambda: reasons(url, token, minted[:1]) == {minted[0]: None},
                      seed)  # fmt: skip

            # 1. The box online, deltas delivered out of order, twice, or not at all.
            made: list[delta_log.Published] = []
            batch = minted[:40]
            revoke_each(central, batch, then=lambda: made.extend(hq_step(hq_events, central)))
            revoked += batch
            assert len(made) == len(batch), made  # one delta a revoke
            sent = [p for p in made if rng.random() >= 0.25]
            sent += [p for p in sent if rng.random() < 0.25]
            rng.shuffle(sent)
            link = mqtt_client("hq-fanout", client_id="hq-link-faults")
            link.connect()
            to_box = topics.topic(STORE, BOX, Channel.DELTA)
            for p in sent:
                link.publish(to_box, p.document)
            print(f"sent {len(sent)} of {len(made)} deltas: {[p.seq for p in sent]}")
            with running(fanout()):  # it answers the position the box left retained
                until("every revoke to reach the till",
                      lambda: _all(reasons(url, token, batch), "REVOKED"), seed)  # fmt: skip

                # 2. Killed, and away while HQ goes on: some deltas go to the broker's queue
                # for the dead session, more are made while no fan-out runs.
                agent.kill()
                revoke_each(central, minted[40:70], then=lambda: time.sleep(0.02))
                revoked += minted[40:70]
                until("the fan-out to publish them",
                      lambda: _head(hq_events) > made[-1].seq + 1, seed)  # fmt: skip
            revoke_each(central, minted[70:150], then=lambda: hq_step(hq_events, central))
            revoked += minted[70:150]
            with CentralStore.open(central) as hq_db:
                mint_anonymous(hq_db, campaign_id="C1", count=50, now=datetime.now(UTC))
                every = [str(r[0]) for r in hq_db.conn.execute("SELECT code FROM codes")]
            hq_step(hq_events, central)
            new = sorted(set(every) - set(minted))
            head = _head(hq_events)
            assert head - made[-1].seq > PAGE * 3, head  # far more deltas than one answer holds

            with running(fanout()):
                agent.start(url)
                until("the revokes made while away",
                      lambda: reasons(url, token, minted[149:150]) == {minted[149]: "REVOKED"},
                      seed)  # fmt: skip
                until("the codes minted while away",
                      lambda: _all(reasons(url, token, new), None), seed)  # fmt: skip
                answers = reasons(url, token, minted)
            agent.stop()
    finally:
        agent.kill()
        hq_events.close()
    wrong = {c: r for c, r in answers.items() if r != ("REVOKED" if c in revoked else None)}
    assert wrong == {}, f"seed {seed}: {wrong}"
    stream, seq = watermark(Path(cfg.cache.path))
    with_head = open_event_store(events)
    try:
        at = with_head.run(lambda tx: delta_log.head(tx, STORE))
    finally:
        with_head.close()
    assert at is not None
    assert (stream, seq) == (at.stream, at.seq), f"seed {seed}"
    out = agent.output()
    assert "Traceback" not in out, out
    if _gapped(made[0].seq - 1, [p.seq for p in sent]):
        assert "asking HQ for the rest" in out, out


def _gapped(watermark: int, seqs: list[int]) -> bool:
    """Whether a box at ``watermark`` sent ``seqs`` in this order meets a gap."""
    for seq in seqs:
        if seq > watermark + 1:
            return True
        watermark = max(watermark, seq)
    return False


def _all(found: dict[str, str | None], reason: str | None) -> bool | dict[str, str | None]:
    """True if every code got ``reason`` (None: valid), else the codes that did not."""
    other = {c: r for c, r in found.items() if r != reason}
    return other if other else True


def _head(store: EventStore) -> int:
    at = store.run(lambda tx: delta_log.head(tx, STORE))
    return 0 if at is None else at.seq
