"""An outbox pump on a loop of its own thread, over a real cache and DB thread, for tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from config.model import AgentConfig
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from edge_agent.issuing import signing_key
from edge_agent.runtime.db_thread import DbThread
from edge_agent.services import StoreServices
from edge_agent.wiring import make_pump, open_services

STORE = "store-001"


def box_config(
    tmp: Path, *, box: str, port: int, ca: Path | None, password: str, **sync: object
) -> AgentConfig:
    """A box of ``STORE`` (``store=`` names another), its ``[sync]`` section with ``sync``."""
    store = str(sync.pop("store", STORE))
    secret = tmp / f"{box}.mqtt-password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    key = tmp / f"{box}.key"
    if not key.exists():
        signing_key.create(key)
    scheme = "mqtts" if ca is not None else "mqtt"
    return AgentConfig.model_validate(
        {
            "store": {"store_id": store, "box_id": box},
            "cache": {"path": str(tmp / f"{box}.db")},
            "signing": {"key_path": str(key)},
            "sync": {
                "broker_url": f"{scheme}://127.0.0.1:{port}",
                "password_file": str(secret),
                "ca_file": None if ca is None else str(ca),
                "reconnect_min_s": 0.05,
                "reconnect_max_s": 0.5,
                **sync,
            },
        }
    )


def append_events(db: DbThread, count: int, *, start_at: datetime | None = None) -> int:
    """``count`` redemption events in one transaction; answers the last seq."""

    def write(s: StoreServices) -> int:
        last = 0
        with s.cache.transaction() as conn:
            for i in range(count):
                event = event_log.append(
                    conn,
                    box_id=s.cache.box_id,
                    type=EventType.REDEEMED,
                    occurred_at=start_at or datetime.now(UTC),
                    code=f"CODE{i}",
                    attribution=Attribution(store_id=STORE, till_id="till-1", cashier_id="c1"),
                    amount=100,
                    details={"use_limit": 1},
                )
                last = event.seq
        return last

    return db.call(write)


DEVICES = "ble coffee-scanner scanning; nfc till-1-reader absent: not_found"


class RunningPump:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.db = DbThread(lambda: open_services(cfg, receipts=False))
        # Built as `edge-agent serve` builds it, on a loop of the test's own.
        self.pump = make_pump(
            cfg,
            self.db,
            printer_state=lambda: "simulated",
            clock=lambda: datetime.now(UTC),
            devices_state=lambda: DEVICES,
        )
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._task = self.loop.create_task(self.pump.run())
        self._started.set()
        try:
            self.loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self.loop.close()

    def start(self) -> RunningPump:
        self._thread.start()
        self._started.wait(5)
        return self

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self.loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)
        self.db.close()


@contextmanager
def running(cfg: AgentConfig) -> Iterator[RunningPump]:
    pump = RunningPump(cfg).start()
    try:
        yield pump
    finally:
        pump.stop()
