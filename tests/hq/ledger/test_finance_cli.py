"""The ``storeside-hq points ...`` and ``ledger-api`` commands: thin over the functions the
other tests check, so these check the wiring, the output and the refusals."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_sync.hq import cli
from cloud_sync.hq.finance import entries_csv
from cloud_sync.hq.finance.commands import add_commands, points_group
from cloud_sync.hq.ingest.event_store import EventStore
from tests.hq.ledger.history import History, build
from tests.points.factories import T0, P


@pytest.fixture
def history(store: EventStore) -> History:
    return build(store)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_points_commands(
    store: EventStore, history: History, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Trust auth on the tests' server: the location has no password to hide.
    db = ["--db", store.location, "--programme", P]
    status, out, _ = _run(capsys, "points", "liability", *db, "--seed", "9", "--json")
    assert status == 0
    doc = json.loads(out)
    held = sum(sum(history.ledger.member_balances(P, m).values()) for m in ("ann", "bob", "cy"))
    assert doc["seed"] == 9 and doc["member_balances"] == held
    status, out, _ = _run(capsys, "points", "liability", *db)
    assert status == 0 and out.splitlines()[1].startswith("cohort\t")
    status, out, _ = _run(capsys, "points", "breakage", *db, "--runs", "50")
    assert status == 0 and out.splitlines()[1].startswith("2025-03\t3\t")
    status, out, _ = _run(capsys, "points", "report", *db, "--from", T0.isoformat())
    assert status == 0 and out.startswith("campaign\tearned")
    target = tmp_path / "entries.csv"
    argv = ["points", "export", *db, "--from", T0.isoformat(), "--out", str(target)]
    assert _run(capsys, *argv)[0] == 0
    rows = entries_csv.parse(target.read_text(encoding="utf-8"))
    assert len(rows) == sum(len(e.postings) for e in history.booked)
    argv = ["points", "export", *db, "--from", "2025-03-02T00:00Z", "--to", "2025-03-01T00:00Z"]
    status, _, err = _run(capsys, *argv)
    assert status == 2 and "not before" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def token_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    path = tmp_path / "ops.token"
    assert _run(capsys, "ledger-api-token", "--file", str(path))[0] == 0
    assert _run(capsys, "ledger-api-token", "--file", str(path))[0] == 2  # never replaced
    yield path


def test_the_ledger_api_command_serves_on_loopback(
    tmp_path: Path, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.db"
    port = _free_port()
    token = token_file.read_text().strip()
    argv = ["--events", str(events), "--bind", f"127.0.0.1:{port}", "--token-file", str(token_file)]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    server = subprocess.Popen(
        [sys.executable, "-m", "cloud_sync.hq.cli", "ledger-api", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                refused = httpx.get(f"{base}/v1/members/ann/balance")
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert refused.status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        got = httpx.get(f"{base}/v1/members/ann/balance", headers=auth)
        assert got.status_code == 200 and got.json()["accounts"] == []
    finally:
        server.terminate()
        logs, _ = server.communicate(timeout=10)
    assert token not in logs and "401" in logs
    status, _, err = _run(
        capsys, "ledger-api", "--bind", "nowhere", "--token-file", str(token_file)
    )
    assert status == 2 and "HOST:PORT" in err


def test_the_points_group_is_shared_whoever_makes_it_first() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    points_group(sub).add_parser("expire")  # another part of the ledger, first
    add_commands(sub, cli._whole)
    assert parser.parse_args(["points", "expire"]).points_command == "expire"
    assert parser.parse_args(["points", "breakage"]).points_command == "breakage"
