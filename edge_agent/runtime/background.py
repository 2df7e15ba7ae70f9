"""Running the whole agent on a loopback socket from a background thread (demo and tests).

It runs exactly what ``edge-agent serve`` runs (``Agent.run``: the supervisor, the POS API
server, the print worker, housekeeping), on its own loop in a thread, so the main thread stays
free for the till's side of the conversation. Signals stay with the main thread; the block's
end stops the supervisor the way SIGTERM would. A run that ended in failure is raised here.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from edge_agent.runtime.pos_server import PosServer
from edge_agent.runtime.supervisor import Supervisor


class Runnable(Protocol):
    @property
    def pos_server(self) -> PosServer: ...

    @property
    def supervisor(self) -> Supervisor: ...

    async def run(
        self, *, sockets: list[socket.socket] | None = None, signals: bool = False
    ) -> int: ...


@contextmanager
def serving(
    agent: Runnable, *, host: str = "127.0.0.1", start_timeout_s: float = 10
) -> Iterator[str]:
    """Run ``agent`` on an ephemeral port until the block ends; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    result: list[int | BaseException] = []

    def main() -> None:
        try:
            # The loop production uses too (uvicorn's choice: uvloop when installed).
            factory = agent.pos_server.config.get_loop_factory()
            with asyncio.Runner(loop_factory=factory) as runner:
                result.append(runner.run(agent.run(sockets=[sock])))
        except BaseException as exc:  # handed to the main thread below
            result.append(exc)

    thread = threading.Thread(target=main, name="agent-runtime", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not agent.pos_server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the POS API did not start: {result}")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        agent.supervisor.stop_soon()
        thread.join(start_timeout_s + 30)
        sock.close()
    if thread.is_alive():
        raise RuntimeError("the agent did not stop")
    if result != [0]:
        raise RuntimeError(f"the agent ended in failure: {result}")
