"""The stores following HQ in the demo: HQ cuts each store a snapshot at its delta stream
position, the boxes load it while serving, and from then on what happens at one store or at
HQ reaches the others in seconds, signed by HQ."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.fanout import delta_log, producer
from cloud_sync.hq.fanout.central_journal import CentralJournal
from cloud_sync.hq.fanout.service import FanoutService
from cloud_sync.hq.snapshot import write_snapshot
from demo.narration import say, step
from demo.sync import CART, HqLink, redeem
from edge_agent.cache.code_cache import CodeCache
from edge_agent.wiring import Agent

WAIT_S = 30.0


@contextmanager
def fanning_out(link: HqLink, central: Path) -> Iterator[FanoutService]:
    service = FanoutService(
        login=link.fanout_login,
        store=link.store,
        journal=CentralJournal(central),  # storeside-hq fanout --hq-db
        key=link.hq_key,
        client_id="hq-fanout-1",
        interval_s=0.2,
    )
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), name="hq-fanout", daemon=True)
    thread.start()
    try:
        yield service
    finally:
        stop.set()
        thread.join(10)


def until(what: str, done: Callable[[], bool]) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > WAIT_S:
            raise RuntimeError(f"the demo waited {WAIT_S:.0f} s for {what}")
        time.sleep(0.02)
    return time.monotonic() - started


def _follows(agent: Agent) -> bool:
    said = None if agent.pump is None else agent.pump.follower.said
    return said is not None and said.stream is not None


def _validate(url: str, token: str, code: str, member: str) -> dict[str, Any]:
    body = {"codes": [code], "cashier_id": "cashier-1", "member_id": member,
            "basket": {"lines": CART}}  # fmt: skip
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as till:
        decision: dict[str, Any] = till.post("/v1/validate", json=body, timeout=10).json()[
            "decisions"
        ][0]
    return decision


def follow_story(
    link: HqLink,
    agents: dict[str, Agent],
    urls: dict[str, str],
    tokens: dict[str, dict[str, str]],
    codes: dict[str, str],
    *,
    work: Path,
) -> None:
    step("HQ's fan-out starts: every change HQ makes, and every redemption, as signed deltas")
    with fanning_out(link, work / "hq.db") as fanout:
        # As in production the fan-out runs before a store's snapshot is cut: what it read
        # of HQ's journal before then is in the snapshot, and is not sent again.
        took = until("the fan-out to read HQ's change journal", lambda: _journal_read(link, work))
        say(f"   it read HQ's change journal (mints, members, campaigns, keys) in {took:.1f} s")
        _snapshots(link, agents, work=work)
        for store_id, agent in agents.items():
            until(f"{store_id} to tell HQ where it stands", functools.partial(_follows, agent))
        s1, s2 = urls["store-001"], urls["store-002"]
        t1, t2 = tokens["store-001"]["till-1"], tokens["store-002"]["till-1"]

        step("A coupon redeemed at store 1 is refused at store 2 seconds later, naming store 1")
        member = "member-13"
        code = codes[member]
        said = redeem(s1, t1, code, member, "FOLLOW-1")
        say(f"   store-001 till-1: {member}'s coupon {code} -> {said}")
        took = until(
            "store-002 to refuse it",
            lambda: _validate(s2, t2, code, member).get("reason") == "ALREADY_REDEEMED",
        )
        decision = _validate(s2, t2, code, member)
        details = decision.get("details", {})
        say(
            f"   store-002 till-1, {took:.1f} s later: {decision['reason']}: "
            f"{decision['cashier_message']} (at {details.get('store_id')}, "
            f"{str(details.get('redeemed_at'))[:19]})"
        )

        step("HQ revokes a coupon; store 2 refuses it seconds later")
        member = "member-14"
        code = codes[member]
        before = _validate(s2, t2, code, member).get("reason") or "valid"
        with CentralStore.open(work / "hq.db") as central:
            central.revoke(code)  # storeside-hq revoke CODE
        say(f"   HQ: storeside-hq revoke {code} ({member}'s coupon, {before} until now)")
        took = until(
            "store-002 to refuse the revoked coupon",
            lambda: _validate(s2, t2, code, member).get("reason") == "REVOKED",
        )
        decision = _validate(s2, t2, code, member)
        say(
            f"   store-002 till-1, {took:.1f} s later: {decision['reason']}: "
            f"{decision['cashier_message']}"
        )
        say(f"   deltas sent by HQ so far: {fanout.published}")


def _journal_read(link: HqLink, work: Path) -> bool:
    with CentralStore.open(work / "hq.db") as central:
        (last,) = central.conn.execute("SELECT coalesce(max(id), 0) FROM changes").fetchone()
    return bool(link.store.run(producer.journal_cursor) >= last)


def _snapshots(link: HqLink, agents: dict[str, Agent], *, work: Path) -> None:
    step("HQ cuts each store a snapshot at its delta stream position; the boxes load it live")
    now = datetime.now(UTC)
    with CentralStore.open(work / "hq.db") as central:
        for store_id, agent in agents.items():
            cut = functools.partial(delta_log.follow_point, store_id=store_id, now=now)
            point = link.store.run(cut)
            path = work / f"{store_id}.follow.snapshot.db"
            write_snapshot(central, path, store_id, now=now, follow=point)  # snapshot --events
            # edge-agent load-snapshot beside the running agent: a connection of its own.
            beside = CodeCache.open(Path(agent.cfg.cache.path), store_id=store_id)
            loaded = beside.load_snapshot(path)
            beside.close()
            say(
                f"   {store_id}: {loaded.codes:,} codes; follows stream {point.stream[:8]}... "
                f"from delta {point.seq}"
            )
