"""`make demo` keeps telling its story: run it as a user would and check the answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_end_to_end() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "demo"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Traceback" not in done.stderr
    assert (ROOT / "var" / "demo" / "coupon.png").stat().st_size > 0
    for expected in (
        "ACCEPTED",
        "MALFORMED",
        "WRONG_MEMBER",
        "MIN_SPEND_NOT_MET",
        "NOT_COMBINABLE",
        "RESERVED_ELSEWHERE",
        "nothing redeemed twice: True",
        "ALREADY_REDEEMED",
        "MEMBER_LIMIT_REACHED",
        "TILL_THROTTLED",
        "HTTP 401",
        "pending sync",
        # the link to HQ
        "0 in outbox",
        "online   stored through",
        "disconnected, outbox",
        "double_redemption of",
        # receipt coupons
        "print: printed",
        "print_pending (paper_out",
        "paper refilled: printed",
        "FREQUENCY_CAPPED",
        "INVALID_SIGNATURE",
        "redeemed",
        "coupon.issued",
        # a config applied live, and one refused
        "till-3 after the change: HTTP 200",
        "refused: api.port",
        "the failure limit stays 20",
        # in-store presence
        "member.checked_in: chen, first of this visit: True",
        "offer.triggered for chen",
        "refused as stale (1)",
        "the coffee counter's screen shows: ",
        "the member app's backend got it, HMAC-signed: chen",
        "GET /v1/tills/till-1/member: chen (by card)",
        "applied without typing a code: -",
        # the points ledger
        "margin 55%  earns 120",  # band A: 24.00 at 5x
        "margin 10%  earns 0",  # band C earns nothing
        "HQ points post: taken 1, booked 1",
        "HQ's balance 160",
        "pasta-clearance  burn 125 = -1.50",  # band C: 1.2x face value
        "Return: 60 points taken back, 50 given back. Net -10",
        "offline_allowance_exceeded: 150 points asked, at most 105 allowed",
        "alice has 385 points there now",
        "closing balance 385",
        "1 account expired, 500 points",
        "385 points outstanding, face 3.85",
    ):
        assert expected in out, f"demo no longer shows {expected}"
