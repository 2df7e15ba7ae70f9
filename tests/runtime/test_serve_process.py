"""``edge-agent serve`` as systemd runs it: a real process, stopped with SIGTERM."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx

from edge_agent.api.auth import new_token, token_digest
from tests.agent_process import EDGE_AGENT, free_port, wait_for_health


def test_serve_answers_health_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    port, token, cache = free_port(), new_token(), tmp_path / "cache.db"
    (tmp_path / "agent.toml").write_text(
        f'[store]\nstore_id = "store-001"\n\n[cache]\npath = "{cache}"\n\n'
        f'[api]\nhost = "127.0.0.1"\nport = {port}\n\n'
        f'[[api.tills]]\ntill_id = "till-1"\ntoken_sha256 = "{token_digest(token)}"\n',
        encoding="utf-8",
    )
    agent = subprocess.Popen(
        [str(EDGE_AGENT), "--config", str(tmp_path / "agent.toml"), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        health = wait_for_health(url, agent)
        assert health.status_code == 200
        tasks = health.json()["tasks"]
        assert {name: t["state"] for name, t in tasks.items()} == {
            "config_reload": "running",  # serve --config reloads the file on SIGHUP
            "pos_api": "running",
            "print_worker": "running",
            "wal_checkpoint": "running",
            "housekeeping": "running",
        }
        till = httpx.get(
            f"{url}/v1/members/M1/linked-codes",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert till.status_code == 200, till.text
        assert Path(f"{cache}-wal").exists()  # the cache is open, in WAL mode
        agent.send_signal(signal.SIGTERM)
        output, _ = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate()
    assert agent.returncode == 0, output
    assert "SIGTERM received" in output and "agent stopped cleanly" in output, output
    assert "Traceback" not in output, output
    # Every connection was closed: SQLite checkpointed the WAL into the file and removed it.
    assert not Path(f"{cache}-wal").exists()
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
