"""Config push with real agent processes (``edge-agent serve``), a real Mosquitto, HQ's real
ingest worker and ``storeside-hq config``: a fleet push reaching two stores' boxes, answered by
both and shown by ``config status`` and, from their retained health, by the fleet view; and a
push that cuts the box off its broker, rolled back, answered once the box is back on the old
broker, the old config still running (also after a restart).

(A replayed old config is refused in ``test_config_push_over_mqtt.py``, steps 5 and 8.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_sync.contract.config_result import Outcome
from cloud_sync.contract.presence import ConfigHealth, Health
from cloud_sync.contract.topics import Channel
from cloud_sync.hq import cli
from cloud_sync.hq.broker.mosquitto_config import BrokerFiles
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from edge_agent.api.auth import new_token
from tests.agent_process import free_port
from tests.config_push.agent_box import Hq, MakeBox, Watcher, tills, wait_for
from tests.follow.test_follow_over_mqtt import login, trust_boxes
from tests.hq.ingest.test_worker_mqtt import running, worker_of
from tests.mqtt.broker import MosquittoBroker
from tests.mqtt.fixtures import ClientFactory

# The boxes' health_interval_s is its default (30 s): a health that shows a push within this
# comes from the summary published at once after the answer, not from the periodic one.
PROMPT_S = 10.0
WHERE = {"box-a": "store-001", "box-b": "store-002"}  # two boxes of two stores


@pytest.fixture
def hq_events(
    tmp_path: Path, mosquitto: MosquittoBroker, broker_files: BrokerFiles,
    mqtt_passwords: dict[str, str], hq: Hq,
) -> Iterator[EventStore]:  # fmt: skip
    """HQ's event store, filled by a real ingest worker (the boxes' state and health)."""
    hq_ingest = login(mosquitto, broker_files, "hq-ingest", mqtt_passwords["hq-ingest"])
    worker = worker_of(hq.events, trust_boxes(tmp_path / "hq.db"), hq_ingest)
    events = open_event_store(hq.events)
    try:
        with running(worker):
            yield events
    finally:
        events.close()


def test_a_fleet_push_reaches_two_stores_boxes_and_both_say_so(
    make_box: MakeBox, hq: Hq, hq_events: EventStore, mqtt_client: ClientFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    boxes = [make_box(store=store, box=box) for box, store in WHERE.items()]
    pairs = [(store, box) for box, store in WHERE.items()]
    results = Watcher(mqtt_client, "hq-config", Channel.CONFIG_RESULT, *pairs)
    for box in boxes:
        box.launch()  # side by side: each takes a second or two to start
    for box in boxes:
        box.ready()
    # HQ pushes to the boxes it knows: their retained state and health tell it.
    wait_for("HQ to know both boxes", lambda: _fleet(hq_events).keys() == WHERE.keys())
    token = new_token()
    assert [box.answer_to(token) for box in boxes] == [401, 401]

    assert hq.push(tills(("till-hq", token)), scope=("--fleet",)) == 0
    out = capsys.readouterr().out
    for box_id, store in WHERE.items():
        assert f"config 1 published to box {box_id} of store {store}" in out
    answers = {(r := results.result()).box_id: r for _ in WHERE}
    assert {b: (r.store_id, r.outcome, r.version, r.running) for b, r in answers.items()} \
        == {b: (s, Outcome.APPLIED, 1, 1) for b, s in WHERE.items()}  # fmt: skip
    assert [box.answer_to(token) for box in boxes] == [200, 200]  # live, no restart

    wait_for(
        "the fleet view to show both boxes on config 1",
        lambda: all(
            (row.config_version, row.config_outcome, row.config_outcome_version)
            == (1, "applied", 1)
            for row in _fleet(hq_events).values()
        ),
        timeout_s=PROMPT_S,
    )
    assert cli.main(["fleet", "--db", hq.events]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].endswith("\tconfig\tconfig_outcome\tdevices")
    assert table.count("\t1\tapplied 1\t-\n") == 2, table  # no BLE or NFC devices: "-"
    assert cli.main(["fleet", "--db", hq.events, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["box_id"]: r["config_version"] for r in rows} == {"box-a": 1, "box-b": 1}

    assert hq.status() == 0
    status = capsys.readouterr().out
    for box_id, store in WHERE.items():
        assert f"{store}\t{box_id}\t1\tapplied\t1\t" in status, status


def test_a_push_that_cuts_the_box_off_its_broker_is_rolled_back_and_answered(
    make_box: MakeBox, hq: Hq, mqtt_client: ClientFactory
) -> None:
    box = make_box(sync="push_check_s = 2\n")  # how long a push may leave it cut off
    box.start()
    results = Watcher(mqtt_client, "hq-config", Channel.CONFIG_RESULT)
    health = Watcher(mqtt_client, "hq-ingest", Channel.HEALTH)
    token2 = new_token()
    assert hq.push(tills(("till-1", box.token), ("till-2", token2))) == 0
    assert results.result().outcome is Outcome.APPLIED
    assert box.answer_to(token2) == 200

    # Version 2 points the box at a broker nobody runs (and, replacing version 1's overlay
    # whole, drops till-2): the pump reconnects there and cannot, the health check finds it
    # cut off, and the box goes back to version 1, its broker and its tills.
    dead = free_port()
    started = time.monotonic()
    assert hq.push(f'[sync]\nbroker_url = "mqtts://127.0.0.1:{dead}"\n') == 0
    while (rolled := results.result()).version != 2:  # version 1's again, after a reconnect
        assert rolled.outcome is Outcome.APPLIED
    assert (rolled.outcome, rolled.running) == (Outcome.ROLLED_BACK, 1)
    assert [e.path for e in rolled.errors] == ["sync"]
    assert "not connected to the broker within 2 s" in rolled.errors[0].message
    assert time.monotonic() - started < 2 + PROMPT_S
    expected = ConfigHealth(version=1, outcome=Outcome.ROLLED_BACK, outcome_version=2,
                            outcome_at=rolled.at)  # fmt: skip
    _until_health_says(health, expected)
    assert box.answer_to(token2) == 200  # version 1 runs: its tills, on the POS API
    sync = httpx.get(f"{box.url}/v1/health", timeout=5).json()["tasks"]["sync"]
    assert sync["state"] == "running"

    # A restart starts from the last good config (version 1), not the one rolled back.
    box.stop()
    box.start()
    assert box.answer_to(token2) == 200
    _until_health_says(health, expected)  # from the box's new session: it reached the broker


def _fleet(events: EventStore) -> dict[str, views.FleetRow]:
    return {row.box_id: row for row in views.fleet(events)}


def _until_health_says(watcher: Watcher, config: ConfigHealth) -> Health:
    """The box's next health summaries until one carries ``config``, within PROMPT_S."""
    deadline = time.monotonic() + PROMPT_S
    while (health := watcher.health()).config != config:
        assert time.monotonic() < deadline, f"health still says {health.config}"
    return health
