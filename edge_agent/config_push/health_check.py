"""Is the box well after a config change? The checks a pushed config must pass to stay.

Theory of operation
-------------------
A config can be valid and still break a box: a printer address nobody answers on, a broker
the box cannot reach (then HQ could never push the fix). So after ``Agent.reconfigure``
applied a push, ``check_health`` looks at what the store depends on, each within its timeout,
and answers every failure as a ``FieldError`` naming the config section at fault (an empty
list: well). The caller rolls back on any.

    api      the POS API answers ``GET /v1/health`` with 200 on its socket (the tills'
             way in: a push that left it dead would close the tills)
    printer  when the change touched ``[printer]``: a network printer accepts a TCP
             connection at its host and port, within its ``timeout_s`` (a printer that is
             merely off must not undo a push of new till tokens); a simulated one is
             there; USB, serial and file printers are not probed (opening the device beside
             the print worker would fight it for it; the worker's own state shows in health)
    sync     with a broker configured, the outbox pump is connected to it within
             ``broker_timeout_s`` (the agent passes ``sync.push_check_s``; a pump restarted
             by the change reconnects first, so a push naming a broker the box cannot
             reach is undone, and the box is back where HQ can send it the fix)

Plain asyncio streams, no HTTP client: one request line and a status line are all it needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from cloud_sync.contract.config_result import FieldError
from config.model import AgentConfig

API_TIMEOUT_S: Final = 5.0
POLL_S: Final = 0.1
# An API bound to every address is asked on loopback (a bind address, not one to connect to).
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


async def _api_answers(host: str, port: int, timeout_s: float) -> str | None:
    """None if ``GET /v1/health`` answers 200, else what went wrong."""
    host = _ANY_ADDRESS.get(host, host)
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(
                    f"GET /v1/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                status = await reader.readline()
            finally:
                writer.close()
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except OSError as exc:
        return f"cannot connect: {exc.strerror or exc}"
    parts = status.split()
    if len(parts) < 2 or parts[1] != b"200":
        return f"answered {status.decode('latin-1').strip()!r}"
    return None


async def _accepts(host: str, port: int, timeout_s: float) -> str | None:
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
    except TimeoutError:
        return f"{host}:{port} did not answer within {timeout_s:g} s"
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"
    return None


async def _connected(pump_connected: Callable[[], bool], timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    while not pump_connected():
        if time.monotonic() >= deadline:
            return f"not connected to the broker within {timeout_s:g} s"
        await asyncio.sleep(POLL_S)
    return None


async def check_health(
    cfg: AgentConfig,
    *,
    api: tuple[str, int],
    pump_connected: Callable[[], bool],
    broker_timeout_s: float,
    printer_changed: bool = True,
    api_timeout_s: float = API_TIMEOUT_S,
) -> list[FieldError]:
    """Every check of the module docstring that fails under ``cfg`` (run side by side);
    ``api``: where the POS API listens (the sockets it was handed, else ``cfg.api``)."""
    checks: dict[str, asyncio.Task[str | None]] = {}
    async with asyncio.TaskGroup() as group:
        checks["api"] = group.create_task(_api_answers(*api, api_timeout_s))
        p = cfg.printer
        if printer_changed and p.kind == "network":
            checks["printer"] = group.create_task(_accepts(p.host, p.port, p.timeout_s))
        if cfg.sync.broker_url is not None:
            checks["sync"] = group.create_task(_connected(pump_connected, broker_timeout_s))
    return [
        FieldError(section, f"health check failed: {why}")
        for section, task in checks.items()
        if (why := task.result()) is not None
    ]
