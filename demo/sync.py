"""The link to HQ in the demo: HQ's broker and ingest, both stores draining their outboxes, a
broker outage with the tills still redeeming, and the double redemption it let through."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.hq import hq_key_file
from cloud_sync.hq.broker.choice import start_broker
from cloud_sync.hq.broker.embedded import EmbeddedBroker
from cloud_sync.hq.broker.mosquitto import MosquittoBroker
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from cloud_sync.hq.ingest.keyring import Keyring, central_keys
from cloud_sync.hq.ingest.worker import BrokerAddress, BrokerLogin, IngestWorker
from demo.narration import money, say, step
from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import raw_public_key
from edge_agent.sync import outbox_access
from edge_agent.wiring import Agent

HQ_USER = "hq-ingest"
FANOUT_USER = "hq-fanout"
CONFIG_USER = "hq-config"
WAIT_S = 30.0
CART = [{"sku": "coffee-1kg", "category": "drinks", "quantity": 2, "unit_price": 1899}]


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxLogin:
    box_id: str
    password_file: Path


@dataclass(slots=True, kw_only=True)
class HqLink:
    broker: MosquittoBroker | EmbeddedBroker
    store: EventStore
    boxes: dict[str, BoxLogin]  # store id -> its box's broker login
    hq_key: Ed25519PrivateKey  # signs every delta HQ sends the stores
    hq_key_file: Path  # the same key, as storeside-hq's commands read it
    fanout_login: BrokerLogin
    config_password_file: Path  # storeside-hq config's broker login (user hq-config)

    def sync_section(self, store_id: str) -> dict[str, Any]:
        """The ``[sync]`` config section of ``store_id``'s box."""
        ca = self.broker.ca_cert
        return {
            "broker_url": self.broker.url,
            "password_file": str(self.boxes[store_id].password_file),
            "ca_file": None if ca is None else str(ca),
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 2.0,
            "health_interval_s": 2.0,
            "ack_timeout_s": 3.0,
            "hq_public_key": token_codec.public_key_text(raw_public_key(self.hq_key.public_key())),
            "position_quiet_s": 0.5,
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def hq_link(work: Path, stores: tuple[str, ...]) -> Iterator[HqLink]:
    """HQ's broker (Mosquitto if installed, else the embedded amqtt) with a login per box,
    and one ingest worker into HQ's SQLite event store."""
    step("HQ starts its MQTT broker and its ingest worker; each store box gets a login")
    passwords = {user: secrets.token_urlsafe(16) for user in (HQ_USER, FANOUT_USER, CONFIG_USER)}
    config_secret = work / f"{CONFIG_USER}.mqtt-password"
    config_secret.write_text(passwords[CONFIG_USER] + "\n")
    config_secret.chmod(0o600)
    boxes = {}
    for store_id in stores:
        box_id = f"{store_id}-box-1"  # box ids are unique across the chain: the ACL needs it
        passwords[box_id] = secrets.token_urlsafe(16)
        secret = work / f"{box_id}.mqtt-password"
        secret.write_text(passwords[box_id] + "\n")
        secret.chmod(0o600)
        boxes[store_id] = BoxLogin(box_id=box_id, password_file=secret)
    # A fixed port: the demo restarts the broker and the boxes must find it again.
    broker = start_broker(directory=work / "broker", port=free_port(), users=passwords)
    assert isinstance(broker, MosquittoBroker | EmbeddedBroker)  # we started it
    say(f"   broker: {broker.kind.value} at {broker.url}")
    store = open_event_store(str(work / "events.db"))
    worker = IngestWorker(
        login=BrokerLogin(
            broker=BrokerAddress.parse(broker.url),
            cafile=broker.ca_cert,
            username=HQ_USER,
            password=passwords[HQ_USER],
        ),
        ingest=Ingest(store=store, keyring=Keyring(central_keys(work / "hq.db"))),
        client_id="hq-ingest-1",
        group="ingest" if broker.supports_shared_subscriptions else None,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="hq-ingest", daemon=True)
    thread.start()
    say("   ingest: verifies each batch's signature and hash chain, stores it once, acks")
    key_file = work / "hq-signing.key"
    key_file.unlink(missing_ok=True)
    hq_key = hq_key_file.create(key_file)  # storeside-hq hq-key init
    fanout_login = BrokerLogin(
        broker=BrokerAddress.parse(broker.url),
        cafile=broker.ca_cert,
        username=FANOUT_USER,
        password=passwords[FANOUT_USER],
    )
    try:
        yield HqLink(
            broker=broker,
            store=store,
            boxes=boxes,
            hq_key=hq_key,
            hq_key_file=key_file,
            fanout_login=fanout_login,
            config_password_file=config_secret,
        )
    finally:
        stop.set()
        thread.join(10)
        broker.stop()
        store.close()


def wait_until_hq_has(link: HqLink, agents: dict[str, Agent]) -> None:
    """Until HQ holds every event each box committed and each outbox is empty."""
    deadline = time.monotonic() + WAIT_S
    while True:
        behind = []
        for store_id, agent in agents.items():
            facts = agent.db.call(lambda s: outbox_access.facts(s.cache))
            box = link.boxes[store_id].box_id
            if views.event_count(link.store, box) < facts.next_seq - 1 or facts.outbox_depth:
                behind.append(store_id)
        if not behind:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"HQ did not catch up with {', '.join(behind)}")
        time.sleep(0.05)


def _counts(link: HqLink, agents: dict[str, Agent]) -> None:
    for store_id, agent in agents.items():
        box = link.boxes[store_id].box_id
        facts = agent.db.call(lambda s: outbox_access.facts(s.cache))
        say(
            f"   {store_id}: {facts.next_seq - 1} events committed, "
            f"{views.event_count(link.store, box)} stored at HQ, {facts.outbox_depth} in outbox"
        )


def _fleet(link: HqLink) -> None:
    say("   storeside-hq fleet:")
    for row in views.fleet(link.store):
        say(
            f"     {row.box_id:<18} {row.store_id:<10} {row.state or '?':<8} "
            f"stored through #{row.stored_through:<4} outbox {row.outbox_depth} lag {row.lag}"
        )


def redeem(url: str, token: str, code: str, member: str, txn: str) -> str:
    body = {
        "codes": [code],
        "cashier_id": "cashier-3",
        "member_id": member,
        "transaction_id": txn,
        "basket": {"lines": CART},
    }
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as till:
        result = till.post("/v1/commit", json=body, timeout=10).json()["results"][0]
    ok = result["decision"]["ok"]
    return (
        f"ACCEPTED -{money(result['decision']['discount'])}" if ok else result["decision"]["reason"]
    )


def sync_story(
    link: HqLink,
    agents: dict[str, Agent],
    urls: dict[str, str],
    tokens: dict[str, dict[str, str]],
    codes: dict[str, str],
) -> None:
    step("Both stores' outboxes drain to HQ: every event stored once, in order, chain checked")
    wait_until_hq_has(link, agents)
    _counts(link, agents)
    time.sleep(2.5)  # one health interval: the fleet view reads the boxes' retained health
    _fleet(link)

    step("HQ's broker goes down; the tills keep redeeming, every event waits in its outbox")
    link.broker.stop()
    shared = codes["member-10"]  # a single-use coupon, in both stores' snapshots
    for store_id, members in (("store-001", ("member-11", "member-12")), ("store-002", ())):
        for i, member in enumerate(members):
            said = redeem(urls[store_id], tokens[store_id]["till-1"], codes[member], member,
                           f"OUT-{store_id}-{i}")  # fmt: skip
            say(f"   {store_id} till-1: {member}'s coupon -> {said}")
    for store_id in ("store-001", "store-002"):
        # Each store sees a fresh coupon: neither can know the other used it, HQ is cut off.
        said = redeem(urls[store_id], tokens[store_id]["till-1"], shared, "member-10",
                       f"OUT-{store_id}-shared")  # fmt: skip
        say(f"   {store_id} till-1: member-10's coupon {shared} -> {said}")
    for store_id, agent in agents.items():
        facts = agent.db.call(lambda s: outbox_access.facts(s.cache))
        link_state = "connected" if facts.connected else "disconnected"
        say(f"   edge-agent sync status ({store_id}): {link_state}, outbox {facts.outbox_depth}")

    step("The broker is back: the boxes reconnect (jittered backoff) and drain what waited")
    link.broker.start()
    wait_until_hq_has(link, agents)
    _counts(link, agents)

    step("HQ catches the coupon redeemed in both stores while they were cut off")
    for conflict in views.conflicts(link.store):
        say(f"   storeside-hq conflicts: {conflict.kind} of {conflict.code}")
        for r in conflict.detail.get("redemptions", []):
            say(
                f"     {r.get('store_id')} {r.get('till_id')} cashier {r.get('cashier_id')} "
                f"member {r.get('member_id')} at {str(r.get('occurred_at'))[:19]}"
            )
