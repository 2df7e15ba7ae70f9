"""The CLI refuses what the POS API refuses: its arguments are checked with the same field
definitions (``edge_agent.fields``), as one line on stderr naming the argument, exit 2, before
anything is opened or written. A real process over a real cache file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.fields import MAX_MINOR_UNITS, MAX_QUANTITY
from tests.cache.factories import A
from tests.cli.test_edge_agent_cli import run, write_config

LINE = "--line=SKU1:food:2:1500"


@pytest.fixture
def synced(tmp_path: Path) -> Path:
    return write_config(tmp_path, synced=True)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["redeem", A, "--member", "M1", LINE, "--txn", "T 1"], "--txn"),
        (["redeem", A, "--member", "M 1", LINE, "--txn", "T-1"], "--member"),
        (["redeem", A, "--member", "M1", LINE, "--txn", "T-1", "--till", "till 1"], "--till"),
        (["redeem", A, "--member", "M1", LINE, "--txn", "T-1", "--cashier", ""], "--cashier"),
        (["validate", A, "--line", ":food:1:100"], "--line"),
        (["validate", A, "--line", "SKU 1:food:1:100"], "--line"),
        (["validate", A, "--line", f"SKU1:food:{MAX_QUANTITY + 1}:100"], "--line"),
        (["validate", A, "--line", f"SKU1:food:1:{MAX_MINOR_UNITS + 1}"], "--line"),
        (["validate", A, "--line", "SKU1::1:100"], "--line"),
        (["validate", "X" * 257], "CODE"),
        (["reverse", A, "--txn", "T-1", "--return-id", "R 1"], "--return-id"),
        (["reverse", A, "--txn", "T-1", "--return-id", "R-1", "--amount", "0"], "--amount"),
        (
            ["reverse", A, "--txn", "T-1", "--return-id", "R-1", "--amount", str(10**9)],
            "--amount",
        ),
        (["void", "--txn", "T 1"], "--txn"),
        (["link", A, "M 2"], "MEMBER"),
        (["status", ""], "CODE"),
        (["till-token", "till 9"], "TILL_ID"),
    ],
)
def test_arguments_the_api_would_refuse_are_exit_2_naming_them(
    synced: Path, args: list[str], named: str
) -> None:
    r = run(synced, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"edge-agent: {named} "), lines[0]
    assert r.stdout == ""


def test_refused_arguments_change_nothing(synced: Path) -> None:
    assert run(synced, "redeem", A, "--member", "M1", LINE, "--txn", "T 1").returncode == 2
    assert json.loads(run(synced, "status", A, "--json").stdout)["uses"] == 0
    # what the API accepts, the CLI accepts (text is converted: the quantity 2, the amount 100)
    ok = run(synced, "redeem", A, "--member", "M1", LINE, "--txn", "T-1")
    assert ok.returncode == 0, ok.stderr
    back = run(synced, "reverse", A, "--txn", "T-1", "--return-id", "R-1", "--amount", "100")
    assert back.returncode == 0, back.stderr
