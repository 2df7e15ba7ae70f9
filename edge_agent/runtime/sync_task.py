"""The outbox pump as a supervised device task.

The link to HQ is like a printer: it comes and goes, and the tills never wait for it. So it is
a device task: if the pump fails (a missing signing key, an unreadable password file, a bug)
the supervisor logs it and builds a new pump after a backoff, while the POS API keeps
answering and every event waits in the outbox. Network trouble is not a failure: the pump
reconnects by itself, with its own jittered backoff, and never raises for it.
"""

from __future__ import annotations

from collections.abc import Callable

from edge_agent.runtime.supervisor import Backoff, Kind, TaskSpec
from edge_agent.sync.outbox_pump import OutboxPump

NAME = "sync"


def sync_task(make_pump: Callable[[], OutboxPump], *, backoff: Backoff | None = None) -> TaskSpec:
    """``make_pump`` is called for every (re)start, so a restart reads its files again."""

    async def run() -> None:
        await make_pump().run()

    return TaskSpec(
        name=NAME,
        kind=Kind.DEVICE,
        run=run,
        backoff=backoff if backoff is not None else Backoff(base_s=2.0, cap_s=120.0),
    )
