"""``edge-agent serve`` started on a damaged cache after a power cut: it sets the file aside,
serves from a fresh cache holding the rescued events, and ends cleanly."""

from __future__ import annotations

import signal
import sqlite3
from contextlib import closing
from pathlib import Path

from edge_agent.cache import integrity
from tests.agent_process import LoggedAgent, free_port
from tests.cache.damage import BOX, Hq, build, digest, events_of, leaf_pages, smash
from tests.cache.factories import STORE


def test_the_agent_starts_on_a_damaged_cache_and_serves(tmp_path: Path) -> None:
    cache = tmp_path / "data" / "cache.db"
    cache.parent.mkdir()
    build(cache, Hq.at(tmp_path))
    before = events_of(cache)
    page = sorted(p for p, rows in leaf_pages(cache, "events").items() if min(rows) > 100)[5]
    smash(cache, page)
    damaged = digest(cache)
    integrity.marker(cache).touch()  # the power cut: the last run never ended
    port = free_port()
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[store]\nstore_id = "{STORE}"\nbox_id = "{BOX}"\n\n[cache]\npath = "{cache}"\n\n'
        f'[api]\nhost = "127.0.0.1"\nport = {port}\n',
        encoding="utf-8",
    )
    agent = LoggedAgent(config, tmp_path / "agent.log")
    try:
        agent.start(f"http://127.0.0.1:{port}")
        assert agent.process is not None
        agent.process.send_signal(signal.SIGTERM)
        assert agent.process.wait(timeout=30) == 0
    finally:
        agent.kill()
    log = (tmp_path / "agent.log").read_text(encoding="utf-8")
    assert "is damaged (database disk image is malformed): setting it aside" in log, log
    names = sorted(p.name for p in cache.parent.iterdir())
    asides = [p for p in cache.parent.iterdir() if p.name.startswith("cache.db.damaged-")]
    assert len(asides) == 1, names
    (aside,) = asides
    assert aside.name.endswith("Z")  # no -wal or -shm: the file had none to set aside
    assert digest(aside) == damaged
    assert not integrity.marker(cache).exists()  # this run ended cleanly
    with closing(sqlite3.connect(cache)) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
        outbox = [str(r[0]) for r in conn.execute("SELECT payload FROM outbox ORDER BY seq")]
    unsent = [before[s] for s in sorted(before) if s > 50]
    assert [p.split('"event_id":"')[1][:32] for p in outbox] == unsent
