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
