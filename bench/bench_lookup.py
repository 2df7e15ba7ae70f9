"""A 10-million-code cache: snapshot load time, warm lookup() latency, and agent RSS.

The built cache is kept under var/bench/ (gitignored) and reused, so reruns only measure
lookups. Building uses numpy to mint codes quickly (HQ-side tooling); the measurement runs in a
fresh child process that imports only what the agent imports, so its RSS is the agent's.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.report import figure, latency
from cloud_sync.contract.snapshot_format import ddl_script
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.code_format import ALPHABET, BASE, CodeFormat
from edge_agent.domain.promotion import Benefit, BenefitKind, Promotion, StackingRule
from edge_agent.domain.promotion_codec import promotion_to_dict

N = 10_000_000
ROOT = Path(__file__).resolve().parents[1]
DIR = ROOT / "var" / "bench"
CACHE = DIR / f"lookup-{N}.db"
SAMPLE = DIR / f"lookup-{N}.sample.txt"
STORE = "S1"


def mint_codes(n: int) -> list[bytes]:
    """n distinct valid codes (prefix SS, namespace B7), sorted."""
    # Lazy: numpy is HQ tooling; the measuring child process must not carry it for us.
    import numpy as np  # noqa: PLC0415

    fmt = CodeFormat(prefix="SS")
    alphabet = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    ns = [ALPHABET.index(c) for c in "B7"]
    width = fmt.random_length
    out = np.empty((0,), dtype=f"S{fmt.length}")
    while out.size < n:
        want = n - out.size
        raw = np.frombuffer(os.urandom(want * width * 9 // 8 + 64), dtype=np.uint8)
        raw = raw[raw < 8 * BASE] % BASE  # rejection sampling keeps the alphabet uniform
        vals = raw[: (raw.size // width) * width].reshape(-1, width)[:want].astype(np.int64)
        weights = np.arange(len(ns) + 1, len(ns) + 1 + width, dtype=np.int64)
        total = sum((i + 1) * v for i, v in enumerate(ns)) + vals @ weights
        last = len(ns) + width + 1
        check = (-total * pow(last, -1, BASE)) % BASE
        body = np.concatenate(
            [np.tile(np.array(ns, dtype=np.int64), (vals.shape[0], 1)), vals, check[:, None]],
            axis=1,
        )
        chars = np.concatenate(
            [np.tile(np.frombuffer(b"SS", dtype=np.uint8), (vals.shape[0], 1)), alphabet[body]],
            axis=1,
        )
        fresh = np.ascontiguousarray(chars).view(f"S{fmt.length}").ravel()
        merged = np.sort(np.concatenate([out, fresh]))
        keep = np.ones(merged.size, dtype=bool)
        keep[1:] = merged[1:] != merged[:-1]
        out = merged[keep]
    codes: list[bytes] = out.tolist()
    return codes


def write_snapshot_file(path: Path, codes: list[bytes], now: datetime) -> None:
    promo = Promotion(
        campaign_id="B1",
        name="Bench",
        benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=1000),
        stacking=StackingRule(stacking_class="coupon"),
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=365),
    )
    conn = sqlite3.connect(path)
    conn.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
    conn.executescript(ddl_script())
    conn.executemany(
        "INSERT INTO snapshot_meta VALUES (?, ?)",
        [("format_version", "1"), ("created_at", now.isoformat()), ("store_id", "*")],
    )
    conn.execute("INSERT INTO campaigns VALUES ('B1', ?)", (json.dumps(promotion_to_dict(promo)),))
    conn.executemany(
        "INSERT INTO members VALUES (?, 'loyal', 'standard', 0)",
        ((f"M{i:07d}",) for i in range(0, len(codes), 100)),
    )
    issued = int(now.timestamp())
    conn.executemany(
        "INSERT INTO codes VALUES (?, 'B1', ?, 'active', 'app', 'A', ?, ?, NULL)",
        ((c.decode(), f"M{i:07d}", issued, issued + 14 * 86_400) for i, c in enumerate(codes)),
    )
    conn.commit()
    conn.close()


def build() -> None:
    DIR.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    codes = mint_codes(N)
    figure("mint 10M distinct codes (numpy, bench helper)", time.perf_counter() - t0, "s")
    snapshot = DIR / f"snapshot-{N}.db"
    snapshot.unlink(missing_ok=True)
    t0 = time.perf_counter()
    write_snapshot_file(snapshot, codes, now)
    figure("write 10M-code snapshot file", time.perf_counter() - t0, "s")
    rng = random.Random(1)
    SAMPLE.write_text("\n".join(c.decode() for c in rng.sample(codes, 20_000)))
    del codes
    for suffix in ("", "-wal", "-shm"):
        Path(f"{CACHE}{suffix}").unlink(missing_ok=True)
    cache = CodeCache.open(CACHE, store_id=STORE)
    info = cache.load_snapshot(snapshot)
    cache.close()
    figure("load_snapshot 10M codes into the cache", info.seconds, "s")
    figure("cache file size", CACHE.stat().st_size / 1e6, "MB")
    snapshot.unlink()


def _rss_mb() -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure() -> None:
    """Runs in a fresh process: what the agent would hold with this cache open."""
    sample = SAMPLE.read_text().split()
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    cache = CodeCache.open(CACHE, store_id=STORE)
    first = cache.lookup(sample[0], None, now)
    figure("open + first lookup", (time.perf_counter() - t0) * 1e3, "ms")
    assert first is not None
    for code in sample:  # warm the page cache along the sampled paths
        cache.lookup(code, None, now)
    timings: list[float] = []
    with_member: list[float] = []
    for i, code in enumerate(sample):
        t = time.perf_counter()
        facts = cache.lookup(code, None, now)
        timings.append(time.perf_counter() - t)
        assert facts is not None
        t = time.perf_counter()
        cache.lookup(code, f"M{i:07d}", now)
        with_member.append(time.perf_counter() - t)
    latency("lookup (warm, 10M codes)", timings)
    latency("lookup with member (warm, 10M codes)", with_member)
    rss, peak = _rss_mb()
    figure("agent RSS with 10M-code cache open", rss, "MB", target="<= 150")
    figure("agent peak RSS", peak, "MB", target="<= 150")
    cache.close()


def main() -> None:
    if not CACHE.exists() or not SAMPLE.exists():
        build()
    else:
        print(f"reusing {CACHE} (delete it to rebuild)", flush=True)
    # A fresh process keeps the build's memory (numpy, 10M codes) out of the RSS figure.
    subprocess.run([sys.executable, "-m", "bench.bench_lookup", "--measure"], check=True, cwd=ROOT)


if __name__ == "__main__":
    if sys.argv[1:] == ["--measure"]:
        measure()
    else:
        main()
