"""The points ledger at HQ in the demo: balances migrated from an old programme, a customer
merge, the member's ledger page and balance from the ledger API (the real ``storeside-hq
ledger-api`` server, over HTTP, with an operator token), an expiry run, and the programme's
liability with its breakage forecast (the same function as ``storeside-hq points liability``)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from cloud_sync.hq.ledger import expiry_run, operations
from cloud_sync.hq.ledger_api import operator_tokens
from demo.narration import money, say, step
from demo.sync import HqLink, free_port
from edge_agent.domain.points.accounts import MemberAccount
from edge_agent.domain.points.admission import Admitted

PROGRAMME = "main"
OLD_CARD = "member-07"  # Alice's card from the old programme, to merge into her account
LAPSED = "bob"  # migrated points he never used
VALIDITY = timedelta(days=365)
WAIT_S = 30.0


@contextmanager
def ledger_api(work: Path) -> Iterator[httpx.Client]:
    """``storeside-hq ledger-api`` on loopback, and a client holding an operator's token."""
    token_file = work / "ledger-api.token"
    operator_tokens.create(token_file)  # storeside-hq ledger-api-token --file
    token = token_file.read_text(encoding="ascii").strip()
    port = free_port()
    args = [
        sys.executable, "-m", "cloud_sync.hq.cli", "ledger-api", "--events",
        str(work / "events.db"), "--bind", f"127.0.0.1:{port}", "--token-file", str(token_file),
    ]  # fmt: skip
    log = work / "ledger-api.log"
    with log.open("wb") as out:
        server = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603 (our own CLI, as an operator runs it)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as c:
            deadline = time.monotonic() + WAIT_S
            while True:
                try:
                    c.get("/openapi.json")
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        why = log.read_text(encoding="utf-8", errors="replace")
                        raise RuntimeError(f"ledger-api did not start: {why}") from None
                    time.sleep(0.1)
            yield c
    finally:
        server.terminate()
        server.wait(10)


def hq_points_story(
    link: HqLink, *, work: Path, member: str, box_heard: Callable[[], None]
) -> None:
    """HQ's side; ``box_heard`` waits for the store's box to hear the merged balance."""
    now = datetime.now(UTC)
    migrated_at = now - timedelta(days=400)
    step("HQ migrates two members' balances from the old programme (storeside-hq points import)")
    for holder, points in ((OLD_CARD, 300), (LAPSED, 500)):
        account = MemberAccount(PROGRAMME, holder)
        link.store.run(
            partial(operations.import_balance, account=account, points=points, at=migrated_at,
                    now=now)
        )  # fmt: skip
        say(f"   {holder}: {points} points, dated {migrated_at:%Y-%m-%d}")

    step(f"{OLD_CARD} was Alice's old card: HQ merges it into her account (points merge)")
    merged = link.store.run(
        lambda tx: operations.merge(
            tx, programme=PROGRAMME, victim=OLD_CARD, survivor=member, at=now, now=now
        )
    )
    if not isinstance(merged, Admitted):
        raise RuntimeError(f"the merge was not booked: {merged}")
    say(f"   booked {merged.event.event_id}: both ledgers stay, "
        f"{OLD_CARD}'s last entry moves its 300 to {member}")  # fmt: skip
    box_heard()

    with ledger_api(work) as api:
        step(f"HQ's ledger API: GET /v1/members/{member}/ledger (newest first, last 7 days)")
        page = _get(api, f"/v1/members/{member}/ledger")
        for e in page["entries"]:
            where = f"{e['store']} {e['till']}" if e["till"] else e["channel"]
            say(f"   {e['at'][11:19]}  {e['kind']:<14} {e['side']:<6} {e['signed']:>+5}  {where}")
        closing = page["closing"]
        total = _get(api, f"/v1/members/{member}/balance")["total"]
        say(f"   closing balance {closing['closing_balance']} (opening {closing['opening_balance']}"
            f" + the view's {closing['view_net']:+d}); GET .../balance: {total}")  # fmt: skip

        step("HQ's expiry run (points expire --validity-days 365): oldest points first")
        done = expiry_run.run(link.store, now=now, validity=VALIDITY, pause_s=0)
        say(
            f"   {done.members} members holding points looked at, {done.expired_accounts} "
            f"account expired, {done.points} points ({LAPSED}'s migrated points, never used)"
        )

        step("What the programme owes (GET /v1/programmes/main/liability = points liability)")
        owed = _get(api, f"/v1/programmes/{PROGRAMME}/liability")
        say(f"   {owed['outstanding']} points outstanding, face {money(owed['face_minor'])}, "
            f"valued {money(owed['value_minor'])} after breakage (books: liability "
            f"{owed['liability_account']}, breakage {owed['breakage_account']})")  # fmt: skip
        for c in owed["cohorts"]:
            f = c["forecast"]
            say(f"   cohort {f['month']} (first credit): {f['members']} member(s), "
                f"{f['outstanding']} points outstanding, {f['burned']} burned and {f['expired']} "
                f"expired so far; breakage {f['breakage_bp'] / 100:g}% -> "
                f"{money(c['value_minor'])}")  # fmt: skip
        say(f"   (breakage at the 95th percentile liability of {owed['runs']:,} Monte-Carlo runs: "
            "prudent, so a cohort of one member keeps its points at face)")  # fmt: skip


def _get(api: httpx.Client, path: str) -> Any:
    return api.get(path).raise_for_status().json()
