"""The POS API server as a core task: ``uvicorn.Server.serve()`` on the supervisor's loop.

uvicorn normally owns SIGTERM/SIGINT itself and, after its own graceful shutdown, raises the
signal again; here the supervisor owns the signals (it decides the order things stop in), so
the server's ``capture_signals`` is a no-op and ``stop()`` is how it is asked to finish: close
the listening socket, let in-flight requests complete (up to ``graceful_s``), return.
"""

from __future__ import annotations

import contextlib
import gc
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from edge_agent.runtime.supervisor import Kind, TaskSpec


class _SupervisedServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        # Everything built so far (modules, the app, its routes and models, the services) lives
        # as long as the process: freezing it keeps the collector from walking ~10^5 objects
        # that can never be garbage, whose full collections otherwise land on a till's request
        # as millisecond pauses (measured on validate's tail). Only the first server does it.
        if not gc.get_freeze_count():
            gc.collect()
            gc.freeze()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the supervisor handles SIGTERM/SIGINT and calls PosServer.stop


class PosServer:
    """One uvicorn server for ``app``; it serves once."""

    def __init__(self, app: FastAPI, *, host: str, port: int, graceful_s: float = 10.0) -> None:
        self.graceful_s = graceful_s
        self._server = _SupervisedServer(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                # No access log: every till request would cost a log line on the hot path;
                # the service logs what matters (refusal floods, throttled tills).
                access_log=False,
                # uvicorn's lines go through the agent's own logging setup (log_setup), in
                # the agent's format and at its level, instead of uvicorn's dictConfig.
                log_config=None,
                timeout_graceful_shutdown=int(graceful_s),
            )
        )

    @property
    def started(self) -> bool:
        return self._server.started

    @property
    def config(self) -> uvicorn.Config:
        return self._server.config

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        await self._server.serve(sockets=sockets)

    def stop(self) -> None:
        self._server.should_exit = True

    def task(self, *, sockets: list[socket.socket] | None = None) -> TaskSpec:
        return TaskSpec(
            name="pos_api",
            kind=Kind.CORE,
            run=lambda: self.serve(sockets),
            stop=self.stop,
            # uvicorn's own graceful timeout, plus its shutdown steps around it.
            grace_s=self.graceful_s + 5.0,
        )
