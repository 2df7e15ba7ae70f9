"""HQ's config push over a real Mosquitto (the shipped config and ACL) to a real agent process
(``edge-agent serve``), driven by the real ``storeside-hq config push`` and ``status``: a
config applied live (a new till's token works at once), one signed by another key and one not
signed at all refused, an old one replayed refused (also after the agent restarts), a typo'd
key and an out-of-range value rejected with their paths, a restart-needing field named, and a
printer nobody answers on rolled back. Every outcome is read from the box's retained result.

Run with PYTHONPATH set to the checkout when the virtualenv's editable install points at
another one: the agent is a separate process and imports what the environment says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import config_document, config_result, topics
from cloud_sync.contract.config_document import ConfigDocument
from cloud_sync.contract.config_result import ConfigResult, Outcome
from cloud_sync.contract.hq_document import Kind
from cloud_sync.contract.topics import Channel
from cloud_sync.hq import cli, hq_key_file, hq_signer
from cloud_sync.hq.broker.mosquitto_config import BrokerFiles
from edge_agent.api.auth import new_token, token_digest
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import raw_public_key
from edge_agent.issuing import signing_key
from tests.agent_process import EDGE_AGENT, free_port, wait_for_health
from tests.mqtt.broker import MosquittoBroker
from tests.mqtt.fixtures import ClientFactory

STORE, BOX = "store-001", "box-a"
WAIT_S = 30.0


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Box:
    """One ``edge-agent serve`` of ``STORE``/``BOX`` over the test's broker."""

    def __init__(self, tmp: Path, mosquitto: MosquittoBroker, files: BrokerFiles, password: str,
                 hq_public: str) -> None:  # fmt: skip
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = new_token()
        secret = tmp / "box.mqtt-password"
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        key = tmp / "box.key"
        signing_key.create(key)
        cache = tmp / "box.db"
        CodeCache.open(cache, store_id=STORE, box_id=BOX).close()
        self.config = tmp / "agent.toml"
        self.config.write_text(
            f'[store]\nstore_id = "{STORE}"\nbox_id = "{BOX}"\n\n'
            f'[cache]\npath = "{cache}"\n\n[signing]\nkey_path = "{key}"\n\n'
            f'[api]\nhost = "127.0.0.1"\nport = {self.port}\n\n'
            f'[[api.tills]]\ntill_id = "till-1"\ntoken_sha256 = "{token_digest(self.token)}"\n\n'
            f'[sync]\nbroker_url = "mqtts://127.0.0.1:{mosquitto.port}"\n'
            f'password_file = "{secret}"\nca_file = "{files.tls.ca_cert}"\n'
            f'hq_public_key = "{hq_public}"\nreconnect_min_s = 0.05\nreconnect_max_s = 0.5\n',
            encoding="utf-8",
        )
        self.log = tmp / "agent.log"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        out = self.log.open("a")
        self.process = subprocess.Popen(
            [str(EDGE_AGENT), "--config", str(self.config), "serve"],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
        )  # fmt: skip
        wait_for_health(self.url, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def answer_to(self, token: str) -> int:
        import httpx  # noqa: PLC0415 - a dev dependency, as in the other process tests

        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"{self.url}/v1/members/M1/linked-codes", headers=headers,
                         timeout=10).status_code  # fmt: skip


@pytest.fixture
def hq_key(tmp_path: Path) -> tuple[Path, Ed25519PrivateKey]:
    path = tmp_path / "hq-signing.key"
    return path, hq_key_file.create(path)


@pytest.fixture
def box(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    broker_files: BrokerFiles,
    mqtt_passwords: dict[str, str],
    hq_key: tuple[Path, Ed25519PrivateKey],
) -> Iterator[Box]:
    public = token_codec.public_key_text(raw_public_key(hq_key[1].public_key()))
    the_box = Box(tmp_path, mosquitto, broker_files, mqtt_passwords[BOX], public)
    the_box.start()
    try:
        yield the_box
    finally:
        the_box.stop()
        log = the_box.log.read_text()
        print(log[-20_000:])
        assert "Traceback" not in log


class Hq:
    """``storeside-hq config ...`` as an operator runs it, against the test's broker."""

    def __init__(self, tmp: Path, mosquitto: MosquittoBroker, files: BrokerFiles,
                 password: str, key: Path) -> None:  # fmt: skip
        secret = tmp / "hq-config.password"
        secret.write_text(password + "\n")
        self.broker = [
            "--broker", f"mqtts://127.0.0.1:{mosquitto.port}", "--cafile", str(files.tls.ca_cert),
            "--username", "hq-config", "--password-file", str(secret),
        ]  # fmt: skip
        self.events = str(tmp / "hq-events.db")
        self.key = key
        self.tmp = tmp
        self.files = 0

    def push(self, overlay: str, *, suffix: str = ".toml") -> int:
        self.files += 1
        path = self.tmp / f"push-{self.files}{suffix}"
        path.write_text(overlay, encoding="utf-8")
        return cli.main(["config", "push", str(path), "--store", STORE, "--box", BOX,
                         "--db", self.events, "--hq-key", str(self.key), *self.broker])  # fmt: skip


@pytest.fixture
def hq(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    broker_files: BrokerFiles,
    mqtt_passwords: dict[str, str],
    hq_key: tuple[Path, Ed25519PrivateKey],
) -> Hq:
    return Hq(tmp_path, mosquitto, broker_files, mqtt_passwords["hq-config"], hq_key[0])


class Results:
    """Every config result the box publishes, as HQ's config user reads them."""

    def __init__(self, mqtt_client: ClientFactory) -> None:
        self.client = mqtt_client("hq-config", client_id="watcher")
        self.client.connect()
        self.client.subscribe(topics.topic(STORE, BOX, Channel.CONFIG_RESULT))

    def next(self) -> ConfigResult:
        return config_result.decode(bytes(self.client.expect(timeout=WAIT_S).payload))


def signed(doc: ConfigDocument, key: Ed25519PrivateKey) -> bytes:
    return hq_signer.sign(Kind.CONFIG, config_document.encode(doc), key)


def test_config_push_end_to_end(
    box: Box, hq: Hq, mqtt_client: ClientFactory, hq_key: tuple[Path, Ed25519PrivateKey],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    token2 = new_token()
    till2 = "".join(
        f'[[api.tills]]\ntill_id = "{till}"\ntoken_sha256 = "{token_digest(token)}"\n'
        for till, token in (("till-1", box.token), ("till-2", token2))
    )
    assert box.answer_to(token2) == 401
    seen = Results(mqtt_client)
    if True:
        # 1. Applied live: the new till's token works at once, no restart.
        assert hq.push(till2) == 0
        applied = seen.next()
        assert (applied.outcome, applied.version, applied.running) == (Outcome.APPLIED, 1, 1)
        assert box.answer_to(token2) == 200

        # 2. HQ's CLI refuses a typo'd key and an out-of-range value itself: exit 2, all paths.
        capsys.readouterr()
        assert hq.push("[redemption]\ntill_failure_limt = 3\nhold_seconds = 1\n") == 2
        err = capsys.readouterr().err
        assert "redemption.till_failure_limt" in err and "redemption.hold_seconds" in err

        # 3. The box is the authority: the same mistakes signed by HQ are rejected there too.
        publisher = mqtt_client("hq-config", client_id="forger")
        publisher.connect()
        where = topics.topic(STORE, BOX, Channel.CONFIG)
        now = datetime.now(UTC)

        def doc(version: int, overlay: dict[str, object]) -> ConfigDocument:
            return ConfigDocument(
                store_id=STORE,
                version=version,
                fleet_version=None,
                store_version=version,
                issued_at=now,
                overlay=overlay,
            )

        key = hq_key[1]
        bad = {"redemption": {"till_failure_limt": 3, "hold_seconds": 1}}
        publisher.publish(where, signed(doc(10, bad), key), qos=1, retain=True)
        rejected = seen.next()
        assert rejected.outcome is Outcome.REJECTED and rejected.running == 1
        assert {e.path for e in rejected.errors} == {
            "redemption.till_failure_limt", "redemption.hold_seconds"
        }  # fmt: skip

        # 4. Signed by another key, or not signed at all (a junk envelope): rejected.
        other = Ed25519PrivateKey.generate()
        publisher.publish(where, signed(doc(11, {}), other), qos=1, retain=True)
        forged = seen.next()
        assert forged.outcome is Outcome.REJECTED and forged.version is None
        assert "unknown_key" in forged.errors[0].message
        publisher.publish(where, json.dumps({"overlay": {}}).encode(), qos=1, retain=True)
        unsigned = seen.next()
        assert unsigned.outcome is Outcome.REJECTED and "malformed" in unsigned.errors[0].message

        # 5. An old config replayed, signed by HQ: refused as not newer.
        publisher.publish(where, signed(doc(1, {}), key), qos=1, retain=True)
        replay = seen.next()
        assert replay.outcome is Outcome.REJECTED
        assert "replay: version 1 is not newer than 10" in replay.errors[0].message

        # 6. A field that needs a restart is named, nothing applied.
        publisher.publish(where, signed(doc(12, {"api": {"port": 1}}), key), qos=1, retain=True)
        restart = seen.next()
        assert restart.outcome is Outcome.NEEDS_RESTART
        assert [e.path for e in restart.errors] == ["api.port"]

        # 7. A printer nobody answers on: applied, the health check fails, rolled back.
        closed = free_port()
        printer = {"printer": {"kind": "network", "host": "127.0.0.1", "port": closed,
                               "timeout_s": 1}}  # fmt: skip
        publisher.publish(where, signed(doc(13, printer), key), qos=1, retain=True)
        rolled = seen.next()
        assert rolled.outcome is Outcome.ROLLED_BACK and rolled.running == 1
        assert rolled.errors[0].path == "printer"
        assert box.answer_to(token2) == 200  # the last good config runs

        # 8. After a restart: HQ's last good config still runs, an old one is still a replay.
        box.stop()
        box.start()
        assert box.answer_to(token2) == 200
        replay_again = signed(doc(2, {}), key)
        publisher = mqtt_client("hq-config", client_id="forger-2")
        publisher.connect()
        publisher.publish(where, replay_again, qos=1, retain=True)
        while (after := seen.next()).version != 2:  # the last result again, after the connect
            assert after.outcome is Outcome.ROLLED_BACK
        assert "version 2 is not newer than 13" in str(after.errors[0])

    # 9. storeside-hq config status reads the box's retained word.
    capsys.readouterr()
    assert cli.main(["config", "status", "--wait-s", "1", *hq.broker]) == 0
    out = capsys.readouterr().out
    assert f"{STORE}\t{BOX}\t1\trejected\t2\t" in out
