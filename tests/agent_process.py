"""Waiting for an ``edge-agent serve`` started as a real process to answer."""

from __future__ import annotations

import subprocess
import time

import httpx


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
