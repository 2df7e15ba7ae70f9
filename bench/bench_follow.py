"""Issue 9's figures: a store's cache following HQ.

1. A 1,000-change delta applied to a 100,000-code cache (``delta_apply.apply``: one
   transaction, fsync on commit): median and worst of 20 (target <= 100 ms).
2. A 1,000,000-code snapshot loaded into a running box's cache (a connection of its own, as
   ``edge-agent load-snapshot`` beside the agent) while a till validates a code on the agent's
   connection all along: the load's time (target <= 60 s) and the validate latency during it
   against idle, same run (target p99 <= 10 ms).
3. Redemption at store A to refused at store B, loopback: the shipped Mosquitto (TLS), HQ's
   ingest worker and fan-out, two boxes' outbox pumps, all in this process on their threads
   (production runs them on separate machines; here they share two cores and the GIL, so the
   figure is an upper bound). Each of 50 codes is committed at box A, and box B validates it
   every 5 ms until it is refused ``ALREADY_REDEEMED`` (target p99 <= 2 s).
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.bench_lookup import mint_codes, write_snapshot_file
from bench.report import figure, latency, percentile
from cloud_sync.contract.delta import Change, Delta, Op
from cloud_sync.hq.broker.choice import start_broker
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.fanout import delta_log
from cloud_sync.hq.fanout.service import FanoutService
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from cloud_sync.hq.ingest.keyring import Keyring, central_keys
from cloud_sync.hq.ingest.worker import BrokerAddress, BrokerLogin, IngestWorker
from cloud_sync.hq.store_keys import register
from config.model import AgentConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain import token_codec
from edge_agent.domain.code_format import CodeFormat, make_code
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.coupon_token import raw_public_key
from edge_agent.domain.decision import Reason, Refused
from edge_agent.follow import delta_apply
from edge_agent.issuing import signing_key
from edge_agent.redemption.service import RedemptionService
from edge_agent.services import StoreServices
from tests.cache.factories import promotion, req
from tests.sync.pump_harness import RunningPump, box_config

FMT = CodeFormat(prefix="SS")
STREAM = "b" * 32
CACHE_CODES = 100_000
DELTA_CHANGES = 1_000
DELTAS = 20
SNAPSHOT_CODES = 1_000_000
CROSS_STORE = 50


def _codes(count: int, namespace: str = "K7") -> list[str]:
    digits = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
    out = []
    for i in range(count):
        body, n = "", i
        for _ in range(6):
            n, d = divmod(n, len(digits))
            body += digits[d]
        out.append(make_code(FMT, namespace, body))
    return out


def apply_deltas(tmp: Path) -> None:
    now = datetime.now(UTC)
    cache = CodeCache.open(tmp / "apply.db", store_id="S1", box_id="box-bench")
    cache.put_campaign(promotion("C1", ends_at=now + timedelta(days=30)))
    codes = _codes(CACHE_CODES)
    cache.put_codes([CodeRecord(code=c, campaign_id="C1", member_id=None) for c in codes])
    with cache.transaction() as conn:
        delta_apply.follow(conn, stream=STREAM, watermark=0)
    fresh = _codes(DELTAS * 300, namespace="Z9")
    took = []
    for seq in range(1, DELTAS + 1):
        base = (seq - 1) * DELTA_CHANGES
        changes = [
            Change(
                op=Op.CODE_REDEEMED_ELSEWHERE,
                fields={
                    "code": codes[(base + i) % CACHE_CODES],
                    "store_id": "S2",
                    "box_id": f"box-{i % 7}",
                    "till_id": "till-1",
                    "transaction_id": f"T-{seq}-{i}",
                    "at": now,
                    "uses": 1,
                },
            )
            for i in range(500)
        ]
        changes += [
            Change(
                op=Op.CODE_ISSUED,
                fields={
                    "code": fresh[(seq - 1) * 300 + i],
                    "campaign_id": "C1",
                    "member_id": None,
                    "channel": "app",
                    "variant": "A",
                    "issued_at": None,
                    "expires_at": None,
                },
            )
            for i in range(300)
        ]
        changes += [
            Change(
                op=Op.CODE_REVOKED,
                fields={"code": codes[(base + 600 + i) % CACHE_CODES], "at": now},
            )
            for i in range(200)
        ]
        delta = Delta(store_id="S1", stream=STREAM, seq=seq, issued_at=now, changes=tuple(changes))
        started = time.perf_counter()
        done = delta_apply.apply(cache, delta)
        took.append(time.perf_counter() - started)
        assert done.applied == DELTA_CHANGES, done
    cache.close()
    ms = [t * 1000 for t in took]
    figure("1,000-change delta applied, median", statistics.median(ms), "ms", target="<= 100 ms")
    figure("1,000-change delta applied, worst of 20", max(ms), "ms", target="<= 100 ms")


def snapshot_while_validating(tmp: Path) -> None:
    now = datetime.now(UTC)
    codes = mint_codes(SNAPSHOT_CODES)
    snapshot = tmp / "snapshot.db"
    write_snapshot_file(snapshot, codes, now)
    path = tmp / "agent.db"
    agent = CodeCache.open(path, store_id="S1", box_id="box-bench")
    agent.load_snapshot(snapshot)  # the cache the box ran with, before HQ's next snapshot
    service = RedemptionService(agent, fmt=FMT)
    probe = codes[len(codes) // 2].decode()

    def one() -> float:
        started = time.perf_counter()
        (decision,) = service.validate(req(probe, member=None, now=datetime.now(UTC)))
        assert decision.ok or decision.reason is not None
        return time.perf_counter() - started

    idle = [one() for _ in range(3_000)]
    busy: list[float] = []
    loading = threading.Event()
    loaded = threading.Event()
    seconds: list[float] = []

    def load() -> None:
        other = CodeCache.open(path, store_id="S1", box_id="box-bench")
        loading.set()
        seconds.append(other.load_snapshot(snapshot).seconds)
        other.close()
        loaded.set()

    thread = threading.Thread(target=load)
    thread.start()
    loading.wait()
    while not loaded.is_set():
        busy.append(one())
        time.sleep(0.001)  # a till's pace, not a spin: the GIL is the load's too
    thread.join()
    agent.close()
    figure(
        "1,000,000-code snapshot loaded beside a validating till", seconds[0], "s", target="<= 60 s"
    )
    latency("validate, idle", idle)
    latency("validate during the snapshot load", busy, target_p99_us=10_000)
    figure("validates during the load", len(busy), "")


USERS = ("box-a", "box-b", "hq-ingest", "hq-fanout")


def _boxes(tmp: Path, *, port: int, ca: Path | None, passwords: dict[str, str], hq_public: str,
           codes: list[str], events: EventStore) -> list[AgentConfig]:  # fmt: skip
    """Box A of store S1 and box B of S2, their caches holding ``codes`` and following their
    stores' streams from where HQ's are now."""
    now = datetime.now(UTC)
    cfgs = []
    for name, store in (("box-a", "S1"), ("box-b", "S2")):
        cfg = box_config(
            tmp, box=name, store=store, port=port, ca=ca, password=passwords[name],
            hq_public_key=hq_public,
        )  # fmt: skip
        cache = CodeCache.open(Path(cfg.cache.path), store_id=store, box_id=name)
        cache.put_campaign(promotion("C1", ends_at=now + timedelta(days=30)))
        cache.put_codes([CodeRecord(code=c, campaign_id="C1", member_id=None) for c in codes])
        cache.set_synced_at(now)
        point = events.run(lambda tx, s=store: delta_log.follow_point(tx, s, now=now))
        with cache.transaction() as conn:
            delta_apply.follow(conn, stream=point.stream, watermark=point.seq)
        cache.close()
        cfgs.append(cfg)
    return cfgs


def _central(path: Path, cfgs: list[AgentConfig]) -> Path:
    with CentralStore.create(path, fmt=FMT) as hq:
        for cfg in cfgs:
            key = signing_key.load(Path(cfg.signing.key_path))
            text = token_codec.public_key_text(raw_public_key(key.public_key()))
            register(hq, cfg.store.store_id, text, now=datetime.now(UTC))
    return path


@contextmanager
def _fleet(tmp: Path, codes: list[str]) -> Iterator[tuple[RunningPump, RunningPump]]:
    """The shipped Mosquitto, HQ's ingest and fan-out on threads, boxes A and B running."""
    passwords = {u: secrets.token_urlsafe(16) for u in USERS}
    broker = start_broker(directory=tmp / "broker", users=passwords)
    if broker.kind != "mosquitto":
        broker.stop()
        raise SystemExit(f"bench_follow measures Mosquitto, start_broker gave {broker.kind}")
    hq_key = Ed25519PrivateKey.generate()
    hq_public = token_codec.public_key_text(raw_public_key(hq_key.public_key()))
    port = int(broker.url.rsplit(":", 1)[1])
    events = open_event_store(str(tmp / "events.db"))
    cfgs = _boxes(
        tmp, port=port, ca=broker.ca_cert, passwords=passwords, hq_public=hq_public,
        codes=codes, events=events,
    )  # fmt: skip
    central = _central(tmp / "hq.db", cfgs)

    def login(user: str) -> BrokerLogin:
        address = BrokerAddress(host="127.0.0.1", port=port, tls=True)
        return BrokerLogin(
            broker=address, cafile=broker.ca_cert, username=user, password=passwords[user]
        )

    keyring = Keyring(central_keys(central))
    ingest = IngestWorker(
        login=login("hq-ingest"),
        ingest=Ingest(store=open_event_store(str(tmp / "events.db")), keyring=keyring),
        client_id="hq-ingest-bench",
        group="ingest",
    )
    fanout = FanoutService(
        login=login("hq-fanout"), store=events, journal=None, key=hq_key,
        client_id="hq-fanout-bench", interval_s=0.1,
    )  # fmt: skip
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in (ingest, fanout)]
    for t in threads:
        t.start()
    a, b = RunningPump(cfgs[0]).start(), RunningPump(cfgs[1]).start()
    try:
        deadline = time.monotonic() + 30
        while b.pump.follower.counters.positions_said == 0 or not fanout.subscribed.is_set():
            if time.monotonic() > deadline:
                raise SystemExit("bench_follow: box-b never said its position")
            time.sleep(0.02)
        yield a, b
    finally:
        a.stop()
        b.stop()
        stop.set()
        for t in threads:
            t.join(10)
        events.close()
        broker.stop()


def cross_store(tmp: Path) -> None:
    codes = _codes(CROSS_STORE, namespace="X3")
    took = []
    with _fleet(tmp, codes) as (a, b):
        for i, c in enumerate(codes):

            def commit(s: StoreServices, c: str = c, i: int = i) -> None:
                at = datetime.now(UTC)
                request = replace(req(c, txn=f"T-{i}", member=None, now=at), store_id="S1")
                (done,) = s.redemption.commit(request)
                assert done.redemption is not None, done

            def refused(s: StoreServices, c: str = c) -> bool:
                at = datetime.now(UTC)
                request = replace(req(c, txn="T-probe", member=None, now=at), store_id="S2")
                (decision,) = s.redemption.validate(request)
                return isinstance(decision, Refused) and decision.reason is Reason.ALREADY_REDEEMED

            a.db.call(commit)
            started = time.perf_counter()
            while not b.db.call(refused):
                if time.perf_counter() - started > 30:
                    raise SystemExit(f"bench_follow: {c} never refused at store 2")
                time.sleep(0.005)
            took.append(time.perf_counter() - started)
    ms = [t * 1000 for t in took]
    figure("redeemed at store A to refused at store B, p50", statistics.median(ms), "ms")
    figure(
        "redeemed at store A to refused at store B, p99",
        percentile(ms, 99),
        "ms",
        target="<= 2,000 ms",
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-follow-") as tmp:
        root = Path(tmp)
        apply_deltas(root)
        cross_store(root)
        snapshot_while_validating(root)


if __name__ == "__main__":
    main()
