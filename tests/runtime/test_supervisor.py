"""The supervisor's rules with fake tasks and the fake timer: pure asyncio, no real waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Awaitable, Callable

import pytest

from edge_agent.runtime.supervisor import (
    Backoff,
    Kind,
    NotRunningError,
    State,
    Supervisor,
    TaskSpec,
    TaskStatus,
)
from edge_agent.runtime.timer import FakeTimer


def run(coro: Awaitable[int]) -> int:
    async def main() -> int:
        return await asyncio.wait_for(coro, timeout=10)  # a broken rule fails, never hangs

    return asyncio.run(main())


async def forever() -> None:
    await asyncio.Event().wait()


def failing(
    times: int, then: Callable[[], Awaitable[None]] = forever
) -> Callable[[], Awaitable[None]]:
    """A task that raises on its first ``times`` runs, then runs ``then``."""
    calls = [0]

    async def task() -> None:
        calls[0] += 1
        if calls[0] <= times:
            raise OSError(f"device gone (run {calls[0]})")
        await then()

    return task


def device(name: str, fn: Callable[[], Awaitable[None]], **kw: object) -> TaskSpec:
    return TaskSpec(name=name, kind=Kind.DEVICE, run=fn, **kw)  # type: ignore[arg-type]


def core(name: str, fn: Callable[[], Awaitable[None]], **kw: object) -> TaskSpec:
    return TaskSpec(name=name, kind=Kind.CORE, run=fn, **kw)  # type: ignore[arg-type]


def test_backoff_doubles_from_base_up_to_the_cap() -> None:
    b = Backoff(base_s=0.5, cap_s=5)
    assert [b.delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 5, 5]


def test_a_failing_device_task_restarts_alone_with_capped_backoff() -> None:
    timer = FakeTimer()
    sup = Supervisor(timer=timer)
    seen: dict[str, object] = {}

    async def then() -> None:
        seen.update(sup.states())
        sup.stop()

    async def other() -> None:
        seen["other_runs"] = int(str(seen.get("other_runs", 0))) + 1
        await forever()

    backoff = Backoff(base_s=1, cap_s=5)
    tasks = [device("ble", failing(5, then), backoff=backoff), core("api", other)]
    assert run(sup.run(tasks)) == 0
    assert timer.sleeps == [1, 2, 4, 5, 5]
    assert seen["other_runs"] == 1  # the neighbour never noticed
    ble = seen["ble"]
    assert ble.state is State.RUNNING and ble.restarts == 5  # type: ignore[attr-defined]
    assert "device gone (run 5)" in ble.last_error  # type: ignore[attr-defined]
    assert sup.states()["ble"].state is State.STOPPED


def test_health_sees_restarting_with_the_error_and_the_retry_time() -> None:
    seen: list[TaskStatus] = []

    async def watcher() -> None:
        while sup.states()["printer"].state is not State.RESTARTING:
            await asyncio.sleep(0)
        seen.append(sup.states()["printer"])
        sup.stop()

    class HeldTimer(FakeTimer):
        async def sleep(self, seconds: float) -> None:
            self.sleeps.append(seconds)
            await forever()  # the watcher looks while the task waits to restart

    held = HeldTimer()
    sup = Supervisor(timer=held)
    assert run(sup.run([device("printer", failing(1)), core("watch", watcher)])) == 0
    status = seen[0]
    assert status.kind is Kind.DEVICE and status.restarts == 0
    assert status.last_error == "OSError: device gone (run 1)"
    assert status.retry_at is not None
    assert (status.retry_at - held.now()).total_seconds() == 1.0
    assert sup.states()["printer"].state is State.STOPPED  # cancelled while waiting
    assert sup.states()["printer"].retry_at is None


def test_a_long_healthy_run_resets_the_backoff() -> None:
    timer = FakeTimer()
    sup = Supervisor(timer=timer)
    runs = [0]

    async def flaky() -> None:
        runs[0] += 1
        if runs[0] > 4:
            sup.stop()
            await forever()
        timer.advance(120)  # ran fine for two minutes, then broke
        raise OSError("adapter reset")

    assert run(sup.run([device("nfc", flaky, backoff=Backoff(healthy_after_s=60))])) == 0
    assert timer.sleeps == [1, 1, 1, 1]


def test_a_core_task_that_raises_stops_everything_and_the_run_fails() -> None:
    sup = Supervisor(timer=FakeTimer())
    cancelled = []

    async def neighbour() -> None:
        try:
            await forever()
        except asyncio.CancelledError:
            cancelled.append("printer")
            raise

    async def bug() -> None:
        await asyncio.sleep(0)
        raise KeyError("a bug")

    assert run(sup.run([device("printer", neighbour), core("housekeeping", bug)])) == 1
    assert cancelled == ["printer"]
    states = sup.states()
    assert states["housekeeping"].state is State.FAILED
    assert states["housekeeping"].last_error == "KeyError: 'a bug'"
    assert states["printer"].state is State.STOPPED


def test_a_core_task_that_returns_on_its_own_is_a_failure() -> None:
    async def quits() -> None:
        return None

    sup = Supervisor(timer=FakeTimer())
    assert run(sup.run([core("api", quits)])) == 1
    assert sup.states()["api"].state is State.FAILED


def test_system_exit_in_a_task_is_a_failure_not_an_exit_of_the_loop() -> None:
    async def cannot_bind() -> None:
        raise SystemExit(1)  # what uvicorn does when the port is taken

    sup = Supervisor(timer=FakeTimer())
    assert run(sup.run([core("api", cannot_bind), device("p", forever)])) == 1


def test_shutdown_asks_each_task_in_order_then_cancels_what_is_left() -> None:
    order: list[str] = []
    api_done = asyncio.Event()

    async def api() -> None:
        await api_done.wait()
        order.append("api finished in-flight work")

    async def printer() -> None:
        try:
            await forever()
        except asyncio.CancelledError:
            order.append("printer cancelled")
            raise

    def stop_api() -> None:
        order.append("api asked to stop")
        api_done.set()

    sup = Supervisor(timer=FakeTimer())

    async def main() -> int:
        asyncio.get_running_loop().call_soon(sup.stop)
        return await sup.run([core("api", api, stop=stop_api), device("printer", printer)])

    assert run(main()) == 0
    assert order == ["api asked to stop", "api finished in-flight work", "printer cancelled"]
    assert {s.state for s in sup.states().values()} == {State.STOPPED}


def test_a_task_that_ignores_its_stop_hook_is_cancelled_after_its_grace() -> None:
    sup = Supervisor(timer=FakeTimer())

    async def main() -> int:
        asyncio.get_running_loop().call_soon(sup.stop)
        return await sup.run([core("stuck", forever, stop=lambda: None, grace_s=0.01)])

    assert run(main()) == 0
    assert sup.states()["stuck"].state is State.STOPPED


def test_a_device_failing_on_the_way_down_is_not_restarted() -> None:
    timer = FakeTimer()
    sup = Supervisor(timer=timer)
    release = asyncio.Event()

    async def breaks_when_stopped() -> None:
        await release.wait()
        raise OSError("closed under me")

    async def main() -> int:
        asyncio.get_running_loop().call_soon(sup.stop)
        spec = device("p", breaks_when_stopped, stop=release.set)
        return await sup.run([spec])

    assert run(main()) == 0
    assert timer.sleeps == []
    assert sup.states()["p"].state is State.STOPPED


def test_stop_soon_from_another_thread_even_before_run() -> None:
    sup = Supervisor(timer=FakeTimer())
    t = threading.Thread(target=sup.stop_soon)
    t.start()
    t.join()
    assert run(sup.run([device("p", forever)])) == 0


def test_sigterm_stops_the_run_cleanly() -> None:
    sup = Supervisor(timer=FakeTimer())

    async def sends_sigterm() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        await forever()

    before = signal.getsignal(signal.SIGTERM)
    assert run(sup.run([core("api", sends_sigterm)], signals=True)) == 0
    assert signal.getsignal(signal.SIGTERM) == before  # handlers are handed back


def test_names_are_unique_and_a_supervisor_runs_once() -> None:
    sup = Supervisor(timer=FakeTimer())
    with pytest.raises(ValueError, match="unique"):
        run(sup.run([device("p", forever), device("p", forever)]))
    sup = Supervisor(timer=FakeTimer())
    sup.stop()
    assert run(sup.run([])) == 0
    with pytest.raises(RuntimeError, match="once"):
        run(sup.run([]))


# -- changing tasks while running (a new config) ----------------------------------------------


def test_replace_ends_the_old_task_as_shutdown_would_and_starts_the_new_one() -> None:
    sup = Supervisor(timer=FakeTimer())
    order: list[str] = []
    old_done = asyncio.Event()

    async def old() -> None:
        await old_done.wait()  # returns when asked to: a stop, not a failure
        order.append("old finished")

    async def new() -> None:
        order.append("new running")
        seen.update(sup.states())
        sup.stop()
        await forever()

    def stop_old() -> None:
        order.append("old asked to stop")
        old_done.set()

    seen: dict[str, TaskStatus] = {}

    async def reconfigure() -> None:
        await sup.replace(core("timer", new))
        order.append("replaced")
        await forever()

    tasks = [core("timer", old, stop=stop_old), core("reconfigure", reconfigure)]
    assert run(sup.run(tasks)) == 0  # the old one returning did not fail the run
    assert order == ["old asked to stop", "old finished", "replaced", "new running"]
    assert seen["timer"].state is State.RUNNING and seen["timer"].restarts == 1
    assert sup.states()["timer"].state is State.STOPPED


def test_replacing_a_restarting_device_cuts_its_backoff_and_starts_clean() -> None:
    seen: list[TaskStatus] = []

    class HeldTimer(FakeTimer):
        async def sleep(self, seconds: float) -> None:
            self.sleeps.append(seconds)
            await forever()  # the backoff would never end on its own

    sup = Supervisor(timer=HeldTimer())

    async def new_printer() -> None:
        seen.append(sup.states()["printer"])
        sup.stop()
        await forever()

    async def reconfigure() -> None:
        while sup.states()["printer"].state is not State.RESTARTING:
            await asyncio.sleep(0)
        await sup.replace(device("printer", new_printer))
        await forever()

    assert run(sup.run([device("printer", failing(99)), core("reconfigure", reconfigure)])) == 0
    (status,) = seen
    assert status.state is State.RUNNING and status.restarts == 1
    assert status.last_error is None and status.retry_at is None  # the old printer's error


def test_restart_runs_the_same_spec_again_and_add_starts_a_new_task() -> None:
    sup = Supervisor(timer=FakeTimer())
    runs: list[str] = []

    async def job() -> None:
        runs.append("job")
        await forever()

    async def sync() -> None:
        runs.append("sync")
        sup.stop()
        await forever()

    async def control() -> None:
        await asyncio.sleep(0)
        await sup.restart("job")
        with pytest.raises(ValueError, match="unique"):
            sup.add(device("job", job))
        sup.add(device("sync", sync))
        await forever()

    assert run(sup.run([device("job", job), core("control", control)])) == 0
    assert runs == ["job", "job", "sync"]
    assert sup.states()["job"].restarts == 1
    assert list(sup.states()) == ["job", "control", "sync"]
    assert {s.state for s in sup.states().values()} == {State.STOPPED}


def test_tasks_cannot_change_before_run_after_stop_or_into_another_kind() -> None:
    sup = Supervisor(timer=FakeTimer())
    with pytest.raises(NotRunningError):
        sup.add(device("p", forever))
    problems: list[str] = []

    async def control() -> None:
        for attempt in (sup.restart("nothing"), sup.replace(core("p", forever))):
            try:
                await attempt
            except (KeyError, ValueError) as exc:
                problems.append(type(exc).__name__)
        sup.stop()
        try:
            await sup.restart("p")
        except NotRunningError:
            problems.append("NotRunningError")
        await forever()

    assert run(sup.run([device("p", forever), core("control", control)])) == 0
    assert problems == ["KeyError", "ValueError", "NotRunningError"]
    assert sup.states()["p"].restarts == 0


def test_shutdown_during_a_replace_ends_the_replacer_and_starts_nothing() -> None:
    # A reconfigure waiting for a slow task to end is cancelled by shutdown; the cancellation
    # reaches it (it is not swallowed as the ended task's own), so the run still ends cleanly.
    sup = Supervisor(timer=FakeTimer())
    started: list[str] = []

    async def slow_to_stop() -> None:  # like the print worker joining its thread
        try:
            await forever()
        finally:
            await asyncio.sleep(0.2)

    async def reconfigure() -> None:
        await asyncio.sleep(0)  # the slow task has started
        asyncio.get_running_loop().call_later(0.05, sup.stop)
        await sup.replace(device("slow", lambda: _record(started)))

    spec = device("slow", slow_to_stop)
    assert run(sup.run([core("reconfigure", reconfigure), spec])) == 0
    assert started == []
    assert sup.states()["reconfigure"].state is State.STOPPED
    assert sup.states()["slow"].state is State.STOPPED


async def _record(into: list[str]) -> None:
    into.append("started")
    await forever()
