"""The composition root: config in, a running agent out. The only place that wires parts.

It also rewires them: ``Agent.reconfigure`` takes a new config and rebuilds, while the agent
runs, what the change touches (the till authenticator, the services on the DB thread, the
print worker and its printer, the timers), after ``config.diff`` has said every change can be
made live. The builders here serve both the start and the rebuild, so a part is built one way.

Later issues add the hardware drivers and the MQTT link here; nothing else imports them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from fastapi import FastAPI

from cloud_sync.contract.config_result import FieldError
from config.diff import PRESENCE_LIVE, ConfigDiff, diff_configs
from config.model import AgentConfig
from config.presence import ReaderConfig, ScannerConfig
from config.printer import PrinterConfig
from edge_agent.api.app import create_app
from edge_agent.api.auth import TillAuthenticator
from edge_agent.cache import integrity, member_identities
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.trusted_keys import TrustedKeys
from edge_agent.config_push import kept_push
from edge_agent.config_push.config_follower import ConfigFollower, with_kept_overlay
from edge_agent.config_push.health_check import check_health
from edge_agent.config_push.kept_push import KeptPush
from edge_agent.domain.coupon_token import CouponSigner
from edge_agent.domain.throttle import ThrottleConfig
from edge_agent.domain.token_codec import public_key_from_text
from edge_agent.follow import hq_keys
from edge_agent.issuing import signing_key
from edge_agent.issuing.minter import Minter
from edge_agent.issuing.print_hook import print_on_issue
from edge_agent.issuing.service import IssueService
from edge_agent.points.service import PointsService
from edge_agent.presence.ble_port import BeaconScanner, KeepFilter
from edge_agent.presence.frames.beacon_filter import BeaconFilter
from edge_agent.presence.nfc_port import TagReader
from edge_agent.presence.rotating_id_resolver import RotatingIdResolver
from edge_agent.presence.tap_identify import CardEnrolment
from edge_agent.printing import print_queue
from edge_agent.printing.layout import Layout
from edge_agent.printing.print_queue import RetryPolicy
from edge_agent.printing.print_worker import PrintWorker
from edge_agent.printing.printer_port import ReceiptPrinter
from edge_agent.proximity.presence_loop import Identities, PresenceLoop, ReaderPlace, log_recorded
from edge_agent.proximity.service import PresenceMoment, ProximityService, Recorded
from edge_agent.proximity.shelf_screen import ShelfScreen, ShelfScreens
from edge_agent.proximity.till_members import TillMembers
from edge_agent.redemption.service import RedemptionService
from edge_agent.runtime.db_thread import DbThread
from edge_agent.runtime.housekeeping import checkpoint_task, housekeeping_task
from edge_agent.runtime.pos_server import PosServer
from edge_agent.runtime.presence_tasks import Presence
from edge_agent.runtime.print_task import print_worker_task
from edge_agent.runtime.reconfigure import Reconfigured, Status, reload_task
from edge_agent.runtime.supervisor import Kind, NotRunningError, Supervisor, TaskSpec, describe
from edge_agent.runtime.sync_task import sync_task
from edge_agent.runtime.systemd_task import systemd_tasks
from edge_agent.runtime.timer import Timer
from edge_agent.services import StoreServices
from edge_agent.sync.credentials import read_password
from edge_agent.sync.hq_trust import HqTrust
from edge_agent.sync.outbox_pump import ConfigInbox, OutboxPump, PumpIdentity
from hardware.ble.bleak_scanner import BleakBeaconScanner
from hardware.ble.sim_scanner import SimBeaconScanner, load_scenario
from hardware.nfc.nfcpy_reader import NfcpyReader
from hardware.nfc.sim_reader import Scenario, SimulatedReader
from hardware.printer.escpos_printer import EscposPrinter
from hardware.printer.sim_printer import SimulatedPrinter
from hardware.screen.http_screen import HttpShelfScreen
from hardware.screen.sim_screen import SimShelfScreen

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
    cache = CodeCache.open(path, store_id=cfg.store.store_id, box_id=cfg.store.box_id)
    signer = _signer(cfg, warn=receipts)
    return StoreServices(
        cache=cache,
        redemption=redemption_service(cache, cfg, signer),
        issuing_service=issue_service(cache, cfg, signer) if receipts else None,
        signer=signer,
        proximity=proximity_service(cache, cfg, signer) if receipts else None,
        points_service=points_service(cache, cfg),
    )


def points_service(cache: CodeCache, cfg: AgentConfig) -> PointsService | None:
    """Points at the till over ``cache``; None when points are off (the routes answer 503)."""
    if not cfg.points.enabled:
        return None
    return PointsService(cache, policy=cfg.points.to_policy(), programme=cfg.points.programme)


def proximity_service(
    cache: CodeCache, cfg: AgentConfig, signer: CouponSigner | None
) -> ProximityService | None:
    """Proximity offers over ``cache``; None when presence is off or without a signing key."""
    if not cfg.presence.enabled or signer is None:
        return None
    return ProximityService(
        cache,
        policy=cfg.presence.to_policy(),
        minter=Minter(
            cache, fmt=cfg.code_format.to_format(), expected_namespace=cfg.store.namespace
        ),
        sign=signer.sign,
    )


def redemption_service(
    cache: CodeCache, cfg: AgentConfig, signer: CouponSigner | None
) -> RedemptionService:
    own = signer.trusted_key() if signer is not None and cfg.signing.trust_own_key else None
    r = cfg.redemption
    return RedemptionService(
        cache,
        fmt=cfg.code_format.to_format(),
        hold=timedelta(seconds=r.hold_seconds),
        throttle=ThrottleConfig(
            max_failures=r.till_failure_limit,
            window=timedelta(seconds=r.till_failure_window_s),
            cooldown=timedelta(seconds=r.till_cooldown_s),
        ),
        trusted_keys=TrustedKeys(cache.conn, own=own),
    )


def issue_service(
    cache: CodeCache, cfg: AgentConfig, signer: CouponSigner | None
) -> IssueService | None:
    """Receipt issuing over ``cache``; None without a signing key (no coupons, 503)."""
    if signer is None:
        return None
    return IssueService(
        cache,
        fmt=cfg.code_format.to_format(),
        expected_namespace=cfg.store.namespace,
        policy=cfg.receipt_offers.to_policy(),
        sign=signer.sign,
        on_issued=print_on_issue(
            header_lines=cfg.printer.header_lines, reminder=cfg.printer.reminder
        ),
    )


# What ``make_printer`` reads: a change to one of these needs a new printer object; the others
# (template, QR, retries...) only a new worker around the same one.
_DEVICE_FIELDS = frozenset(
    {
        "kind", "host", "port", "timeout_s", "usb_vendor_id", "usb_product_id", "usb_in_ep",
        "usb_out_ep", "serial_device", "serial_baudrate", "file_path", "profile",
        "paper_width_mm", "query_status",
    }
)  # fmt: skip
# The presence fields that change the offers' policy live (config/diff.py).
_PRESENCE_POLICY = tuple(f"presence.{name}" for name in PRESENCE_LIVE)
# Printer fields read when a coupon is issued (its document), not when it is printed.
_ISSUED_WITH = ("printer.header_lines", "printer.reminder")


def make_printer(cfg: PrinterConfig) -> ReceiptPrinter:
    if cfg.kind == "simulated":
        return SimulatedPrinter()
    return EscposPrinter.from_config(cfg)


def make_scanner(cfg: ScannerConfig, keep: KeepFilter) -> BeaconScanner:
    if cfg.kind == "simulated":
        assert cfg.scenario is not None  # the config refuses a simulated scanner without one
        steps = load_scenario(Path(cfg.scenario).read_text(encoding="utf-8").splitlines())
        return SimBeaconScanner(keep=keep, scenario=steps)
    return BleakBeaconScanner(keep=keep, adapter=cfg.adapter, passive=cfg.passive)


def make_reader(cfg: ReaderConfig) -> TagReader:
    if cfg.kind == "simulated":
        assert cfg.scenario is not None  # the config refuses a simulated reader without one
        return SimulatedReader(reader_id=cfg.id, scenario=Scenario.load(Path(cfg.scenario)))
    return NfcpyReader(reader_id=cfg.id, path=cfg.path)


def make_screen(url: str) -> ShelfScreen:
    return SimShelfScreen() if url == "simulated" else HttpShelfScreen(url)


def _read_identities(last: int | None, services: StoreServices) -> Identities | None:
    """On the DB thread: the cache's presence identities, when they changed since ``last``."""
    conn = services.cache.conn
    version = member_identities.identities_version(conn)
    if version == last:
        return None
    held = member_identities.read_identities(conn)
    cards = None
    if held.card_salt is not None:
        cards = CardEnrolment(salt=held.card_salt, members=dict(held.cards))
    return Identities(version=version, keys=held.keys, tags=held.tags, cards=cards)


def _hq_trust(cfg: AgentConfig, services: StoreServices) -> HqTrust:
    """On the DB thread: the HQ keys a member token may be signed by (none without a pin)."""
    text = cfg.sync.hq_public_key
    pinned = None if text is None else public_key_from_text(text)
    if pinned is None:
        return HqTrust(MappingProxyType({}))
    return HqTrust.pinned(pinned, hq_keys.read(services.cache.conn))


def make_presence(
    cfg: AgentConfig,
    db: DbThread,
    clock: Callable[[], datetime],
    scanners: Mapping[str, BeaconScanner] | None = None,
    readers: Mapping[str, TagReader] | None = None,
) -> Presence | None:
    """The presence parts of ``cfg`` (None when presence is off). ``scanners`` and ``readers``
    override the configured ones by id (tests, demo)."""
    p = cfg.presence
    if not p.enabled:
        return None
    b = p.beacons
    keep = BeaconFilter(
        ibeacon_uuids=b.ibeacon_uuids,
        eddystone_namespaces=[bytes.fromhex(n) for n in b.eddystone_namespaces],
        eddystone_eid=b.eddystone_eid,
        member_app=b.member_app,
    ).keep
    built = (
        {s.id: make_scanner(s, keep) for s in p.scanners} if scanners is None else dict(scanners)
    )
    policy = p.to_policy()

    async def ask(moment: PresenceMoment) -> tuple[Recorded, ...]:
        return await db.run(lambda s: () if s.proximity is None else s.proximity.consider(moment))

    async def poll(last: int | None) -> Identities | None:
        return await db.run(lambda s: _read_identities(last, s))

    async def trust() -> HqTrust:
        return await db.run(lambda s: _hq_trust(cfg, s))

    async def check_in(
        *, member_id: str, place: ReaderPlace, how: str, first_of_visit: bool
    ) -> None:
        def record(s: StoreServices) -> None:
            if s.proximity is None:
                log.warning("check-in of %s not recorded: no coupon signing key", member_id)
                return
            s.proximity.check_in(
                member_id=member_id,
                reader=place.reader_id,
                zone=place.zone or "",
                how=how,
                first_of_visit=first_of_visit,
                now=clock(),
            )

        await db.run(record)

    till_members = TillMembers(ttl=timedelta(seconds=p.till_member_ttl_s))
    shelf = ShelfScreens(
        {z.id: make_screen(z.screen_url) for z in p.zones if z.screen_url is not None}
    )

    def on_recorded(recorded: Recorded) -> None:
        log_recorded(recorded)
        shelf.on_recorded(recorded)

    loop = PresenceLoop(
        tracker=p.to_tracker_config(),
        policy=policy,
        make_resolver=lambda keys, tags: RotatingIdResolver(
            keys, tags=tags, exponent=b.rotation_exponent, skew_periods=b.skew_periods
        ),
        visit_gap_s=p.visit_gap_min * 60.0,
        ask=ask,
        clock=clock,
        till_members=till_members,
        trust=trust,
        check_in=check_in,
        on_recorded=on_recorded,
    )
    made = {
        r.id: readers[r.id] if readers and r.id in readers else make_reader(r) for r in p.readers
    }
    return Presence(
        cfg=p,
        loop=loop,
        till_members=till_members,
        scanners=built,
        readers={
            r.id: (ReaderPlace(reader_id=r.id, till=r.till, zone=r.zone), made[r.id])
            for r in p.readers
        },
        poll_identities=poll,
        shelf=shelf,
    )


def make_print_worker(
    cfg: AgentConfig, printer: ReceiptPrinter, clock: Callable[[], datetime]
) -> PrintWorker:
    p = cfg.printer
    # The worker has its own SQLite connection (WAL allows it) and its own thread: printers
    # block for seconds when they fail, and must never hold up a till's request.
    return PrintWorker(
        connect=lambda: print_queue.connect(Path(cfg.cache.path)),
        printer=printer,
        render=Layout(p).render,
        clock=clock,
        policy=RetryPolicy(
            base=timedelta(seconds=p.retry_base_s),
            cap=timedelta(seconds=p.retry_cap_s),
            give_up_after=timedelta(seconds=p.give_up_after_s),
            lease=timedelta(seconds=p.lease_s),
        ),
    )


def make_pump(
    cfg: AgentConfig,
    db: DbThread,
    *,
    printer_state: Callable[[], str],
    clock: Callable[[], datetime],
    config_inbox: ConfigInbox | None = None,
    devices_state: Callable[[], str | None] = lambda: None,
) -> OutboxPump:
    """The outbox pump of ``cfg``, its secrets read now (a restart of its task rereads them)."""
    password_file = cfg.sync.password_file
    if password_file is None:
        raise ValueError("sync.password_file is not set: the broker refuses a box without")
    return OutboxPump(
        db=db,
        open_cache=lambda: CodeCache.open(
            Path(cfg.cache.path), store_id=cfg.store.store_id, box_id=cfg.store.box_id
        ),
        cfg=cfg.sync,
        identity=PumpIdentity(
            store_id=cfg.store.store_id,
            box_id=cfg.store.box_id,
            key=signing_key.load(Path(cfg.signing.key_path)),
            agent_version=importlib.metadata.version("storeside"),
        ),
        password=read_password(Path(password_file)),
        printer_state=printer_state,
        clock=clock,
        config_inbox=config_inbox,
        devices_state=devices_state,
    )


def read_kept_push(cfg: AgentConfig) -> KeptPush:
    """What the cache of ``cfg`` keeps of HQ's config pushes (opened, read, closed)."""
    path = Path(cfg.cache.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache = CodeCache.open(path, store_id=cfg.store.store_id, box_id=cfg.store.box_id)
    try:
        return kept_push.read(cache.conn)
    finally:
        cache.close()


def _rebuild(services: StoreServices, cfg: AgentConfig, diff: ConfigDiff) -> None:
    """On the DB thread, as one job: the services ``diff`` touches, rebuilt over the same cache
    and swapped in last, so a failure before the swap leaves the running ones untouched."""
    redemption = services.redemption
    if diff.touches("redemption", "signing.trust_own_key"):
        redemption = redemption_service(services.cache, cfg, services.signer)
        redemption.throttle.carry_over(services.redemption.throttle)
    issuing = services.issuing_service
    if diff.touches("receipt_offers", *_ISSUED_WITH):
        issuing = issue_service(services.cache, cfg, services.signer)
    proximity = services.proximity
    if diff.touches(*_PRESENCE_POLICY):
        proximity = proximity_service(services.cache, cfg, services.signer)
    points = services.points_service
    if diff.touches("points"):
        points = points_service(services.cache, cfg)
    services.swap(
        redemption=redemption, issuing_service=issuing, proximity=proximity, points=points
    )


@dataclass(slots=True, kw_only=True)
class Agent:
    """The wired agent: the POS API app and its server, the cache's thread, the printer and its
    worker, and the supervisor that runs them (``run``) on one loop. ``reconfigure`` changes
    the running parts for a new config; ``cfg``, ``printer`` and ``print_worker`` then name
    the new ones."""

    cfg: AgentConfig
    app: FastAPI
    db: DbThread
    printer: ReceiptPrinter
    print_worker: PrintWorker
    pos_server: PosServer
    supervisor: Supervisor
    clock: Callable[[], datetime]
    pump: OutboxPump | None = None  # the running outbox pump, when sync is configured
    config_push: ConfigFollower | None = None  # HQ's config pushes (set by build_app)
    presence: Presence | None = None  # scanners, readers and the presence loop, when on
    _reconfiguring: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    # Where the POS API listens: the sockets handed in (systemd, the demo, tests), else config's.
    _api_address: tuple[str, int] | None = field(default=None, init=False, repr=False)

    def tasks(
        self,
        *,
        sockets: list[socket.socket] | None = None,
        signals: bool = False,
        reload_from: Path | None = None,
    ) -> list[TaskSpec]:
        """What the supervisor runs, in shutdown order: config reloads on SIGHUP when the
        agent owns the signals (first: none may start during shutdown), the API (no new work
        can arrive behind a stopped worker), then the printer, then the timers on the cache."""
        reload = [reload_task(reload_from, self._reload_file)] if signals else []
        if sockets:
            host, port = sockets[0].getsockname()[:2]
            self._api_address = (str(host), int(port))
        api = self._api_address or (self.cfg.api.host, self.cfg.api.port)
        return [
            # systemd's READY/WATCHDOG/STOPPING when it started us (first: STOPPING=1 leads)
            *systemd_tasks(serving=lambda: self.pos_server.started, api=api),
            *reload,
            self.pos_server.task(sockets=sockets),
            print_worker_task(self.print_worker),
            *self._push_tasks(self.cfg),
            *self._sync_tasks(self.cfg),
            *self._timer_tasks(self.cfg),
            *([] if self.presence is None else self.presence.tasks()),
        ]

    def _push_tasks(self, cfg: AgentConfig) -> list[TaskSpec]:
        """HQ's config pushes, taken by a task of their own beside the pump (a push may
        restart the pump; this task goes on), when the config names HQ's broker."""
        follower = self.config_push
        if follower is None or cfg.sync.broker_url is None:
            return []
        return [TaskSpec(name="config_push", kind=Kind.CORE, run=follower.run)]

    async def _reload_file(self, file_cfg: AgentConfig) -> Reconfigured:
        """SIGHUP: the file read again, with HQ's last good overlay over it."""
        follower = self.config_push
        return await self.reconfigure(file_cfg if follower is None else follower.rebased(file_cfg))

    async def _health_after_push(self, cfg: AgentConfig, diff: ConfigDiff) -> list[FieldError]:
        api = self._api_address or (cfg.api.host, cfg.api.port)
        return await check_health(
            cfg,
            api=api,
            pump_connected=lambda: self.pump is not None and self.pump.connected,
            broker_timeout_s=cfg.sync.push_check_s,  # the pushed config's own allowance
            printer_changed=diff.touches("printer"),
        )

    def _publish_config_result(self, payload: bytes) -> bool:
        pump = self.pump
        return pump is not None and pump.publish_config_result(payload)

    def _sync_tasks(self, cfg: AgentConfig) -> list[TaskSpec]:
        """The outbox pump, when the config names HQ's broker."""
        if cfg.sync.broker_url is None:
            return []
        return [sync_task(lambda: self._make_pump(cfg))]

    def _make_pump(self, cfg: AgentConfig) -> OutboxPump:
        self.pump = make_pump(
            cfg,
            self.db,
            printer_state=self._printer_state,
            clock=self.clock,
            config_inbox=self.config_push,
            devices_state=self._devices_state,
        )
        return self.pump

    def _devices_state(self) -> str | None:
        return None if self.presence is None else self.presence.summary()

    def _printer_state(self) -> str:
        status = self.supervisor.states().get("print_worker")
        if status is None:
            return "unknown"
        return (
            status.state.value
            if status.last_error is None
            else (f"{status.state.value}: {status.last_error}")
        )

    def _timer_tasks(self, cfg: AgentConfig) -> list[TaskSpec]:
        c, timer = cfg.cache, self.supervisor.timer
        return [
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
        self,
        *,
        sockets: list[socket.socket] | None = None,
        signals: bool = False,
        reload_from: Path | None = None,
    ) -> int:
        """Run every task until stopped (0) or a core task fails (1). Runs once. With
        ``signals``, SIGTERM/SIGINT stop it and SIGHUP re-reads ``reload_from`` and applies it
        (``reconfigure``)."""
        tasks = self.tasks(sockets=sockets, signals=signals, reload_from=reload_from)
        return await self.supervisor.run(tasks, signals=signals)

    async def reconfigure(self, new: AgentConfig) -> Reconfigured:
        """Apply ``new`` to the running agent, on its loop; refused whole or applied whole.

        ``diff_configs`` decides first: a change that needs a restart refuses the whole config
        and nothing is touched. Then whatever can fail is built aside (the printer, its
        worker), and the DB thread rebuilds the services the diff touches and swaps them in
        one job of its own (``_rebuild``): between two requests, same cache, the tills'
        throttle state carried over. A failure up to here refuses the config, and nothing has
        changed. What follows cannot fail and runs without awaiting: the context every
        request reads is replaced (a new ``TillAuthenticator``, so an old token is refused
        from the next request on; the new worker's wake-up) and ``cfg`` becomes ``new``. Then
        the supervisor ends the old print worker (the job it is printing finishes) and starts
        the new one, which takes the queue as it is; timers whose interval changed are
        re-armed. A till sees each part change between two of its requests; the services may
        change one request before the tokens do. One reconfigure runs at a time."""
        async with self._reconfiguring:
            diff = diff_configs(self.cfg, new)
            if not diff.applicable_live:
                return Reconfigured.needs_restart(diff)
            if not diff.changes:
                return Reconfigured(status=Status.UNCHANGED)
            if not self.supervisor.running:
                return Reconfigured.refused(["the agent is not running"], diff)
            worker = None
            if any(c.section == "printer" and c.path not in _ISSUED_WITH for c in diff.changes):
                try:
                    worker = self._new_worker(new, diff)
                except Exception as exc:  # a driver refusing its settings: the config's fault
                    return Reconfigured.refused([f"printer: {describe(exc)}"], diff)
            try:
                await self.db.run(lambda s: _rebuild(s, new, diff))
            except Exception as exc:
                return Reconfigured.refused([f"services not rebuilt: {describe(exc)}"], diff)
            ctx = self.app.state.ctx
            self.app.state.ctx = dataclasses.replace(
                ctx,
                auth=TillAuthenticator(new.api.tills),
                wake_printer=ctx.wake_printer if worker is None else worker.wake,
            )
            self.cfg = new
            if self.presence is not None and diff.touches(*_PRESENCE_POLICY):
                self.presence.take_policy(new.presence)
            if not new.api.tills:
                log.warning("no tills configured: every POS API call will be refused (401)")
            await self._restart_tasks(worker, diff)
            return Reconfigured(status=Status.APPLIED, diff=diff)

    def _new_worker(self, cfg: AgentConfig, diff: ConfigDiff) -> PrintWorker:
        device = any(c.path.removeprefix("printer.") in _DEVICE_FIELDS for c in diff.changes)
        printer = make_printer(cfg.printer) if device else self.printer
        return make_print_worker(cfg, printer, self.clock)

    async def _restart_tasks(self, worker: PrintWorker | None, diff: ConfigDiff) -> None:
        checkpoint, housekeeping = self._timer_tasks(self.cfg)
        restarts = [] if worker is None else [print_worker_task(worker)]
        if diff.touches("cache.checkpoint_interval_s"):
            restarts.append(checkpoint)
        if diff.touches("cache.housekeeping_interval_s", "cache.retention_days"):
            restarts.append(housekeeping)
        if worker is not None:
            self.print_worker, self.printer = worker, worker.printer
        sync_changed = diff.touches("sync")
        try:
            for spec in restarts:
                await self.supervisor.replace(spec)
            if sync_changed:
                await self._restart_sync()
        except NotRunningError:  # shutdown began meanwhile: it stops what is there
            log.info("the agent is stopping: tasks of the new config not started")

    async def _restart_sync(self) -> None:
        """The pump reconnects with the new settings, or stops when sync was turned off."""
        specs = self._sync_tasks(self.cfg)
        running = "sync" in self.supervisor.states()
        if specs and running:
            await self.supervisor.replace(specs[0])
        elif specs:
            self.supervisor.add(specs[0])
            if "config_push" not in self.supervisor.states():
                for spec in self._push_tasks(self.cfg):
                    self.supervisor.add(spec)
        elif running:
            await self.supervisor.remove("sync")
            self.pump = None

    def close(self) -> None:
        """After ``run``: close the cache (its last connection, so SQLite checkpoints the WAL
        into the file)."""
        self.db.close()


def build_app(
    cfg: AgentConfig,
    *,
    clock: Callable[[], datetime] = utc_now,
    printer: ReceiptPrinter | None = None,
    timer: Timer | None = None,
    file_cfg: AgentConfig | None = None,
    kept: KeptPush | None = None,
    scanners: Mapping[str, BeaconScanner] | None = None,
    readers: Mapping[str, TagReader] | None = None,
) -> Agent:
    """Wire the agent. ``printer`` overrides the configured one (tests, demo); ``timer`` paces
    the supervisor's restarts and the periodic jobs (a fake one in tests). ``cfg`` is the
    config to run; ``file_cfg`` the file's, under HQ's overlay (default ``cfg``), and ``kept``
    what the cache keeps of HQ's pushes (``read_kept_push``); ``scanners`` replace the
    configured BLE scanners and NFC readers by id (tests, demo)."""
    db = DbThread(lambda: open_services(cfg))
    presence = make_presence(cfg, db, clock, scanners, readers)
    the_printer = printer if printer is not None else make_printer(cfg.printer)
    worker = make_print_worker(cfg, the_printer, clock)
    supervisor = Supervisor(timer=timer)
    app = create_app(
        db=db,
        auth=TillAuthenticator(cfg.api.tills),
        store_id=cfg.store.store_id,
        clock=clock,
        wake_printer=worker.wake,
        task_states=supervisor.states,
        till_members=None if presence is None else presence.till_members,
        presence_state=None if presence is None else presence.state,
    )
    agent = Agent(
        cfg=cfg,
        app=app,
        db=db,
        printer=the_printer,
        print_worker=worker,
        pos_server=PosServer(app, host=cfg.api.host, port=cfg.api.port),
        supervisor=supervisor,
        clock=clock,
        presence=presence,
    )
    agent.config_push = ConfigFollower(
        store_id=cfg.store.store_id,
        box_id=cfg.store.box_id,
        base=cfg if file_cfg is None else file_cfg,
        kept=KeptPush() if kept is None else kept,
        on_cache=lambda fn: db.run(lambda s: fn(s.cache)),
        apply=agent.reconfigure,
        running=lambda: agent.cfg,
        health=agent._health_after_push,
        publish=agent._publish_config_result,
        clock=clock,
    )
    return agent


def serve(cfg: AgentConfig, *, config_path: Path | None = None) -> int:
    """Run the agent until SIGTERM/SIGINT (0) or a core failure (1): systemd restarts it.
    SIGHUP (``systemctl reload``) re-reads ``config_path`` and applies what can change live.
    A damaged cache is set aside and replaced first (``cache/integrity.py``)."""
    path = Path(cfg.cache.path)
    integrity.check_at_start(
        path, store_id=cfg.store.store_id, box_id=cfg.store.box_id, now=utc_now()
    )
    with integrity.running(path):
        return _serve(cfg, config_path=config_path)


def _serve(cfg: AgentConfig, *, config_path: Path | None) -> int:
    kept = read_kept_push(cfg)
    running = with_kept_overlay(cfg, kept)  # HQ's last good config, over the file's
    if not running.api.tills:
        log.warning("no tills configured: every POS API call will be refused (401)")
    agent = build_app(running, file_cfg=cfg, kept=kept)
    try:
        # uvicorn's choice of loop (uvloop when installed: about 20% off every till request).
        with asyncio.Runner(loop_factory=agent.pos_server.config.get_loop_factory()) as runner:
            return runner.run(agent.run(signals=True, reload_from=config_path))
    finally:
        agent.close()
