"""Posting an earn or burn at the till, durable (issue 11: p99 <= 10 ms).

Runs the real ``PointsService.checkout`` (member and balance read, earn and burn rules, the sale
row, one ``points.posted`` event with its outbox row and posting row per side, the stored
answer: one BEGIN IMMEDIATE transaction) on a fresh cache file opened as the agent opens it
(``CodeCache.open``: WAL, ``synchronous = FULL``, so every checkout's COMMIT is an fsync;
automatic checkpoints off, the cache checkpointed every 1,000 checkouts off the timed path, as
the agent does when idle). Two kinds of sale, each on its own transaction ids:

* earn only: a band-A and a band-C line, no burn (one event);
* earn and burn: the same basket, 250 points burned on the band-C line (two events).

Then the same two kinds through the POS API (``POST /v1/points/checkout``): the agent as its
own process (``edge-agent serve``, points on) over that cache file, a lean keep-alive client
on loopback making sequential requests, as in ``bench_pos_api``.

Members are spread over ``MEMBERS`` so each has a history of postings after HQ's mark (what the
offline bound sums). Its floor, in interleaved blocks on the same disk: a raw fsync'd
transaction of the same shape (a sale row, and per event an event, an outbox and a posting
row), so the figure can be read as the service's cost over what the disk makes any durable
write cost.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bench_pos_api import _free_port, _wait_ready
from bench.report import against_floor, figure, percentile
from config.points import PointsConfig
from edge_agent.api.auth import new_token, token_digest
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.promotion import Member
from edge_agent.points import balances
from edge_agent.points.outcomes import Sale
from edge_agent.points.service import PointsService

N = 5_000  # checkouts of each kind, in process and through the API
BLOCK = 500  # checkouts per turn, alternating the service and the floor
MEMBERS = 500
TARGET_US = 10_000
BOX = "bench-box"
# 60 % margin: band A, 2 x 10.00 earns 100 points at 5x. 10 % margin: band C, earns nothing,
# burnable down to cost at 1.2x (250 points take 3.00 off).
BASKET = Basket(
    lines=(
        BasketLine(sku="A-1", category="food", quantity=2, unit_price=1000, unit_cost=400),
        BasketLine(sku="C-1", category="food", quantity=3, unit_price=1000, unit_cost=900),
    )
)
BURN = 250
NO_MARKS = '{"schema_version":1,"boxes":[]}'


class RawPosting:
    """The floor: one fsync'd transaction per checkout, of the shape a checkout writes."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        for table in ("sales", "events", "outbox", "postings"):
            self.conn.execute(f"CREATE TABLE {table} (k INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        self.k = 0
        self.body = "x" * 600  # about an event's JSON with its ledger text

    def post(self, events: int) -> None:
        self.k += 1
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("INSERT INTO sales VALUES (?, ?)", (self.k, self.body))
        for i in range(events):
            for table in ("events", "outbox", "postings"):
                self.conn.execute(f"INSERT INTO {table} VALUES (?, ?)", (self.k * 2 + i, self.body))
        self.conn.execute("COMMIT")

    def checkpoint(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _service(cache: CodeCache) -> PointsService:
    cfg = PointsConfig.model_validate({"enabled": True})
    return PointsService(cache, policy=cfg.to_policy(), programme=cfg.programme)


def _seed(cache: CodeCache) -> None:
    for i in range(MEMBERS):
        cache.put_member(Member(member_id=f"M{i}", tier="standard"))
    with cache.transaction() as conn:
        for i in range(MEMBERS):  # enough that no burn is ever short
            balances.put(
                conn,
                member_id=f"M{i}",
                programme="main",
                balance=10_000_000,
                marks=NO_MARKS,
                box_id=BOX,
            )
    cache.checkpoint(truncate=True)


def _run(
    name: str,
    burn: int | None,
    *,
    service: PointsService,
    cache: CodeCache,
    raw: RawPosting,
    events: int,
) -> None:
    timings: list[float] = []
    elapsed = floor_elapsed = 0.0
    for start in range(0, N, BLOCK):
        t = time.perf_counter()
        for j in range(start, start + BLOCK):
            raw.post(events)
            if j % 1000 == 999:
                raw.checkpoint()  # the same checkpoint points as the service below
        floor_elapsed += time.perf_counter() - t
        for j in range(start, start + BLOCK):
            sale = Sale(
                till_id=f"till-{j % 4}",
                transaction_id=f"{name.replace('+', '-')}-{j}",
                cashier_id="c-1",
                member_id=f"M{j % MEMBERS}",
                basket=BASKET,
                burn_points=burn,
                now=datetime.now(UTC),
            )
            t0 = time.perf_counter()
            out = service.checkout(sale)
            timings.append(time.perf_counter() - t0)
            if not out.ok or len(out.event_ids) != events:
                raise SystemExit(f"unexpected answer: {out}")
            if j % 1000 == 999:
                cache.checkpoint()  # off the hot path in the agent; excluded from the timings
        elapsed += sum(timings[start:])
    _figures(f"points checkout, {name}, durable", timings)
    against_floor(
        f"points checkout, {name}, mean",
        elapsed / N * 1e6,
        floor_elapsed / N * 1e6,
        "us",
        lower_is_better=True,
    )


def _figures(name: str, seconds: list[float]) -> None:
    us = [s * 1e6 for s in seconds]
    figure(f"{name} p50", percentile(us, 50), "us")
    figure(f"{name} p95", percentile(us, 95), "us")
    figure(f"{name} p99", percentile(us, 99), "us", target=f"p99 <= {TARGET_US:,} us")
    figure(f"{name} max", max(us), "us")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache = CodeCache.open(Path(tmp) / "bench.db", store_id="S1", box_id=BOX)
        sync = cache.conn.execute("PRAGMA synchronous").fetchone()[0]
        if sync != 2:  # 2 = FULL: the figure is only the if each COMMIT is an fsync
            raise SystemExit(f"the cache opened with synchronous={sync}, not FULL")
        _seed(cache)
        service = _service(cache)
        raw = RawPosting(Path(tmp) / "floor.db")
        kinds: list[tuple[str, int | None, int]] = [("earn", None, 1), ("earn+burn", BURN, 2)]
        for i in range(100):  # the first checkouts pay imports and cold pages
            _warm(service, i)
        for name, burn, events in kinds:
            _run(name, burn, service=service, cache=cache, raw=raw, events=events)
        cache.close()
        raw.conn.close()
        _over_http(Path(tmp))
        with sqlite3.connect(Path(tmp) / "bench.db") as conn:
            postings = conn.execute("SELECT count(*) FROM points_postings").fetchone()[0]
        figure("postings on file at the end", postings, "rows")


def _warm(service: PointsService, i: int) -> None:
    service.checkout(
        Sale(
            till_id="till-w",
            transaction_id=f"warm-{i}",
            cashier_id="c-1",
            member_id=f"M{i % MEMBERS}",
            basket=BASKET,
            burn_points=BURN if i % 2 else None,
            now=datetime.now(UTC),
        )
    )


def _over_http(tmp: Path) -> None:
    token, port = new_token(), _free_port()
    config = tmp / "agent.toml"
    config.write_text(
        f'[store]\nstore_id = "S1"\nbox_id = "{BOX}"\n'
        f'[cache]\npath = "{tmp / "bench.db"}"\n'
        f"[api]\nport = {port}\n"
        f'[[api.tills]]\ntill_id = "till-h"\ntoken_sha256 = "{token_digest(token)}"\n'
        "[points]\nenabled = true\n"
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli.main", "--config", str(config), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(port)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        till = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        lines = [
            {"sku": x.sku, "category": x.category, "quantity": x.quantity,
             "unit_price": x.unit_price, "unit_cost": x.unit_cost}
            for x in BASKET.lines
        ]  # fmt: skip

        def body(txn: str, j: int, burn: int | None) -> str:
            doc = {"transaction_id": txn, "member_id": f"M{j % MEMBERS}", "cashier_id": "c-1",
                   "basket": {"lines": lines}, "burn_points": burn}  # fmt: skip
            return json.dumps(doc)

        for i in range(200):  # warm: imports, the first pages, the connection
            _checkout(till, headers, body(f"http-warm-{i}", i, BURN if i % 2 else None))
        for name, burn, events in (("earn", None, 1), ("earn+burn", BURN, 2)):
            timings: list[float] = []
            for j in range(N):
                doc = body(f"http-{name.replace('+', '-')}-{j}", j, burn)
                t = time.perf_counter()
                out = _checkout(till, headers, doc)
                timings.append(time.perf_counter() - t)
                if not out["ok"] or len(out["event_ids"]) != events:
                    raise SystemExit(f"unexpected answer: {out}")
            _figures(f"POS API points checkout, {name}, durable", timings)
        till.close()
    finally:
        agent.terminate()
        agent.wait(10)


def _checkout(
    till: http.client.HTTPConnection, headers: dict[str, str], body: str
) -> dict[str, Any]:
    till.request("POST", "/v1/points/checkout", body, headers)
    answer = till.getresponse()
    data = answer.read()
    if answer.status != 200:
        raise SystemExit(f"HTTP {answer.status}: {data[:300]!r}")
    out: dict[str, Any] = json.loads(data)
    return out


if __name__ == "__main__":
    main()
