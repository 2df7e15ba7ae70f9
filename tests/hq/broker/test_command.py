"""``storeside-hq broker`` as a pilot runs it: a real process in the foreground, its URL on
stderr, stopped by SIGTERM; ``--add-user`` with the password on stdin. Passwords never show."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cloud_sync.hq.broker.mosquitto import free_port
from tests.mqtt.clients import TestClient

PASSWORD = "pilot-box-password-1"
HQ = [sys.executable, "-m", "cloud_sync.hq.cli"]


def _add_user(users: Path, name: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HQ, "broker", "--users", str(users), "--add-user", name],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


class Foreground:
    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [*HQ, "broker", *args], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for(self, pattern: str) -> re.Match[str]:
        while True:
            line = self.lines.get(timeout=20)
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def end(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code


@pytest.fixture
def users(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pilot.passwd"
    done = _add_user(path, "box-017", PASSWORD)
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stderr + done.stdout + path.read_text()
    yield path


@pytest.mark.parametrize("embedded", [True, False], ids=["amqtt", "mosquitto"])
def test_the_pilot_broker_runs_in_the_foreground_until_sigterm(
    tmp_path: Path, users: Path, embedded: bool
) -> None:
    port = free_port()
    args = ["--dir", str(tmp_path / "b"), "--users", str(users), "--port", str(port)]
    broker = Foreground([*args, "--embedded"] if embedded else args)
    try:
        url = broker.wait_for(r"MQTT broker \((\w+)\) at (\S+)")
        assert url.group(1) == ("amqtt" if embedded else "mosquitto")
        assert urlsplit(url.group(2)).port == port
        ca = None if embedded else tmp_path / "b" / "tls" / "ca.crt"
        if ca is not None:
            assert str(ca) in broker.wait_for("boxes pin this CA").string
        client = TestClient(
            port=port, ca_cert=ca, username="box-017", password=PASSWORD, client_id="box-017"
        )
        assert client.connect().value == 0
        client.disconnect()
    finally:
        code = broker.end()
    assert code == 0, "".join(broker.seen)
    assert PASSWORD not in "".join(broker.seen)
    refused = TestClient(port=port, ca_cert=None, username="x", password="y", client_id="z")
    with pytest.raises(ConnectionRefusedError):
        refused.paho.connect("127.0.0.1", port)  # the broker is gone, Mosquitto's child too


def test_amqtt_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    done = subprocess.run(
        [*HQ, "broker", "--dir", str(tmp_path), "--embedded", "--listen", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 2
    assert "127.0.0.1 only" in done.stderr
