"""The composition root: config in, a running agent out. The only place that wires parts.

Later issues add the hardware drivers and the MQTT link here; nothing else imports them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI

from config.model import AgentConfig
from config.printer import PrinterConfig
from edge_agent.api.app import create_app
from edge_agent.api.auth import TillAuthenticator
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.trusted_keys import TrustedKeys
from edge_agent.domain.coupon_token import CouponSigner
from edge_agent.domain.throttle import ThrottleConfig
from edge_agent.issuing import signing_key
from edge_agent.issuing.print_hook import print_on_issue
from edge_agent.issuing.service import IssueService
from edge_agent.printing import print_queue
from edge_agent.printing.layout import Layout
from edge_agent.printing.print_queue import RetryPolicy
from edge_agent.printing.print_worker import PrintWorker
from edge_agent.printing.printer_port import ReceiptPrinter
from edge_agent.redemption.service import RedemptionService
from edge_agent.runtime.db_thread import DbThread
from edge_agent.runtime.housekeeping import checkpoint_task, housekeeping_task
from edge_agent.runtime.pos_server import PosServer
from edge_agent.runtime.print_task import print_worker_task
from edge_agent.runtime.supervisor import Supervisor, TaskSpec
from edge_agent.runtime.timer import Timer
from edge_agent.services import StoreServices
from hardware.printer.escpos_printer import EscposPrinter
from hardware.printer.sim_printer import SimulatedPrinter

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _signer(cfg: AgentConfig, *, warn: bool) -> CouponSigner | None:
    path = Path(cfg.signing.key_path)
    if not path.exists():
        if warn:
            log.warning("no coupon signing key at %s: receipt coupons are off", path)
        return None
    return signing_key.load_signer(path, store_id=cfg.store.store_id)


def open_services(cfg: AgentConfig, *, receipts: bool = True) -> StoreServices:
    """Open the cache named by ``cfg`` and every service over it (without receipt issuing
    when ``receipts`` is False: staff commands that only check or redeem codes)."""
    path = Path(cfg.cache.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache = CodeCache.open(path, store_id=cfg.store.store_id)
    fmt = cfg.code_format.to_format()
    signer = _signer(cfg, warn=receipts)
    own = signer.trusted_key() if signer is not None and cfg.signing.trust_own_key else None
    r = cfg.redemption
    redemption = RedemptionService(
        cache,
        fmt=fmt,
        hold=timedelta(seconds=r.hold_seconds),
        throttle=ThrottleConfig(
            max_failures=r.till_failure_limit,
            window=timedelta(seconds=r.till_failure_window_s),
            cooldown=timedelta(seconds=r.till_cooldown_s),
        ),
        trusted_keys=TrustedKeys(cache.conn, own=own),
    )
    issuing = None
    if signer is not None and receipts:
        issuing = IssueService(
            cache,
            fmt=fmt,
            expected_namespace=cfg.store.namespace,
            policy=cfg.receipt_offers.to_policy(),
            sign=signer.sign,
            on_issued=print_on_issue(
                header_lines=cfg.printer.header_lines, reminder=cfg.printer.reminder
            ),
        )
    return StoreServices(cache=cache, redemption=redemption, issuing_service=issuing)


@dataclass(frozen=True, slots=True, kw_only=True)
class Agent:
    """The wired agent: the POS API app and its server, the cache's thread, the printer and its
    worker, and the supervisor that runs them (``run``) on one loop."""

    cfg: AgentConfig
    app: FastAPI
    db: DbThread
    printer: ReceiptPrinter
    print_worker: PrintWorker
    pos_server: PosServer
    supervisor: Supervisor
    clock: Callable[[], datetime]

    def tasks(self, *, sockets: list[socket.socket] | None = None) -> list[TaskSpec]:
        """What the supervisor runs, in shutdown order: the API first (no new work can arrive
        behind a stopped worker), then the printer, then the timers on the cache."""
        c = self.cfg.cache
        timer = self.supervisor.timer
        return [
            self.pos_server.task(sockets=sockets),
            print_worker_task(self.print_worker),
            checkpoint_task(self.db, every_s=c.checkpoint_interval_s, timer=timer),
            housekeeping_task(
                self.db,
                every_s=c.housekeeping_interval_s,
                retention=timedelta(days=c.retention_days),
                clock=self.clock,
                timer=timer,
            ),
        ]

    async def run(
        self, *, sockets: list[socket.socket] | None = None, signals: bool = False
    ) -> int:
        """Run every task until stopped (0) or a core task fails (1). Runs once."""
        return await self.supervisor.run(self.tasks(sockets=sockets), signals=signals)

    def close(self) -> None:
        """After ``run``: close the cache (its last connection, so SQLite checkpoints the WAL
        into the file)."""
        self.db.close()


def make_printer(cfg: PrinterConfig) -> ReceiptPrinter:
    if cfg.kind == "simulated":
        return SimulatedPrinter()
    return EscposPrinter.from_config(cfg)


def build_app(
    cfg: AgentConfig,
    *,
    clock: Callable[[], datetime] = utc_now,
    printer: ReceiptPrinter | None = None,
    timer: Timer | None = None,
) -> Agent:
    """Wire the agent. ``printer`` overrides the configured one (tests, demo); ``timer`` paces
    the supervisor's restarts and the periodic jobs (a fake one in tests)."""
    p = cfg.printer
    db = DbThread(lambda: open_services(cfg))
    the_printer = printer if printer is not None else make_printer(p)
    # The worker has its own SQLite connection (WAL allows it) and its own thread: printers
    # block for seconds when they fail, and must never hold up a till's request.
    worker = PrintWorker(
        connect=lambda: print_queue.connect(Path(cfg.cache.path)),
        printer=the_printer,
        render=Layout(p).render,
        clock=clock,
        policy=RetryPolicy(
            base=timedelta(seconds=p.retry_base_s),
            cap=timedelta(seconds=p.retry_cap_s),
            give_up_after=timedelta(seconds=p.give_up_after_s),
            lease=timedelta(seconds=p.lease_s),
        ),
    )
    supervisor = Supervisor(timer=timer)
    app = create_app(
        db=db,
        auth=TillAuthenticator(cfg.api.tills),
        store_id=cfg.store.store_id,
        clock=clock,
        wake_printer=worker.wake,
        task_states=supervisor.states,
    )
    return Agent(
        cfg=cfg,
        app=app,
        db=db,
        printer=the_printer,
        print_worker=worker,
        pos_server=PosServer(app, host=cfg.api.host, port=cfg.api.port),
        supervisor=supervisor,
        clock=clock,
    )


def serve(cfg: AgentConfig) -> int:
    """Run the agent until SIGTERM/SIGINT (0) or a core failure (1): systemd restarts it."""
    if not cfg.api.tills:
        log.warning("no tills configured: every POS API call will be refused (401)")
    agent = build_app(cfg)
    try:
        # uvicorn's choice of loop (uvloop when installed: about 20% off every till request).
        with asyncio.Runner(loop_factory=agent.pos_server.config.get_loop_factory()) as runner:
            return runner.run(agent.run(signals=True))
    finally:
        agent.close()
