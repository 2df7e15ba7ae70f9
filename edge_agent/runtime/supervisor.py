"""The supervisor: one asyncio loop, the agent's tasks on it, and what happens when one fails.

Theory of operation
-------------------
Every piece of background work is a named ``TaskSpec`` run on the supervisor's loop, of one of
two kinds (STYLE.md "One asyncio loop"):

* **device**: a driver for something that breaks in the field (a printer out of paper, later a
  BLE adapter or an NFC reader). When it raises, only it is restarted, after a capped, doubling
  delay (``Backoff``); a run that lasted ``healthy_after_s`` resets the count, so a device that
  fails once a day is retried quickly each time. Its state is kept for ``GET /v1/health``.
* **core**: everything else (the POS API server, housekeeping). An exception there is a bug or
  a broken box: the supervisor stops every task and ``run`` returns 1, so the process exits
  non-zero and systemd restarts it from a clean state. A core task that returns while nothing
  asked it to stop counts as a failure too: a server that quietly stopped serving is not well.

State of a task, as health shows it::

    running --raises (device)--> restarting --backoff elapsed--> running
    running --returns / stopped at shutdown--> stopped
    running --raises (core)--> failed  (and the whole run ends)

Shutdown (``stop()``, SIGTERM or SIGINT when ``signals=True``, or a core failure) goes through
the tasks in the order they were declared: each is asked to finish (its ``stop`` hook: uvicorn
stops accepting, lets in-flight requests complete), given ``grace_s``, then cancelled. Declare
the POS API first, so no till request can queue new work behind a stopped worker. What outlives
the tasks (the SQLite thread) is closed by the caller after ``run`` returns.

Changing tasks while running (a new config: ``Agent.reconfigure``): ``replace(spec)`` ends the
running task of that name the way shutdown ends it (stop hook, grace, cancel), then starts the
new spec in its place, counted in health as a restart with a clean slate (no last error, a
fresh backoff); ``restart(name)`` does that with the same spec; ``add(spec)`` starts a task that
was not there. A task being replaced that returns is stopped, not failed. None of them works
once shutdown has begun (``NotRunningError``): nothing would be there to stop the new task.

Time goes through a ``Timer`` (``edge_agent.runtime.timer``): tests use the fake one and never
wait for a real backoff.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from edge_agent.runtime.timer import LoopTimer, Timer

log = logging.getLogger(__name__)


class Kind(StrEnum):
    CORE = "core"
    DEVICE = "device"


class State(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    base_s: float = 1.0
    cap_s: float = 60.0
    healthy_after_s: float = 60.0  # a run at least this long resets the failure count

    def delay(self, failures: int) -> float:
        """Seconds to wait before restart number ``failures`` (1, 2, ...): base, 2x, 4x, cap."""
        return min(self.cap_s, self.base_s * 2.0 ** max(0, failures - 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    name: str
    kind: Kind
    run: Callable[[], Awaitable[None]]  # called again for every restart
    stop: Callable[[], None] | None = None  # "finish on your own" at shutdown, before cancel
    grace_s: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStatus:
    kind: Kind
    state: State
    restarts: int = 0
    last_error: str | None = None  # kept after a successful restart: it shows a flapping device
    retry_at: datetime | None = None  # while restarting


class NotRunningError(RuntimeError):
    """Tasks can be changed only while the supervisor runs, before shutdown begins."""


def describe(exc: BaseException) -> str:
    cause = exc.__cause__
    text = f"{type(exc).__name__}: {exc}"
    return text if cause is None else f"{text} (caused by {type(cause).__name__}: {cause})"


class Supervisor:
    """Runs a list of tasks once (``run``); ``states()`` is safe to read from the loop."""

    def __init__(self, *, timer: Timer | None = None) -> None:
        self.timer: Timer = timer if timer is not None else LoopTimer()
        self._states: dict[str, TaskStatus] = {}
        self._stop = asyncio.Event()
        self._stop_pending = False
        self._failed: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._specs: dict[str, TaskSpec] = {}  # in declaration order: the shutdown order
        self._handles: dict[str, asyncio.Task[None]] = {}
        self._retiring: set[str] = set()  # being ended by replace/shutdown: a return is a stop

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop ``run`` runs on (None before): other threads submit work to it."""
        return self._loop

    @property
    def running(self) -> bool:
        """Between ``run``'s start and the beginning of shutdown: tasks can be changed."""
        return self._loop is not None and not self._stop.is_set()

    def states(self) -> dict[str, TaskStatus]:
        return dict(self._states)

    def stop(self) -> None:
        """Begin a clean shutdown. Call it on the loop (signal handlers, tasks)."""
        self._stop.set()

    def stop_soon(self) -> None:
        """``stop`` from any thread, even before ``run`` has started."""
        self._stop_pending = True  # set before reading the loop: ``run`` checks in reverse order
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self.stop)

    async def run(self, tasks: Sequence[TaskSpec], *, signals: bool = False) -> int:
        """Run ``tasks`` until ``stop()`` or a core failure; 0 after a clean stop, else 1."""
        if self._loop is not None:
            raise RuntimeError("a supervisor runs once")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique: {names}")
        self._loop = asyncio.get_running_loop()
        if self._stop_pending:
            self.stop()
        handled = (signal.SIGTERM, signal.SIGINT) if signals else ()
        for sig in handled:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            for spec in tasks:
                self._specs[spec.name] = spec
                self._start(spec)
            await self._stop.wait()
        finally:
            await self._shutdown()
            for sig in handled:
                self._loop.remove_signal_handler(sig)
        if self._failed is not None:
            log.error("agent stopped: %s", self._failed)
            return 1
        log.info("agent stopped cleanly")
        return 0

    async def replace(self, spec: TaskSpec) -> None:
        """End the task named ``spec.name`` (see the module docstring) and run ``spec`` in its
        place; it keeps its place in the shutdown order. Returns once the new one is started."""
        old = self._running_spec(spec.name)
        if spec.kind is not old.kind:
            raise ValueError(f"task {spec.name} is {old.kind}; it cannot become {spec.kind}")
        restarts = self._states[spec.name].restarts + 1
        await self._end(old)
        if self._stop.is_set():  # shutdown began meanwhile: it has passed this task's turn
            raise NotRunningError(f"the agent is stopping: {spec.name} was not restarted")
        self._specs[spec.name] = spec
        self._start(spec, restarts=restarts)

    async def restart(self, name: str) -> None:
        """End the task ``name`` and start it again from its spec."""
        await self.replace(self._running_spec(name))

    def add(self, spec: TaskSpec) -> None:
        """Start a new task, last in the shutdown order."""
        self._check_running()
        if spec.name in self._specs:
            raise ValueError(f"task names must be unique: {spec.name} runs already")
        self._specs[spec.name] = spec
        self._start(spec)

    async def remove(self, name: str) -> None:
        """End the task ``name`` and forget it (a feature turned off by a new config)."""
        spec = self._running_spec(name)
        await self._end(spec)
        self._specs.pop(name, None)
        self._handles.pop(name, None)
        self._states.pop(name, None)

    # -- internals ----------------------------------------------------------------------------

    def _check_running(self) -> None:
        if not self.running:
            raise NotRunningError("the supervisor is not running (or is stopping)")

    def _running_spec(self, name: str) -> TaskSpec:
        self._check_running()
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"no task named {name}") from None

    def _start(self, spec: TaskSpec, *, restarts: int = 0) -> None:
        self._set(spec.name, TaskStatus(kind=spec.kind, state=State.RUNNING, restarts=restarts))
        self._handles[spec.name] = asyncio.create_task(self._supervise(spec), name=spec.name)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("%s received: shutting down", sig.name)
        self.stop()

    def _set(self, name: str, status: TaskStatus) -> None:
        self._states[name] = status

    def _update(self, name: str, **changes: object) -> None:
        self._states[name] = replace(self._states[name], **changes)  # type: ignore[arg-type]

    def _fail(self, spec: TaskSpec, error: str, exc: BaseException | None) -> None:
        log.error("core task %s failed (%s): stopping the agent", spec.name, error, exc_info=exc)
        self._update(spec.name, state=State.FAILED, last_error=error)
        if self._failed is None:
            self._failed = f"{spec.name}: {error}"
        self._stop.set()

    async def _supervise(self, spec: TaskSpec) -> None:
        try:
            if spec.kind is Kind.CORE:
                await self._run_core(spec)
            else:
                await self._run_device(spec)
        except asyncio.CancelledError:
            self._update(spec.name, state=State.STOPPED, retry_at=None)
            raise

    async def _run_core(self, spec: TaskSpec) -> None:
        try:
            await spec.run()
        except (Exception, SystemExit) as exc:  # SystemExit: uvicorn exits when it cannot bind
            self._fail(spec, describe(exc), exc)
            return
        if self._stop.is_set() or spec.name in self._retiring:  # asked to stop: a normal return
            self._update(spec.name, state=State.STOPPED)
        else:
            self._fail(spec, "returned while the agent was running", None)

    async def _run_device(self, spec: TaskSpec) -> None:
        failures = 0
        while True:
            started = self.timer.now()
            try:
                await spec.run()
            except Exception as exc:
                if self._stop.is_set() or spec.name in self._retiring:  # failing on the way down
                    self._update(spec.name, state=State.STOPPED, last_error=describe(exc))
                    return
                ran = (self.timer.now() - started).total_seconds()
                failures = 1 if ran >= spec.backoff.healthy_after_s else failures + 1
                delay = spec.backoff.delay(failures)
                retry_at = self.timer.now() + timedelta(seconds=delay)
                log.warning(
                    "device task %s failed (%s); restart in %.1f s",
                    spec.name,
                    describe(exc),
                    delay,
                    exc_info=exc,
                )
                self._update(
                    spec.name, state=State.RESTARTING, last_error=describe(exc), retry_at=retry_at
                )
                await self.timer.sleep(delay)
                status = self._states[spec.name]
                self._update(
                    spec.name, state=State.RUNNING, retry_at=None, restarts=status.restarts + 1
                )
                continue
            except SystemExit as exc:  # not a device fault: same rule as a core task
                self._fail(spec, describe(exc), exc)
                return
            self._update(spec.name, state=State.STOPPED)
            return

    async def _shutdown(self) -> None:
        self._stop.set()  # also when ``run`` itself is cancelled
        for spec in list(self._specs.values()):
            await self._end(spec)

    async def _end(self, spec: TaskSpec) -> None:
        """Ask the task to finish (its ``stop`` hook, ``grace_s``), then cancel it; wait."""
        task = self._handles.get(spec.name)
        if task is None or task.done():
            return
        self._retiring.add(spec.name)
        try:
            if spec.stop is not None and self._states[spec.name].state is State.RUNNING:
                spec.stop()
                await asyncio.wait({task}, timeout=spec.grace_s)
            if not task.done():
                task.cancel()
            # ``wait``, not ``await task``: the task's own cancellation is not re-raised here,
            # while a cancellation of the caller (a reconfigure cut off by shutdown) still is.
            await asyncio.wait({task})
        finally:
            self._retiring.discard(spec.name)
