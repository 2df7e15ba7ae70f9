"""A store box and HQ's config CLI for the config push tests over a real Mosquitto: ``Box`` is
``edge-agent serve`` as a real process of its own store and box, ``Hq`` runs
``storeside-hq config ...`` as an operator does, ``Watcher`` reads what the boxes publish;
and the fixtures of these: ``hq_key``, ``box`` (one of ``STORE``, running) and ``hq``.

Run with PYTHONPATH set to the checkout when the virtualenv's editable install points at
another one: the agent is a separate process and imports what the environment says."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import config_document, config_result, presence, topics
from cloud_sync.contract.config_document import ConfigDocument
from cloud_sync.contract.config_result import ConfigResult
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
from tests.mqtt.clients import TestClient
from tests.mqtt.fixtures import ClientFactory

STORE, BOX = "store-001", "box-a"
WAIT_S = 30.0


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Box:
    """One ``edge-agent serve`` of ``store``/``box`` over the test's broker, its files in a
    folder of its own under ``tmp``; ``sync`` adds lines to its ``[sync]`` section."""

    def __init__(self, tmp: Path, mosquitto: MosquittoBroker, files: BrokerFiles, password: str,
                 hq_public: str, *, store: str = STORE, box: str = BOX,
                 sync: str = "") -> None:  # fmt: skip
        self.store_id, self.box_id = store, box
        self.dir = tmp / box
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = new_token()
        secret = self.dir / "box.mqtt-password"
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        key = self.dir / "box.key"
        signing_key.create(key)
        cache = self.dir / "box.db"
        CodeCache.open(cache, store_id=store, box_id=box).close()
        self.broker_url = f"mqtts://127.0.0.1:{mosquitto.port}"
        self.config = self.dir / "agent.toml"
        self.config.write_text(
            f'[store]\nstore_id = "{store}"\nbox_id = "{box}"\n\n'
            f'[cache]\npath = "{cache}"\n\n[signing]\nkey_path = "{key}"\n\n'
            f'[api]\nhost = "127.0.0.1"\nport = {self.port}\n\n'
            f'[[api.tills]]\ntill_id = "till-1"\ntoken_sha256 = "{token_digest(self.token)}"\n\n'
            f'[sync]\nbroker_url = "{self.broker_url}"\n'
            f'password_file = "{secret}"\nca_file = "{files.tls.ca_cert}"\n'
            f'hq_public_key = "{hq_public}"\nreconnect_min_s = 0.05\nreconnect_max_s = 0.5\n'
            + sync,
            encoding="utf-8",
        )
        self.log = self.dir / "agent.log"
        self.process: subprocess.Popen[str] | None = None

    def launch(self) -> None:
        """Start the process (``ready`` waits for its POS API): boxes start side by side."""
        out = self.log.open("a")
        self.process = subprocess.Popen(
            [str(EDGE_AGENT), "--config", str(self.config), "serve"],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
        )  # fmt: skip

    def ready(self) -> None:
        assert self.process is not None
        wait_for_health(self.url, self.process)

    def start(self) -> None:
        self.launch()
        self.ready()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def finish(self) -> None:
        """Stop it, print the end of its log, and fail the test if it logged a traceback."""
        self.stop()
        text = self.log.read_text() if self.log.exists() else ""
        print(f"--- {self.box_id}'s log ---\n{text[-20_000:]}")
        assert "Traceback" not in text, f"{self.box_id} logged a traceback"

    def answer_to(self, token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"{self.url}/v1/members/M1/linked-codes", headers=headers,
                         timeout=10).status_code  # fmt: skip


class Hq:
    """``storeside-hq config ...`` as an operator runs it, against the test's broker; the
    event store is ``hq-events.db`` in ``tmp`` (the one an ingest worker of the test fills)."""

    def __init__(self, tmp: Path, mosquitto: MosquittoBroker, files: BrokerFiles,
                 password: str, key: tuple[Path, Ed25519PrivateKey]) -> None:  # fmt: skip
        self.mosquitto, self.broker_files = mosquitto, files  # the broker its boxes use too
        self.public = hq_public(key[1])  # what its boxes pin
        secret = tmp / "hq-config.password"
        secret.write_text(password + "\n")
        self.broker = [
            "--broker", f"mqtts://127.0.0.1:{mosquitto.port}", "--cafile", str(files.tls.ca_cert),
            "--username", "hq-config", "--password-file", str(secret),
        ]  # fmt: skip
        self.events = str(tmp / "hq-events.db")
        self.key = key[0]
        self.tmp = tmp
        self.pushes = 0

    def push(self, overlay: str, *, scope: tuple[str, ...] = ("--store", STORE, "--box", BOX),
             suffix: str = ".toml") -> int:  # fmt: skip
        """``config push`` of ``overlay`` (``scope=("--fleet",)``: to every box HQ knows)."""
        self.pushes += 1
        path = self.tmp / f"push-{self.pushes}{suffix}"
        path.write_text(overlay, encoding="utf-8")
        return cli.main(["config", "push", str(path), *scope, "--db", self.events,
                         "--hq-key", str(self.key), *self.broker])  # fmt: skip

    def status(self) -> int:
        return cli.main(["config", "status", "--wait-s", "1", *self.broker])


class Watcher:
    """What boxes publish on one channel, as an HQ user reads it (``user`` may receive it)."""

    def __init__(self, mqtt_client: ClientFactory, user: str, channel: Channel,
                 *boxes: tuple[str, str]) -> None:  # fmt: skip
        self.client: TestClient = mqtt_client(user, client_id=f"watcher-{channel.value}")
        self.client.connect()
        for store, box in boxes or ((STORE, BOX),):
            self.client.subscribe(topics.topic(store, box, channel))

    def result(self) -> ConfigResult:
        return config_result.decode(bytes(self.client.expect(timeout=WAIT_S).payload))

    def health(self) -> presence.Health:
        return presence.decode_health(bytes(self.client.expect(timeout=WAIT_S).payload))


def hq_public(key: Ed25519PrivateKey) -> str:
    """HQ's public key as a box's ``sync.hq_public_key``."""
    return token_codec.public_key_text(raw_public_key(key.public_key()))


def signed(doc: ConfigDocument, key: Ed25519PrivateKey) -> bytes:
    return hq_signer.sign(Kind.CONFIG, config_document.encode(doc), key)


def tills(*pairs: tuple[str, str]) -> str:
    """The ``[[api.tills]]`` of a pushed config: (till id, token) pairs."""
    return "".join(
        f'[[api.tills]]\ntill_id = "{till}"\ntoken_sha256 = "{token_digest(token)}"\n'
        for till, token in pairs
    )


# -- fixtures (conftest.py makes them the package's) ---------------------------------------


@pytest.fixture
def hq_key(tmp_path: Path) -> tuple[Path, Ed25519PrivateKey]:
    path = tmp_path / "hq-signing.key"
    return path, hq_key_file.create(path)


MakeBox = Callable[..., Box]


@pytest.fixture
def make_box(tmp_path: Path, hq: Hq, mqtt_passwords: dict[str, str]) -> Iterator[MakeBox]:
    """``make_box(store=..., box=..., sync=...)``: a ``Box`` (not started) of ``hq``'s broker
    trusting its key, logged in as its box's broker user; each finished at the test's end."""
    made: list[Box] = []

    def make(**settings: str) -> Box:
        box = settings.get("box", BOX)
        made.append(Box(tmp_path, hq.mosquitto, hq.broker_files, mqtt_passwords[box], hq.public,
                        **settings))  # fmt: skip
        return made[-1]

    yield make
    for box in made:
        box.stop()  # all of them, before any check can fail the teardown
    for box in made:
        box.finish()


@pytest.fixture
def box(make_box: MakeBox) -> Box:
    the_box = make_box()
    the_box.start()
    return the_box


@pytest.fixture
def hq(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    broker_files: BrokerFiles,
    mqtt_passwords: dict[str, str],
    hq_key: tuple[Path, Ed25519PrivateKey],
) -> Hq:
    return Hq(tmp_path, mosquitto, broker_files, mqtt_passwords["hq-config"], hq_key)
