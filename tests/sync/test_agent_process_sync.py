"""``edge-agent serve`` with [sync] set, as a real process: its supervisor runs the pump, and
``kill -9`` mid-drain loses no acknowledged event and doubles none at HQ."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import httpx

from config.model import AgentConfig
from edge_agent.api.auth import new_token, token_digest
from edge_agent.cache.code_cache import CodeCache
from edge_agent.issuing import signing_key
from edge_agent.runtime.db_thread import DbThread
from edge_agent.sync import outbox_access
from edge_agent.wiring import open_services
from tests.agent_process import EDGE_AGENT, free_port, wait_for_health
from tests.mqtt.broker import BrokerFiles, MosquittoBroker
from tests.mqtt.fixtures import ClientFactory
from tests.sync.ack_responder import AckResponder
from tests.sync.pump_harness import STORE, append_events, box_config

BOX = "box-a"


def write_toml(cfg: AgentConfig, path: Path, *, port: int, token: str) -> None:
    s = cfg.sync
    path.write_text(
        f'[store]\nstore_id = "{STORE}"\nbox_id = "{BOX}"\n\n'
        f'[cache]\npath = "{cfg.cache.path}"\n\n'
        f'[signing]\nkey_path = "{cfg.signing.key_path}"\n\n'
        f'[api]\nhost = "127.0.0.1"\nport = {port}\n\n'
        f'[[api.tills]]\ntill_id = "till-1"\ntoken_sha256 = "{token_digest(token)}"\n\n'
        f'[sync]\nbroker_url = "{s.broker_url}"\npassword_file = "{s.password_file}"\n'
        f'ca_file = "{s.ca_file}"\nbatch_events = 50\ndrain_events_per_s = 5000\n'
        "reconnect_min_s = 0.05\nreconnect_max_s = 0.5\n",
        encoding="utf-8",
    )


def start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(EDGE_AGENT), "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_kill_9_mid_drain_loses_and_doubles_nothing(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    broker_files: BrokerFiles,
    mqtt_passwords: dict[str, str],
    mqtt_client: ClientFactory,
) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    cfg = box_config(
        tmp_path, box=BOX, port=mosquitto.port, ca=broker_files.tls.ca_cert,
        password=mqtt_passwords[BOX],
    )  # fmt: skip
    CodeCache.open(cfg.cache.path, store_id=STORE, box_id=BOX).close()
    db = DbThread(lambda: open_services(cfg, receipts=False))
    last = append_events(db, 3_000)  # a backlog from an outage: 0.6 s of drain at 5k/s
    key = signing_key.load(Path(cfg.signing.key_path))
    responder = AckResponder(mqtt_client("hq-ingest", persistent=True), key.public_key())
    responder.start()
    port, token, config = free_port(), new_token(), tmp_path / "agent.toml"
    write_toml(cfg, config, port=port, token=token)
    url = f"http://127.0.0.1:{port}"
    outputs = []
    for _round in range(3):
        agent = start(config)
        try:
            health = wait_for_health(url, agent)
            assert health.json()["tasks"]["sync"]["state"] == "running"
            time.sleep(rng.uniform(0.05, 0.4))
            last = append_events(db, rng.randrange(1, 100))  # another process writes too
        finally:
            agent.send_signal(signal.SIGKILL)
            outputs.append(agent.communicate(timeout=10)[0])
    agent = start(config)
    try:
        wait_for_health(url, agent)
        responder.wait_for(BOX, last, timeout_s=30)
        deadline = time.monotonic() + 10
        while db.call(lambda s: outbox_access.facts(s.cache).outbox_depth) != 0:
            assert time.monotonic() < deadline, "the outbox did not empty"
            time.sleep(0.05)
        status = httpx.get(f"{url}/v1/health", timeout=5).json()
        assert status["tasks"]["sync"]["restarts"] == 0
    finally:
        agent.send_signal(signal.SIGTERM)
        outputs.append(agent.communicate(timeout=30)[0])
        db.close()
    stream = responder.streams[BOX]
    assert sorted(stream.texts) == list(range(1, last + 1)), f"seed {seed}"
    assert responder.refused == [], f"seed {seed}"
    assert all("Traceback" not in out for out in outputs), outputs
    assert "sync" in outputs[-1]
