"""Validation through the real POS API, as a till calls it, with 10 million codes cached.

The agent runs as its own process (`edge-agent serve`), over the 10M-code cache that
bench_lookup builds (and builds here if missing); the till is a lean client on loopback making
sequential requests on one keep-alive connection. Its floor runs in the same run: a no-op
FastAPI endpoint taking a similar body on the same uvicorn stack (``bench.noop_app``), driven by
the same client with the same bodies, in interleaved blocks so machine noise lands on both. Also
prints the agent process's RSS with that cache open: the figure the issue bounds (<= 150 MB).
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import bench_lookup
from bench.fixtures import bench_campaign
from bench.report import against_floor, figure, latency, percentile
from edge_agent.api.auth import new_token, token_digest
from edge_agent.cache.code_cache import CodeCache

REQUESTS = 10_000  # PERFORMANCE.md: p99 is noisy below ~10k requests
BLOCK = 1_000  # requests per turn, alternating agent and floor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _refresh(now: datetime) -> list[tuple[str, str]]:
    """Keep the reused bench cache valid today; return (code, member) pairs to validate."""
    cache = CodeCache.open(bench_lookup.CACHE, store_id=bench_lookup.STORE)
    cache.put_campaign(bench_campaign(now, days=365))
    cache.set_synced_at(now)
    cache.close()
    sample = bench_lookup.SAMPLE.read_text().split()[:REQUESTS]
    with sqlite3.connect(bench_lookup.CACHE) as conn:
        return [
            (
                code,
                str(
                    conn.execute("SELECT member_id FROM codes WHERE code = ?", (code,)).fetchone()[
                        0
                    ]
                ),
            )
            for code in sample
        ]


def _rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main() -> None:
    if not bench_lookup.CACHE.exists() or not bench_lookup.SAMPLE.exists():
        bench_lookup.build()
    now = datetime.now(UTC)
    pairs = _refresh(now)
    token, port = new_token(), _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "agent.toml"
        config.write_text(
            f'[store]\nstore_id = "{bench_lookup.STORE}"\n'
            f'[cache]\npath = "{bench_lookup.CACHE}"\n'
            f"[api]\nport = {port}\n"
            f'[[api.tills]]\ntill_id = "till-1"\ntoken_sha256 = "{token_digest(token)}"\n'
        )
        agent = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli.main", "--config", str(config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        noop_port = _free_port()
        noop = subprocess.Popen(
            [sys.executable, "-m", "bench.noop_app", str(noop_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _drive(agent.pid, port, noop_port, token, pairs)
        finally:
            for proc in (agent, noop):
                proc.terminate()
                proc.wait(10)


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/v1/health")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _drive(pid: int, port: int, noop_port: int, token: str, pairs: list[tuple[str, str]]) -> None:
    # A lean keep-alive client (http.client), like a till's: the figure is the agent's time
    # plus loopback, not a heavyweight Python client's own overhead.
    _wait_ready(port)
    _wait_ready(noop_port)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    lines = [
        {"sku": f"sku-{i}", "category": "grocery", "quantity": 1, "unit_price": 250 + i}
        for i in range(10)
    ]
    bodies = [
        json.dumps(
            {"codes": [code], "cashier_id": "c-1", "member_id": member, "basket": {"lines": lines}}
        )
        for code, member in pairs
    ]
    till = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    floor = http.client.HTTPConnection("127.0.0.1", noop_port, timeout=10)
    timings: list[float] = []
    floor_timings: list[float] = []
    accepted = 0
    for _warm in range(200):  # first requests pay imports and page-cache misses on both
        for conn in (till, floor):
            conn.request("POST", "/v1/validate", bodies[_warm], headers)
            conn.getresponse().read()
    for start in range(0, len(bodies), BLOCK):
        block = bodies[start : start + BLOCK]
        for body in block:
            t = time.perf_counter()
            till.request("POST", "/v1/validate", body, headers)
            answer = till.getresponse().read()
            timings.append(time.perf_counter() - t)
            accepted += json.loads(answer)["decisions"][0]["ok"]
        for body in block:
            t = time.perf_counter()
            floor.request("POST", "/v1/validate", body, headers)
            floor.getresponse().read()
            floor_timings.append(time.perf_counter() - t)
    till.close()
    floor.close()
    if accepted != len(pairs):
        print(f"warning: only {accepted} of {len(pairs)} validations were accepted")
    latency("POS API validate over HTTP (10M codes cached)", timings, target_p99_us=5_000)
    latency("floor: no-op FastAPI endpoint, same stack and client", floor_timings)
    for pct in (50, 99):
        against_floor(
            f"validate over HTTP p{pct}",
            percentile(timings, pct) * 1e6,
            percentile(floor_timings, pct) * 1e6,
            "us",
            target="ratio <= 2" if pct == 99 else "",
            lower_is_better=True,
        )
    figure("requests per second (one till, sequential)", len(timings) / sum(timings), "req/s")
    rss, peak = _rss_mb(pid)
    figure("agent process RSS serving with 10M-code cache", rss, "MB", target="<= 150")
    figure("agent process peak RSS", peak, "MB", target="<= 150")


if __name__ == "__main__":
    main()
