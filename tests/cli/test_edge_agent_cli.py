"""`edge-agent` as staff and scripts use it: a real process over a real cache file."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.load import load_config
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cli.main import build_parser, parse_line
from edge_agent.cli.support import UsageError
from edge_agent.domain.basket import Basket
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.decision import ValidationRequest
from edge_agent.domain.promotion import Member
from edge_agent.wiring import open_services
from tests.cache import factories
from tests.cache.factories import A, B

ROOT = Path(__file__).resolve().parents[2]


def seed(cache_path: Path, *, synced: bool) -> None:
    """A cache valid around the real clock: the CLI acts at the wall-clock time."""
    now = datetime.now(UTC)
    cache = CodeCache.open(cache_path, store_id=factories.STORE)
    cache.put_campaign(
        factories.promotion(starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=14))
    )
    cache.put_member(Member(member_id="M1"))
    cache.put_member(Member(member_id="M2"))
    cache.put_codes(
        [
            CodeRecord(code=A, campaign_id="C1", member_id="M1"),
            CodeRecord(code=B, campaign_id="C1", member_id="M2"),
        ]
    )
    if synced:
        cache.set_synced_at(now)
    cache.close()


def write_config(tmp_path: Path, *, synced: bool) -> Path:
    cache = tmp_path / "cache.db"
    seed(cache, synced=synced)
    path = tmp_path / "agent.toml"
    path.write_text(f'[store]\nstore_id = "{factories.STORE}"\n[cache]\npath = "{cache}"\n')
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, synced=False)


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli.main", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_stale_cache_is_refused_with_its_reason(config: Path) -> None:
    line = "--line=SKU1:food:2:1500"
    # The cache was never synced, so the offline policy refuses: the CLI says why, exit 1.
    stale = run(config, "validate", A, "--member", "M1", line)
    assert stale.returncode == 1
    assert "CACHE_STALE" in stale.stdout


def test_validate_and_redeem_on_a_synced_cache(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, synced=True)
    line = "--line=SKU1:food:2:1500"
    ok = run(cfg, "validate", A, "--member", "M1", line)
    assert ok.returncode == 0, ok.stderr
    assert "ACCEPTED" in ok.stdout and "-5.00" in ok.stdout
    wrong = run(cfg, "validate", B, "--member", "M1", line, "--json")
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)[0]["reason"] == "WRONG_MEMBER"
    redeemed = run(cfg, "redeem", A, "--member", "M1", line, "--txn", "T-9")
    assert redeemed.returncode == 0, redeemed.stderr
    assert "redeemed" in redeemed.stdout
    again = run(cfg, "redeem", A, "--member", "M1", line, "--txn", "T-10")
    assert again.returncode == 1 and "ALREADY_REDEEMED" in again.stdout
    status = run(cfg, "status", A, "--json")
    assert json.loads(status.stdout)["uses"] == 1
    back = run(cfg, "reverse", A, "--txn", "T-9", "--return-id", "R-1", "--amount", "100")
    assert back.returncode == 0 and "4.00 still credited" in back.stdout


def test_user_mistakes_are_one_line_and_exit_2(config: Path, tmp_path: Path) -> None:
    bad_line = run(config, "validate", A, "--line", "SKU1:food:two:1500")
    assert bad_line.returncode == 2
    assert bad_line.stderr.startswith("edge-agent: --line")
    unknown = run(config, "status", "SSK7AAAAAAA")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[store]\nstor_id = 1\n")
    cfg_err = run(broken, "config", "check")
    assert cfg_err.returncode == 2 and "store.stor_id" in cfg_err.stderr


def test_till_token_prints_a_usable_config_line(config: Path) -> None:
    out = run(config, "till-token", "till-9").stdout
    token = out.splitlines()[1].strip()
    digest = re.search(r'token_sha256 = "([0-9a-f]{64})"', out)
    assert digest is not None
    assert hashlib.sha256(token.encode()).hexdigest() == digest.group(1)


def test_parse_line() -> None:
    assert parse_line("milk:dairy:2:149:A").margin_band == "A"
    with pytest.raises(UsageError):
        parse_line("milk:dairy:0:149")


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"edge-agent {name}" in readme, f"README does not show `edge-agent {name}`"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The agent's own format; python-escpos's import-time basicConfig() would give
# "WARNING:edge_agent.wiring:..." instead.
AGENT_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING edge_agent\.wiring no tills configured"
)


def test_serve_logs_in_the_agent_format_although_escpos_is_imported(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, synced=True)
    cfg.write_text(cfg.read_text() + f"[api]\nport = {_free_port()}\n")
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli.main", "--config", str(cfg), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        assert agent.stderr is not None
        for line in agent.stderr:  # the warning comes before the server starts
            seen.append(line)
            if "no tills configured" in line:
                break
    finally:
        agent.terminate()
        agent.wait(10)
    warning = next(line for line in seen if "no tills configured" in line)
    assert AGENT_LOG_LINE.match(warning), seen


def test_version_is_the_installed_distributions() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli.main", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"edge-agent {importlib.metadata.version('storeside')}"


def test_status_json_carries_everything_the_text_shows(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, synced=True)
    line = "--line=SKU1:food:2:1500"
    assert run(cfg, "redeem", A, "--member", "M1", line, "--txn", "T-9").returncode == 0
    back = run(cfg, "reverse", A, "--txn", "T-9", "--return-id", "R-1", "--amount", "100")
    assert back.returncode == 0, back.stderr
    services = open_services(load_config(cfg), receipts=False)
    try:  # a live hold, as a till's reserve leaves it
        request = ValidationRequest(
            codes=(B,),
            store_id=factories.STORE,
            till_id="till-4",
            cashier_id="c-1",
            basket=Basket(lines=(parse_line("SKU1:food:2:1500"),)),
            now=datetime.now(UTC),
            member_id="M2",
            transaction_id="T-11",
        )
        services.redemption.reserve(request)
    finally:
        services.close()
    redeemed_a, held_b = _status_both_ways(cfg, A), _status_both_ways(cfg, B)
    assert len(redeemed_a["redemptions"]) == 1 and len(redeemed_a["history"]) >= 2
    assert len(held_b["holds"]) == 1


def _status_both_ways(cfg: Path, code: str) -> dict[str, Any]:
    """``status CODE`` as text and as JSON; asserts each piece of the text is in the JSON."""
    text = run(cfg, "status", code).stdout
    data: dict[str, Any] = json.loads(run(cfg, "status", code, "--json").stdout)
    head, *rest = text.splitlines()
    assert head.split() == [
        data["code"],
        "campaign",
        data["campaign_id"],
        "for",
        data["member_id"] or data["linked_member_id"] or "anyone",
        data["status"],
        "uses",
        str(data["uses"]),
    ]
    held = [r for r in rest if r.strip().startswith("held by")]
    redeemed = [r for r in rest if r.strip().startswith("redeemed")]
    events = [r for r in rest if r.strip().startswith("#")]
    assert len(held) == len(data["holds"])
    assert len(redeemed) == len(data["redemptions"])
    assert len(events) == len(data["history"])
    for shown, hold in zip(held, data["holds"], strict=True):
        assert f"till {hold['till_id']} for {hold['transaction_id']}" in shown
        until = datetime.fromisoformat(hold["until"])
        assert str(until) in shown
    for shown, red in zip(redeemed, data["redemptions"], strict=True):
        assert f"at {red['store_id']}/{red['till_id']} txn {red['transaction_id']}" in shown
        assert f"-{red['amount'] // 100}.{red['amount'] % 100:02d}" in shown
        back = red["reversed_amount"]
        assert (f"(reversed {back // 100}.{back % 100:02d})" in shown) == bool(back)
        assert datetime.fromisoformat(red["redeemed_at"]).strftime("%Y-%m-%d %H:%M") in shown
    for shown, event in zip(events, data["history"], strict=True):
        at = datetime.fromisoformat(event["occurred_at"]).strftime("%Y-%m-%d %H:%M:%S")
        assert shown.split()[:4] == [f"#{event['seq']}", *at.split(), event["type"]]
        assert shown.strip().endswith(event["transaction_id"] or event["type"])
    return data


def test_load_snapshot_says_what_it_loaded_in_a_sentence_or_json(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, synced=False)
    snap = factories.write_snapshot(
        tmp_path / "snap.db",
        store_id=factories.STORE,
        created_at="2025-03-01T11:00:00+00:00",
        campaigns=[factories.promotion(), factories.generic_promotion()],
        members=[Member(member_id="M1"), Member(member_id="M2"), Member(member_id="M3")],
        codes=[factories.code_row(A), factories.code_row(B, member_id="M2")],
        namespace="23",
    )
    out = run(cfg, "load-snapshot", str(snap))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "Loaded snapshot format 2 from HQ at 2025-03-01 11:00 UTC: 2 codes, 2 campaigns, "
        f"3 members; namespace 23 assigned to {factories.STORE}."
    )
    data = json.loads(run(cfg, "load-snapshot", str(snap), "--json").stdout)
    assert data["format_version"] == "2" and data["namespace"] == "23"
    assert (data["codes"], data["campaigns"], data["members"]) == (2, 2, 3)
    assert data["created_at"] == "2025-03-01T11:00:00+00:00"
    bare = factories.write_snapshot(tmp_path / "bare.db", store_id=factories.STORE)
    none = run(cfg, "load-snapshot", str(bare)).stdout
    assert f"no minting namespace assigned to {factories.STORE}" in none
    assert "no receipt coupons" in none
