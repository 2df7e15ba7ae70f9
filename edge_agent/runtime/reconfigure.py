"""Reconfiguring a running agent: what came of it (``Reconfigured``) and the reload on SIGHUP.

A new config reaches the agent as an ``AgentConfig`` through ``Agent.reconfigure`` (in
``edge_agent.wiring``, which knows the parts to rebuild); today from the config file on SIGHUP
(``systemctl reload``), with issue 9 from HQ over MQTT, both through that one path. The answer
is a value, never an exception: ``applied`` (every change is live), ``unchanged``, or
``refused`` with every reason (fields that need a restart, a file with errors, a part that
could not be rebuilt), in which case nothing changed and the agent runs on as it was.

``reload_task`` is the SIGHUP side, as a supervised core task: the signal only sets an event, and
the task reads the file off the loop (``load_config`` in a thread), applies it and logs the
outcome, one reload at a time. A reload that raises is a bug: as for any core task the agent
stops and systemd starts it again, from the file.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from config.diff import ConfigDiff
from config.load import ConfigError, load_config
from config.model import AgentConfig
from edge_agent.runtime.supervisor import Kind, TaskSpec

log = logging.getLogger(__name__)


class Status(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconfigured:
    status: Status
    diff: ConfigDiff = field(default_factory=ConfigDiff)
    problems: tuple[str, ...] = ()  # why it was refused, each on its own

    @classmethod
    def refused(
        cls, problems: list[str] | tuple[str, ...], diff: ConfigDiff | None = None
    ) -> Reconfigured:
        return cls(status=Status.REFUSED, diff=diff or ConfigDiff(), problems=tuple(problems))

    @classmethod
    def needs_restart(cls, diff: ConfigDiff) -> Reconfigured:
        return cls.refused([c.describe() for c in diff.restart], diff)

    def log(self, source: str) -> None:
        """One line for an operator: what was applied, or that nothing changed and why."""
        if self.status is Status.REFUSED:
            withheld = ", ".join(c.path for c in self.diff.live)
            also = f" (its live changes were not applied either: {withheld})" if withheld else ""
            log.warning(
                "config from %s refused, nothing changed: %s%s",
                source,
                "; ".join(self.problems),
                also,
            )
        elif self.status is Status.UNCHANGED:
            log.info("config from %s: nothing to change", source)
        else:
            log.info(
                "config from %s applied: %s",
                source,
                "; ".join(c.describe() for c in self.diff.changes),
            )


Apply = Callable[[AgentConfig], Awaitable[Reconfigured]]


async def reload_config(path: Path, apply: Apply) -> Reconfigured:
    """Read ``path`` (every error in it is a reason) and apply it; log the outcome."""
    try:
        cfg = await asyncio.to_thread(load_config, path)
    except ConfigError as exc:
        outcome = Reconfigured.refused(exc.problems)
    else:
        outcome = await apply(cfg)
    outcome.log(str(path))
    return outcome


async def _reload_on_sighup(path: Path | None, apply: Apply) -> None:
    loop = asyncio.get_running_loop()
    wanted = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, wanted.set)
    try:
        while True:
            await wanted.wait()
            wanted.clear()  # signals during a reload coalesce into one more reload
            if path is None:  # SIGHUP's default would end the agent: a reload must not
                log.warning("SIGHUP received: started without --config, nothing to reload")
                continue
            log.info("SIGHUP received: reloading %s", path)
            await reload_config(path, apply)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


def reload_task(path: Path | None, apply: Apply) -> TaskSpec:
    return TaskSpec(
        name="config_reload", kind=Kind.CORE, run=lambda: _reload_on_sighup(path, apply)
    )
