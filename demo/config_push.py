"""HQ configuring a store over the link in the demo: `storeside-hq config push` changes the
receipt offer at store 1 and the next receipt shows it; a config with mistakes is refused with
every field error, and nothing changes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from demo.narration import say, step
from demo.receipts import BASKET
from demo.sync import CONFIG_USER, HqLink
from edge_agent.wiring import Agent

WAIT_S = 30.0
NEW_TEXT = "A thank-you from HQ: {benefit} {scope} on your next visit, until {until}."
GOOD = f'[receipt_offers.champion]\ntext = "{NEW_TEXT}"\n'
BAD = '[receipt_offers.champion]\ntxet = "typo"\n\n[redemption]\ntill_failure_limit = -3\n'


def push_config(
    link: HqLink, work: Path, name: str, text: str, store_id: str
) -> subprocess.CompletedProcess[str]:
    path = work / name
    path.write_text(text, encoding="utf-8")
    ca = link.broker.ca_cert
    args = [
        sys.executable, "-m", "cloud_sync.hq.cli", "config", "push", str(path),
        "--store", store_id, "--db", str(work / "events.db"), "--hq-key", str(link.hq_key_file),
        "--broker", link.broker.url, "--username", CONFIG_USER,
        "--password-file", str(link.config_password_file),
        *([] if ca is None else ["--cafile", str(ca)]),
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603 (our own CLI, as an operator runs it)


def _champion_text(agent: Agent) -> str | None:
    offer = agent.cfg.receipt_offers.champion
    return None if offer is None else offer.text


def config_story(link: HqLink, agent: Agent, url: str, token: str, *, work: Path) -> None:
    step("HQ pushes store-001 a config: new receipt text for champions (storeside-hq config push)")
    say(f'   offers.toml: [receipt_offers.champion] text = "{NEW_TEXT}"')
    started = time.monotonic()
    done = push_config(link, work, "offers.toml", GOOD, "store-001")
    if done.returncode != 0:
        raise RuntimeError(f"storeside-hq config push failed: {done.stderr.strip()}")
    say("   HQ: " + done.stdout.strip().splitlines()[-1])
    while _champion_text(agent) != NEW_TEXT:
        if time.monotonic() - started > WAIT_S:
            raise RuntimeError("the box did not apply HQ's config")
        time.sleep(0.05)
    took = time.monotonic() - started
    say("   store-001 checked HQ's signature and the version and applied it live, "
        f"{took:.1f} s after the command started (answered on config_result)")  # fmt: skip
    body = {"transaction_id": "R-7001", "cashier_id": "cashier-7", "member_id": "chen",
            "basket": BASKET}  # fmt: skip
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as till:
        coupon = till.post("/v1/receipt-coupons", json=body, timeout=10).json()["coupon"]
    say(f"   the next receipt (Chen, a champion): {coupon['offer_text']}")

    step("HQ tries a config with a typo'd key and an out-of-range value")
    refused = push_config(link, work, "bad.toml", BAD, "store-001")
    for line in refused.stderr.strip().splitlines():
        say(f"   {line.replace(str(work) + '/', '')}")
    say(f"   exit status {refused.returncode}; the box would refuse it the same way, and "
        "nothing changed")  # fmt: skip
    assert _champion_text(agent) == NEW_TEXT
