"""The agent's sd_notify: the protocol on real AF_UNIX datagram sockets, the watchdog fed from
the loop, and ``edge-agent serve`` as systemd's ``Type=notify`` with ``WatchdogSec=`` runs it."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_agent.runtime.supervisor import Supervisor
from edge_agent.runtime.systemd_notify import (
    Notifier,
    NotifyEnvironmentError,
    socket_address,
    watchdog_interval,
)
from edge_agent.runtime.systemd_task import systemd_task, systemd_tasks
from tests.agent_process import EDGE_AGENT, free_port
from tests.runtime.notify_listener import NotifyListener

MAX_UNIX_PATH = 107  # sun_path is 108 bytes with its NUL


@pytest.fixture
def socket_dir(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``, or a shorter folder when a socket path there would not fit sun_path."""
    if len(str(tmp_path / "notify.sock")) <= MAX_UNIX_PATH:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="sdn") as short:
        yield Path(short)


def test_abstract_namespace_name_is_a_leading_nul() -> None:
    assert socket_address("@storeside/notify") == b"\0storeside/notify"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    with pytest.raises(NotifyEnvironmentError):
        socket_address("run/systemd/notify")


def test_a_message_reaches_a_listener_in_the_abstract_namespace() -> None:
    name = f"storeside-test-{uuid.uuid4().hex}"
    listener = NotifyListener(b"\0" + name.encode())
    try:
        notifier = Notifier(f"@{name}")
        assert notifier.send("READY=1", "STATUS=serving")
        assert listener.wait_for("READY=1", timeout_s=5).lines == ("READY=1", "STATUS=serving")
        notifier.close()
    finally:
        listener.close()


def test_without_notify_socket_nothing_is_sent_and_no_task_runs(socket_dir: Path) -> None:
    assert not Notifier.from_env({}).enabled
    assert not Notifier.from_env({}).send("READY=1")
    assert systemd_tasks(serving=lambda: True, api=("127.0.0.1", 1), env={}) == []
    # a socket nobody listens on: refused, reported as False, never raised
    assert not Notifier(str(socket_dir / "gone.sock")).send("READY=1")


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    me = os.getpid()
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(me)}) == 2.0
    # another process's watchdog (a child inheriting the environment) is not ours to feed
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(me + 1)}) is None
    for bad in ("soon", "0", "-5"):
        with pytest.raises(NotifyEnvironmentError):
            watchdog_interval({"WATCHDOG_USEC": bad})


def test_a_blocked_loop_stops_the_pings(socket_dir: Path) -> None:
    """The pings come from the supervisor's loop: a blocking call on it is a gap in them."""
    path = socket_dir / "notify.sock"
    listener = NotifyListener(str(path))
    block_s, every_s = 0.6, 0.05

    async def main() -> int:
        supervisor = Supervisor()
        spec = systemd_task(
            Notifier(str(path)), serving=lambda: True, ready_status="up", watchdog_s=every_s
        )

        async def script() -> None:
            await asyncio.sleep(0.3)
            time.sleep(block_s)  # the stuck loop
            await asyncio.sleep(0.3)
            supervisor.stop()

        scripted = asyncio.create_task(script())
        code = await asyncio.wait_for(supervisor.run([spec]), timeout=10)
        await scripted
        return code

    try:
        assert asyncio.run(main()) == 0
        listener.wait_for("STOPPING=1", timeout_s=5)
    finally:
        listener.close()
    pings = [m.at for m in listener.with_line("WATCHDOG=1")]
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) >= block_s * 0.9, gaps
    assert statistics.median(gaps) < every_s * 3, gaps


def _write_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[store]\nstore_id = "store-001"\n\n[cache]\npath = "{tmp_path / "cache.db"}"\n\n'
        f'[api]\nhost = "127.0.0.1"\nport = {port}\n\n[printer]\nkind = "simulated"\n',
        encoding="utf-8",
    )
    return config


def test_serve_under_type_notify_with_a_watchdog(tmp_path: Path, socket_dir: Path) -> None:
    """READY=1 once the API answers, WATCHDOG=1 every half WATCHDOG_USEC, STOPPING=1 on
    SIGTERM and no ping after it."""
    port, path = free_port(), socket_dir / "notify.sock"
    listener = NotifyListener(str(path))
    watchdog_usec = 400_000  # pings every 0.2 s
    env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": str(watchdog_usec)}
    agent = subprocess.Popen(
        [str(EDGE_AGENT), "--config", str(_write_config(tmp_path, port)), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        ready = listener.wait_for("READY=1")
        # READY=1 means serving: the first request after it is answered, with no retry.
        health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
        assert health.status_code == 200
        assert health.json()["tasks"]["systemd_notify"]["state"] == "running"
        assert f"STATUS=serving the POS API on 127.0.0.1:{port}" in ready.lines
        time.sleep(2.0)
        agent.send_signal(signal.SIGTERM)
        stopping = listener.wait_for("STOPPING=1")
        output, _ = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate()
        listener.close()
    assert agent.returncode == 0, output
    first = listener.messages()[0]
    assert first.lines == ("STATUS=starting",) and first.at <= ready.at
    pings = [m.at for m in listener.with_line("WATCHDOG=1")]
    assert all(ready.at <= at < stopping.at for at in pings), "a ping outside READY..STOPPING"
    assert len(pings) >= 8, pings  # 2 s at 0.2 s
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    period = watchdog_usec / 2_000_000
    assert period * 0.8 <= statistics.median(gaps) <= period * 1.5, gaps
    assert max(gaps) < watchdog_usec / 1_000_000, gaps  # never late enough for systemd to kill
