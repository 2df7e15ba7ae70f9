"""Helpers for ``edge-agent serve`` started as a real process: its command, a free port for
it, and waiting for it to answer."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

EDGE_AGENT = Path(sys.executable).parent / "edge-agent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_health(
    url: str, agent: subprocess.Popen[str], *, timeout_s: float = 30
) -> httpx.Response:
    """Poll ``/v1/health`` until the agent answers; fail with its output if it died first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(f"{url}/v1/health", timeout=1)
        except httpx.TransportError:
            assert agent.poll() is None, agent.communicate()[0]
            assert time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.1)


class LoggedAgent:
    """``edge-agent serve`` as a real process, its output appended to a file rather than a
    pipe: a long test's logging must never fill a pipe nobody reads and stall the agent."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[str] | None = None

    def start(self, url: str) -> None:
        with self.log.open("a", encoding="utf-8") as out:
            self.process = subprocess.Popen(
                [str(EDGE_AGENT), "--config", str(self.config), "serve"],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        wait_for_health(url, self.process)

    def kill(self) -> None:
        """``kill -9``: the power cut, no goodbye to anyone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""
