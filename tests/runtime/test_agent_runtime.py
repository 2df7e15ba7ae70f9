"""The wired agent under its supervisor, on real parts: a real cache file, the real uvicorn
server on loopback, the real print worker thread (over the in-memory printer twin)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from config.model import AgentConfig
from edge_agent.printing import print_queue as pq
from edge_agent.printing.printer_port import JobReport
from edge_agent.runtime.background import serving
from edge_agent.runtime.timer import LoopTimer
from edge_agent.wiring import build_app
from hardware.printer.sim_printer import SimulatedPrinter
from tests.printing.factories import queue_job_in


@dataclass
class BuggyPrinter(SimulatedPrinter):
    """Raises a plain bug (not a ``DeviceError``) on its first jobs: the worker's thread dies."""

    bugs: int = 1

    def print_job(self, data: bytes) -> JobReport:
        if self.bugs > 0:
            self.bugs -= 1
            raise RuntimeError("firmware parser bug")
        return super().print_job(data)


class HeldTimer(LoopTimer):
    """Real time, except that every sleep waits until ``release()``: a restart's backoff holds
    still while the test looks at health (the cache timers are held too, harmlessly)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._released = False
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self._event is None:
            self._event, self._loop = asyncio.Event(), asyncio.get_running_loop()
        if not self._released:
            await self._event.wait()
        await asyncio.sleep(seconds if seconds < 5 else 3600)

    def release(self) -> None:  # from the test's thread
        self._released = True
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)


def config(tmp_path: Path, **api: Any) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "store": {"store_id": "store-001"},
            "cache": {"path": str(tmp_path / "cache.db")},
            "api": api,
        }
    )


def wait_for(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def tasks_of(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/v1/health", timeout=5)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == "ok" and body["store_id"] == "store-001"  # the fields it had
    tasks: dict[str, Any] = body["tasks"]
    return tasks


def test_health_lists_every_supervised_task_running(tmp_path: Path) -> None:
    agent = build_app(config(tmp_path))
    try:
        with serving(agent) as url:
            tasks = tasks_of(url)
    finally:
        agent.close()
    assert set(tasks) == {"pos_api", "print_worker", "wal_checkpoint", "housekeeping"}
    assert tasks["pos_api"] == {
        "kind": "core",
        "state": "running",
        "restarts": 0,
        "last_error": None,
        "retry_at": None,
    }
    assert tasks["print_worker"]["kind"] == "device"
    assert {t["state"] for t in tasks.values()} == {"running"}


def test_a_crashed_print_worker_restarts_alone_and_health_shows_it(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    queue_job_in(Path(cfg.cache.path), code="C-1", transaction_id="T-1")
    printer = BuggyPrinter()
    timer = HeldTimer()
    agent = build_app(cfg, printer=printer, timer=timer)
    try:
        with serving(agent) as url:
            wait_for(lambda: tasks_of(url)["print_worker"]["state"] == "restarting", "restart")
            worker = tasks_of(url)["print_worker"]
            assert "firmware parser bug" in worker["last_error"]
            assert "PrintWorkerCrashedError" in worker["last_error"]
            assert datetime.fromisoformat(worker["retry_at"]) > datetime.now(UTC)
            assert tasks_of(url)["pos_api"]["state"] == "running"  # the till never noticed
            assert 1.0 in timer.sleeps  # the first restart waits the base delay

            timer.release()
            wait_for(lambda: tasks_of(url)["print_worker"]["restarts"] == 1, "the restart")
            wait_for(lambda: len(printer.printed) == 1, "the reprint")
            worker = tasks_of(url)["print_worker"]
            assert worker["state"] == "running" and worker["retry_at"] is None
    finally:
        agent.close()
    # The job the crash cut off was printed again, as a reprint, by the restarted worker.
    conn = pq.connect(Path(cfg.cache.path))
    jobs = pq.open_jobs(conn)
    conn.close()
    assert jobs == []


def test_a_core_task_failing_ends_the_run_non_zero(tmp_path: Path) -> None:
    # The POS API's port is taken: uvicorn cannot bind, so the core task fails at startup and
    # the supervisor stops the print worker and the timers and answers 1.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        agent = build_app(config(tmp_path, port=taken.getsockname()[1]))
        try:
            assert asyncio.run(asyncio.wait_for(agent.run(), timeout=30)) == 1
        finally:
            agent.close()
    states = agent.supervisor.states()
    assert states["pos_api"].state == "failed"
    assert "SystemExit" in (states["pos_api"].last_error or "")
    assert states["print_worker"].state == "stopped"
    assert not agent.print_worker.alive


def test_stopping_lets_an_in_flight_request_finish_before_the_worker_stops(
    tmp_path: Path,
) -> None:
    agent = build_app(config(tmp_path))
    events: list[str] = []

    # A route that takes a while, added to the real app for this test only: the request is in
    # flight when the agent is told to stop.
    @agent.app.get("/slow")
    async def slow() -> dict[str, bool]:
        events.append("request started")
        await asyncio.sleep(0.5)
        events.append(f"request done (print worker alive: {agent.print_worker.alive})")
        return {"ok": True}

    answers: list[httpx.Response] = []
    try:
        with serving(agent) as url:
            t = threading.Thread(target=lambda: answers.append(httpx.get(f"{url}/slow")))
            t.start()
            wait_for(lambda: events == ["request started"], "the request to start")
        # ``serving`` returned: the supervisor stopped, the way SIGTERM stops it.
        t.join(10)
    finally:
        agent.close()
    assert [a.status_code for a in answers] == [200]
    assert events == ["request started", "request done (print worker alive: True)"]
    assert not agent.print_worker.alive
    assert {s.state for s in agent.supervisor.states().values()} == {"stopped"}
