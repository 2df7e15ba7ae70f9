"""kill -9 during redemptions: every acknowledged redemption survives, nothing is half-written.

A real child process (``crash_worker.py``) redeems codes against a cache file and prints each
committed transaction; the parent SIGKILLs it at random moments, several rounds over the same
file, then checks the file. The seed is printed: rerun with STORESIDE_CRASH_SEED to reproduce.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.code_format import random_symbols
from edge_agent.domain.code_record import CodeRecord
from tests.cache.factories import STORE, code, open_cache, promotion

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 5


def make_cache(path: Path, n: int) -> None:
    now = datetime.now(UTC)
    cache = open_cache(path, synced_at=now)
    cache.put_campaign(
        promotion("CRASH", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30))
    )
    cache.put_codes(
        CodeRecord(
            code=code(random_symbols(6), namespace="Q9"), campaign_id="CRASH", member_id=None
        )
        for _ in range(n)
    )
    cache.close()


def run_round(path: Path, round_: int, rng: random.Random, tills: int = 0) -> list[str]:
    extra = [str(tills)] if tills else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.redemption.crash_worker", str(path), str(round_), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the worker is up and redeeming
    assert first.startswith(("commit", "void")), first + proc.stderr.read()  # type: ignore[union-attr]
    time.sleep(rng.uniform(0.0, 0.4))
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, "the worker finished before the kill"
    return [first, *rest.splitlines()]


def check(path: Path, acked: list[str]) -> None:
    cache = CodeCache.open(path, store_id=STORE)
    conn = cache.conn
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    redemptions = {
        (c, t): (amount, rid)
        for rid, c, t, amount in conn.execute(
            "SELECT id, code, transaction_id, amount FROM redemptions"
        )
    }
    events = list(conn.execute("SELECT seq, type, code, body FROM events ORDER BY seq"))
    seqs = [e[0] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "event sequence has gaps"
    assert [s for (s,) in conn.execute("SELECT seq FROM outbox ORDER BY seq")] == seqs
    assert (
        conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0] == len(seqs) + 1
    )
    # Each acknowledged commit is there with its event and outbox row.
    for line in acked:
        kind, txn, c = line.split()
        if kind == "commit":
            assert (c, txn) in redemptions, f"acknowledged {txn} lost"
        else:
            assert (
                conn.execute(
                    "SELECT count(*) FROM requests WHERE transaction_id = ? AND operation = 'void'",
                    (txn,),
                ).fetchone()[0]
                == 1
            )
    # No half-written state: one event per state change, and state behind every event.
    by_kind = Counter((t, c) for _, t, c, _ in events)
    for c, _txn in redemptions:
        assert by_kind[("code.redeemed", c)] == 1
    assert sum(n for (t, _), n in by_kind.items() if t == "code.redeemed") == len(redemptions)
    reserve_records = conn.execute(
        "SELECT count(*) FROM requests WHERE operation = 'reserve'"
    ).fetchone()[0]
    assert sum(n for (t, _), n in by_kind.items() if t == "code.reserved") == reserve_records
    voids = conn.execute("SELECT count(*) FROM requests WHERE operation = 'void'").fetchone()[0]
    assert sum(n for (t, _), n in by_kind.items() if t == "code.voided") == voids
    commits = conn.execute("SELECT count(*) FROM requests WHERE operation = 'commit'").fetchone()[0]
    assert commits == len(redemptions)
    # Usage counters equal the redemption rows.
    usage = dict(conn.execute("SELECT code, uses FROM code_usage"))
    assert usage == {c: 1 for (c, _) in redemptions}
    uses, money = conn.execute(
        "SELECT uses, money FROM campaign_usage WHERE campaign_id = 'CRASH'"
    ).fetchone()
    assert uses == len(redemptions)
    assert money == sum(a for a, _ in redemptions.values())
    cache.close()


@pytest.mark.parametrize("tills", [0, 8], ids=["one-till-direct", "eight-tills-group-commit"])
def test_kill_dash_nine_leaves_no_half_written_state(tmp_path: Path, tills: int) -> None:
    """With ``tills``, eight threads redeem at once through the DB thread's group commit: every
    answer a till got must have been durable (answers wait for the batch's COMMIT)."""
    seed = int(os.environ.get("STORESIDE_CRASH_SEED", random.randrange(2**32)))
    print(f"crash test seed={seed}")
    rng = random.Random(seed)
    path = tmp_path / "crash.db"
    make_cache(path, 20_000)
    acked: list[str] = []
    for round_ in range(ROUNDS):
        lines = run_round(path, round_, rng, tills)
        print(f"round {round_}: killed after {len(lines)} acknowledged operations")
        acked += lines
        check(path, acked)
    commits = sum(1 for line in acked if line.startswith("commit"))
    assert commits > ROUNDS  # the worker really was redeeming when it died
