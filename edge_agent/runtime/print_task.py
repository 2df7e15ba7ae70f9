"""The print worker as a supervised device task.

The worker keeps its own thread for the blocking printer (STYLE.md: the printer gets a thread);
this task starts it and waits, without polling, for the thread to end. Stopped by the supervisor
(cancellation), it stops the thread and closes its connection. If the thread ends by itself it
was a bug in the worker (``DeviceError`` is handled inside it and rescheduled, never raised):
the task raises ``PrintWorkerCrashed`` and the supervisor restarts the worker with backoff,
whose ``recover()`` then reprints whatever the crash cut off.
"""

from __future__ import annotations

import asyncio
import contextlib

from edge_agent.printing.print_worker import PrintWorker
from edge_agent.runtime.supervisor import Backoff, Kind, TaskSpec


class PrintWorkerCrashedError(Exception):
    """The print worker's thread ended without being asked to."""


async def run_print_worker(worker: PrintWorker) -> None:
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def mark_ended() -> None:
        if not ended.done():
            ended.set_result(None)

    def on_exit() -> None:  # on the worker's thread
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody waits
            loop.call_soon_threadsafe(mark_ended)

    worker.start(on_exit=on_exit)
    try:
        await ended
    finally:
        # Also on cancellation: join the thread off the loop (it may be mid-job for seconds).
        await asyncio.shield(loop.run_in_executor(None, worker.stop))
    failure = worker.failure
    raise PrintWorkerCrashedError(f"print worker thread ended: {failure!r}") from failure


def print_worker_task(worker: PrintWorker, *, backoff: Backoff | None = None) -> TaskSpec:
    return TaskSpec(
        name="print_worker",
        kind=Kind.DEVICE,
        run=lambda: run_print_worker(worker),
        backoff=backoff if backoff is not None else Backoff(base_s=1.0, cap_s=60.0),
    )
