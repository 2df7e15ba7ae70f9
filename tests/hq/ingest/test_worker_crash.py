"""The worker killed (SIGKILL) between its database commit and its acks, as a process: the
broker sends the batch again to the restarted worker (same client id, persistent session),
which finds every event stored, stores nothing twice and answers the ack the box never got."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cloud_sync.contract.ack import decode_ack
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.ingest.worker import CRASH_HOOK
from tests.hq.ingest.builders import box_stream, events_topic, payloads
from tests.hq.ingest.test_worker_mqtt import ACK_A
from tests.mqtt.fixtures import ClientFactory

START_S = 20.0


class WorkerProcess:
    """``storeside-hq ingest`` in a child process, its log lines read as they come."""

    def __init__(self, args: list[str], *, crash: bool) -> None:
        env = {k: v for k, v in os.environ.items() if k != CRASH_HOOK}
        if crash:
            env[CRASH_HOOK] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cloud_sync.hq.cli", "ingest", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            self.lines.put(line)

    def wait_for(self, text: str) -> str:
        while True:
            line = self.lines.get(timeout=START_S)
            if text in line:
                return line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=START_S)


@contextmanager
def worker(args: list[str], *, crash: bool = False) -> Iterator[WorkerProcess]:
    child = WorkerProcess(args, crash=crash)
    try:
        yield child
    finally:
        child.stop()


def test_a_worker_killed_after_its_commit_gets_the_batch_again_and_stores_nothing_twice(
    tmp_path: Path,
    central_file: Path,
    hq_cli_login: list[str],
    mqtt_passwords: dict[str, str],
    mqtt_client: ClientFactory,
) -> None:
    db = tmp_path / "events.db"
    store_args = ["--db", str(db), "--hq-db", str(central_file), "--client-id", "hq-ingest-1"]
    args = [*store_args, *hq_cli_login]
    box = mqtt_client("box-a", client_id="box-a", persistent=True)
    box.connect()
    box.subscribe(ACK_A)
    first, second = payloads(box_stream(40), 20)

    with worker(args, crash=True) as doomed:
        doomed.wait_for("subscribed")
        box.publish(events_topic(), first)
        assert doomed.process.wait(timeout=START_S) == -9  # killed itself after the commit
    box.assert_silent(timeout=0.3)  # so no ack went out
    store = open_event_store(str(db))
    assert views.event_count(store) == 20  # but the batch is stored

    with worker(args) as again:
        assert decode_ack(box.expect(timeout=START_S).payload).stored_through == 20
        again.wait_for("stored 0, duplicates 20")  # the redelivery was a no-op
        box.publish(events_topic(), second)
        assert decode_ack(box.expect(timeout=START_S).payload).stored_through == 40
    assert views.event_count(store) == 40
    assert views.quarantined(store) == []
    assert mqtt_passwords["hq-ingest"] not in "".join(again.log + doomed.log)
    store.close()
