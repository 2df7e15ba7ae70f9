"""The agent's side of ``Type=notify`` and ``WatchdogSec=``, as a core task of the supervisor.

It tells systemd ``READY=1`` once the POS API is serving (not when the process starts: a box
whose port is taken must fail its start, not look up), then feeds the watchdog from the
supervisor's own loop every half ``$WATCHDOG_USEC``. Feeding from the loop is the point: a loop
stuck in a blocking call or a busy coroutine stops the pings, and systemd restarts a box that
would otherwise sit there answering nothing. systemd arms the watchdog only once start-up
is complete (READY=1), so a slow start is bounded by TimeoutStartSec=, not by the pings. The
pings are paced by ``asyncio.sleep``, never by
the supervisor's ``Timer``: a fake clock would prove nothing about the real loop.

Declared first among the tasks, so its ``stop`` hook is the first thing shutdown runs:
``STOPPING=1`` tells systemd the stop is deliberate (and ends the watchdog) before the API's
grace period begins.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

from edge_agent.runtime.supervisor import Kind, TaskSpec
from edge_agent.runtime.systemd_notify import Notifier, watchdog_interval

NAME = "systemd_notify"
_READY_POLL_S = 0.01  # how often "is the API serving yet?" is asked, until it is


def status_line(text: str) -> str:
    """``STATUS=text`` on one line (a newline would start another key)."""
    return "STATUS=" + " ".join(text.split())


def systemd_task(
    notifier: Notifier,
    *,
    serving: Callable[[], bool],
    ready_status: str,
    watchdog_s: float | None,
) -> TaskSpec:
    """``serving`` says when the API has its socket and answers; ``watchdog_s`` is the ping
    interval (``watchdog_interval``), None for no watchdog."""
    stopping = asyncio.Event()

    async def run() -> None:
        try:
            notifier.send(status_line("starting"))
            while not serving():
                await asyncio.sleep(_READY_POLL_S)
            notifier.send("READY=1", status_line(ready_status))
            while not stopping.is_set():
                if watchdog_s is None:
                    await stopping.wait()
                    break
                notifier.send("WATCHDOG=1")
                try:
                    await asyncio.wait_for(stopping.wait(), timeout=watchdog_s)
                except TimeoutError:
                    continue
        finally:
            notifier.close()

    def stop() -> None:
        notifier.send("STOPPING=1", status_line("stopping"))
        stopping.set()

    return TaskSpec(name=NAME, kind=Kind.CORE, run=run, stop=stop, grace_s=1.0)


def systemd_tasks(
    *, serving: Callable[[], bool], api: tuple[str, int], env: Mapping[str, str] | None = None
) -> list[TaskSpec]:
    """The task when systemd started the agent with ``$NOTIFY_SOCKET``, else none."""
    environ = os.environ if env is None else env
    notifier = Notifier.from_env(environ)
    if not notifier.enabled:
        return []
    host, port = api
    return [
        systemd_task(
            notifier,
            serving=serving,
            ready_status=f"serving the POS API on {host}:{port}",
            watchdog_s=watchdog_interval(environ),
        )
    ]
