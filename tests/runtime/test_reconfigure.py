"""``Agent.reconfigure`` on real parts: the real uvicorn server on loopback, a real cache file,
the real print worker thread, the simulated printer and the real python-escpos driver talking
to the loopback TCP printer sink. Each test changes the config of an agent while tills talk to
it, and checks what the tills (and the printer) see."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from config.model import AgentConfig
from edge_agent.api.auth import new_token, token_digest
from edge_agent.issuing import signing_key
from edge_agent.printing import print_queue as pq
from edge_agent.printing.printer_port import ReceiptPrinter
from edge_agent.runtime.background import serving
from edge_agent.runtime.reconfigure import Reconfigured, Status
from edge_agent.runtime.timer import LoopTimer
from edge_agent.wiring import Agent, build_app, utc_now
from hardware.printer.escpos_printer import EscposPrinter
from hardware.printer.sim_printer import SimulatedPrinter
from hardware.printer.tcp_sink import PrinterSink
from tests.cache import factories
from tests.printing.factories import queue_job

GUESSES = [f"SSK7{c * 6}2" for c in "ABCDEFGH"]  # a wrong check character: guess-like
BASKET = {"lines": [{"sku": "tea", "category": "drinks", "quantity": 3, "unit_price": 450}]}


def config(tmp_path: Path, *, tokens: dict[str, str], **sections: Any) -> AgentConfig:
    tills = [{"till_id": t, "token_sha256": token_digest(tok)} for t, tok in tokens.items()]
    api = {**sections.pop("api", {}), "tills": tills}
    # The test's own file, whatever else the test sets in [cache] (never the default var/).
    cache = {**sections.pop("cache", {}), "path": str(tmp_path / "cache.db")}
    return AgentConfig.model_validate(
        {"store": {"store_id": factories.STORE}, "cache": cache, "api": api, **sections}
    )


class RecordingTimer(LoopTimer):
    """Real waiting; records every interval asked for (the timers' re-arming shows in it)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


@contextmanager
def running(
    cfg: AgentConfig,
    *,
    printer: ReceiptPrinter | None = None,
    timer: LoopTimer | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Iterator[tuple[Agent, str]]:
    factories.open_cache(Path(cfg.cache.path)).close()  # campaigns, members and codes
    agent = build_app(cfg, printer=printer, timer=timer, clock=clock)
    try:
        with serving(agent) as url:
            yield agent, url
    finally:
        agent.close()


def reconfigure(agent: Agent, cfg: AgentConfig) -> Reconfigured:
    """``agent.reconfigure`` on the agent's own loop, from the test's thread."""
    loop = agent.supervisor.loop
    assert loop is not None
    return asyncio.run_coroutine_threadsafe(agent.reconfigure(cfg), loop).result(30)


def till(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def answer_to(url: str, token: str) -> int:
    with till(url, token) as t:
        return t.get("/v1/members/M1/linked-codes").status_code


def tasks_of(url: str) -> dict[str, Any]:
    tasks: dict[str, Any] = httpx.get(f"{url}/v1/health", timeout=5).json()["tasks"]
    return tasks


def reason_of(t: httpx.Client, code: str) -> str | None:
    body = {"codes": [code], "cashier_id": "c-1", "member_id": "M1", "basket": BASKET}
    decision = t.post("/v1/validate", json=body).json()["decisions"][0]
    return None if decision["ok"] else str(decision["reason"])


def wait_for(check: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_tills_change_while_running_old_token_refused_new_one_accepted(tmp_path: Path) -> None:
    old, new = new_token(), new_token()
    cfg = config(tmp_path, tokens={"till-1": old})
    changed = config(tmp_path, tokens={"till-2": new})
    with running(cfg) as (agent, url):
        assert (answer_to(url, old), answer_to(url, new)) == (200, 401)
        outcome = reconfigure(agent, changed)
        assert outcome.status is Status.APPLIED, outcome
        assert [c.path for c in outcome.diff.changes] == ["api.tills"]
        assert outcome.diff.changes[0].detail == "till-2 added, till-1 removed"
        assert (answer_to(url, old), answer_to(url, new)) == (401, 200)
        assert agent.cfg == changed
        tasks = tasks_of(url)
        assert tasks["pos_api"]["restarts"] == 0  # tills change without touching the server
        assert {t["state"] for t in tasks.values()} == {"running"}
        assert reconfigure(agent, changed).status is Status.UNCHANGED


def test_lower_throttle_limits_take_effect_and_failures_already_counted_still_count(
    tmp_path: Path,
) -> None:
    token = new_token()
    cfg = config(tmp_path, tokens={"till-1": token}, redemption={"till_failure_limit": 10})
    stricter = cfg.model_copy(
        update={"redemption": cfg.redemption.model_copy(update={"till_failure_limit": 4})}
    )
    with running(cfg, clock=lambda: factories.NOW) as (agent, url), till(url, token) as t:
        assert [reason_of(t, g) for g in GUESSES[:3]] == ["MALFORMED"] * 3
        assert reason_of(t, factories.A) is None  # 3 of 10: not throttled
        outcome = reconfigure(agent, stricter)
        assert outcome.status is Status.APPLIED, outcome
        assert [c.describe() for c in outcome.diff.changes] == [
            "redemption.till_failure_limit (10 -> 4) applied live: the redemption service is "
            "rebuilt between two requests; the tills' throttle state is kept, and holds already "
            "taken keep their expiry"
        ]
        # The fourth guess reaches the new limit only because the three before the change
        # still count: a change of limits hands a guessing till no fresh window.
        assert reason_of(t, GUESSES[3]) == "MALFORMED"
        assert reason_of(t, factories.A) == "TILL_THROTTLED"
        assert agent.db.call(lambda s: s.redemption.throttle.config.max_failures) == 4


def test_printer_switched_from_simulated_to_tcp_prints_the_queued_job_there(
    tmp_path: Path,
) -> None:
    fast = {"retry_base_s": 0.05, "retry_cap_s": 0.1}
    cfg = config(tmp_path, tokens={}, printer={"kind": "simulated", **fast})
    factories.open_cache(Path(cfg.cache.path)).close()
    conn = pq.connect(Path(cfg.cache.path))
    with conn:
        queue_job(conn, code="C-1", transaction_id="T-1")
    twin = SimulatedPrinter(reachable=False)  # the simulated printer is switched off
    sink = PrinterSink()
    network = {"kind": "network", "port": sink.port, "timeout_s": 0.5, **fast}
    try:
        with running(cfg, printer=twin) as (agent, url):
            wait_for(lambda: pq.open_jobs(conn)[0].last_error is not None, "a failed attempt")
            outcome = reconfigure(agent, config(tmp_path, tokens={}, printer=network))
            assert outcome.status is Status.APPLIED, outcome
            assert [c.path for c in outcome.diff.changes] == [
                "printer.kind",
                "printer.port",
                "printer.timeout_s",
            ]
            wait_for(lambda: pq.open_jobs(conn) == [], "the queued job printed")
            assert isinstance(agent.printer, EscposPrinter) and agent.printer.port == sink.port
            worker = tasks_of(url)["print_worker"]
            assert (worker["state"], worker["restarts"]) == ("running", 1)
        sink.settle()
        with sink.lock:
            printed = b"".join(sink.state.connections)
        assert b"SS-22K7-HQ2PM" in printed  # the queued coupon, on the TCP printer
        assert twin.printed == []
    finally:
        conn.close()
        sink.close()


def test_a_change_that_needs_a_restart_is_refused_whole_and_nothing_changes(
    tmp_path: Path,
) -> None:
    old, new = new_token(), new_token()
    cfg = config(tmp_path, tokens={"till-1": old})
    moved = config(tmp_path, tokens={"till-2": new}, api={"port": 9999})
    with running(cfg) as (agent, url):
        outcome = reconfigure(agent, moved)
        assert outcome.status is Status.REFUSED
        assert outcome.problems == (
            "api.port (8470 -> 9999) needs a restart: the POS API's socket is bound at start",
        )
        assert [c.path for c in outcome.diff.live] == ["api.tills"]  # refused along with it
        assert (answer_to(url, old), answer_to(url, new)) == (200, 401)
        assert agent.cfg == cfg
        assert {t["restarts"] for t in tasks_of(url).values()} == {0}


def test_timers_are_re_armed_with_their_new_intervals(tmp_path: Path) -> None:
    timer = RecordingTimer()
    cfg = config(tmp_path, tokens={}, cache={"checkpoint_interval_s": 30})
    with running(cfg, timer=timer) as (agent, url):
        faster = config(tmp_path, tokens={}, cache={"checkpoint_interval_s": 7.5})
        assert reconfigure(agent, faster).status is Status.APPLIED
        wait_for(lambda: 7.5 in timer.sleeps, "the checkpoint timer re-armed")
        tasks = tasks_of(url)
        assert tasks["wal_checkpoint"]["restarts"] == 1
        assert tasks["housekeeping"]["restarts"] == 0  # untouched
        assert tasks["print_worker"]["restarts"] == 0


def test_receipt_offers_change_for_the_next_checkout(tmp_path: Path) -> None:
    token = new_token()
    key = tmp_path / "store.key"
    signing_key.create(key)
    cfg = config(tmp_path, tokens={"till-1": token}, signing={"key_path": str(key)})
    off = cfg.model_copy(
        update={"receipt_offers": cfg.receipt_offers.model_copy(update={"enabled": False})}
    )

    def checkout(t: httpx.Client, txn: str) -> str:
        body = {"transaction_id": txn, "cashier_id": "c-1", "member_id": "M1", "basket": BASKET}
        return str(t.post("/v1/receipt-coupons", json=body).json()["reason"])

    with running(cfg) as (agent, url), till(url, token) as t:
        before = checkout(t, "T-1")
        assert before != "DISABLED"  # offers are on (this seeded cache has none to give)
        assert reconfigure(agent, off).status is Status.APPLIED
        assert checkout(t, "T-2") == "DISABLED"
        assert agent.db.call(lambda s: s.signer is not None)  # the key loaded at start, reused


def test_an_agent_that_is_not_running_refuses_and_keeps_its_config(tmp_path: Path) -> None:
    cfg = config(tmp_path, tokens={"till-1": new_token()})
    agent = build_app(cfg)
    try:
        outcome = asyncio.run(agent.reconfigure(config(tmp_path, tokens={})))
    finally:
        agent.close()
    assert outcome.status is Status.REFUSED
    assert outcome.problems == ("the agent is not running",)
    assert agent.cfg == cfg
