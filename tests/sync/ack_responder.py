"""A minimal HQ for the pump's tests: a real MQTT client (user hq-ingest) that checks each
batch as HQ must (decode, signature, chain) and answers cumulative acks.

It is not HQ's ingest (``cloud_sync/hq/ingest/``, tested on its own): it keeps the stored
events in memory, so a test can count exactly what arrived, how often, and in what order, and
it can misbehave on purpose (drop batches, hold acks) to drive the pump's recovery paths.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_sync.contract import ack as acks
from cloud_sync.contract import batch as batches
from cloud_sync.contract.chain import ChainLink, verify_chain
from cloud_sync.contract.topics import Channel, parse_topic, subscription, topic
from cloud_sync.hq.batch_verifier import verify
from tests.mqtt.clients import Received, TestClient


@dataclass
class Stream:
    head: ChainLink
    texts: dict[int, str] = field(default_factory=dict)
    duplicates: int = 0


class AckResponder:
    def __init__(self, client: TestClient, public_key: Ed25519PublicKey) -> None:
        self.client = client
        self.key = public_key
        self.streams: dict[str, Stream] = {}
        self.batches = 0
        self.refused: list[str] = []
        self.drop_next = 0  # batches to ignore (as if lost on the way)
        self.hold_acks = False
        self.lock = threading.Lock()
        client.paho.on_message = lambda _c, _u, m: self._handle(
            Received(m.topic, bytes(m.payload), bool(m.retain), m.qos)
        )

    def start(self) -> None:
        self.client.connect()
        self.client.subscribe(subscription(Channel.EVENTS))
        # As HQ must: subscribe again on every reconnect (a broker killed before its autosave
        # forgets the persistent session's subscriptions).
        self.client.paho.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(
            subscription(Channel.EVENTS), qos=1
        )

    def _handle(self, message: Received) -> None:
        where = parse_topic(message.topic)
        if where.channel is not Channel.EVENTS:
            return
        with self.lock:
            self.batches += 1
            if self.drop_next:
                self.drop_next -= 1
                return
            received = batches.decode(message.payload)
            if not verify(received.signed, self.key):
                self.refused.append("bad_signature")
                return
            box = received.batch.box_id
            stream = self.streams.setdefault(box, Stream(head=ChainLink.start(box)))
            fresh = []
            for sealed in received.events:
                seq = sealed.event.seq
                if seq <= stream.head.seq:
                    assert stream.texts[seq] == sealed.text, "same seq, other content"
                    stream.duplicates += 1
                else:
                    fresh.append(sealed)
            verdict = verify_chain(fresh, anchor=stream.head)
            for sealed in fresh:
                if sealed.event.seq <= verdict.head.seq:
                    stream.texts[sealed.event.seq] = sealed.text
            stream.head = verdict.head
            if verdict.broken is not None and verdict.broken.fault.value != "seq_gap":
                self.refused.append(verdict.broken.fault.value)
            through = stream.head.seq
            store = received.batch.store_id
        if not self.hold_acks:
            self.ack(store, box, through)

    def ack(self, store: str, box: str, through: int) -> None:
        payload = acks.encode_ack(acks.Ack(store_id=store, box_id=box, stored_through=through))
        self.client.paho.publish(topic(store, box, Channel.ACK), payload, qos=1)

    def stored(self, box: str) -> int:
        with self.lock:
            stream = self.streams.get(box)
            return 0 if stream is None else stream.head.seq

    def wait_for(self, box: str, seq: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.stored(box) < seq:
            if time.monotonic() > deadline:
                raise AssertionError(f"HQ holds {box} through {self.stored(box)}, not {seq}")
            time.sleep(0.01)
