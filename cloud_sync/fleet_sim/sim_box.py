"""One simulated store box: its events, its chain, its send window and its lag. Pure.

Theory of operation
-------------------
A ``SimBox`` is what the box's outbox pump does (``edge_agent/sync/``), cut down to what HQ
can tell apart, with no file, socket or clock of its own (the fleet's loop passes ``now``):

* ``create(count, ...)`` appends events as the box's event log does: seq gap-free from 1, each
  event's ``prev_hash`` the hash of the one before (``GENESIS_HASH`` for seq 1), built and
  encoded with the contract (``event_envelope``, ``chain.Sealed``). Each is ~450 bytes, a
  redemption with a two-line basket, with a code of its own (no double redemption at HQ).
  The outbox is every event HQ has not acknowledged, in seq order.
* ``next_batch(now)`` packs the unsent run from the cursor (``batch.pack``: at most
  ``batch_events``), signs ``batch.signing_bytes`` with the box's own Ed25519 key and encodes
  it; at most ``in_flight`` batches are out at once, which is the whole back-pressure, as on
  the box (paho queues whatever it is handed).
* ``on_ack(ack, now)`` takes HQ's cumulative ``stored_through``: every outbox event up to it
  is done, and its lag (creation to the ack's arrival, monotonic seconds) is recorded. An ack
  that lists ``missing`` ranges no batch in flight covers rewinds the cursor there, as the
  pump's window does; two ingest workers can store a box's batches out of order, so a hole
  that a batch in flight will fill is not a loss, and an ack older than the last one taken
  (the other worker's, overtaken) is no news at all.
* ``expired(now, timeout_s)``: the oldest batch in flight has had no ack for ``timeout_s``:
  send again from ``stored_through + 1`` (HQ stores idempotently, so a resend costs bandwidth,
  never a duplicate). ``rewind()`` does the same after a reconnect.

The window's rules are the box's own: ``contract/send_window.py``, which the pump uses too.

Lag is measured at the box, so it is HQ's whole path: broker in, ingest, commit, ack out,
broker back. It includes the wait for a place in the window, as a real box's would.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import batch as batches
from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract.ack import Ack
from cloud_sync.contract.chain import Sealed
from cloud_sync.contract.event_envelope import Attribution, EventEnvelope, EventType
from cloud_sync.contract.presence import Health
from cloud_sync.contract.send_window import InFlight, SendWindow
from edge_agent.domain.coupon_token import key_id

AGENT_VERSION: Final = "fleet-sim"


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who a simulated box is: its ids (username = box id), broker password, signing key."""

    store_id: str
    box_id: str
    password: str = field(repr=False)
    key: Ed25519PrivateKey = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    seq: int
    text: str
    created: float  # monotonic seconds
    measured: bool  # created inside the measured window: its lag counts


class SimBox:
    def __init__(
        self, identity: Identity, *, index: int, batch_events: int = 500, in_flight: int = 4
    ) -> None:
        if not 1 <= batch_events <= batches.MAX_BATCH_EVENTS:
            raise ValueError(f"batch_events must be 1..{batches.MAX_BATCH_EVENTS}")
        if in_flight < 1:
            raise ValueError("in_flight must be >= 1")
        self.identity = identity
        self.index = index
        self.key_id = key_id(identity.key.public_key())
        self.batch_events = batch_events
        self.next_seq = 1
        self.last_hash = envelope.GENESIS_HASH
        self.outbox: deque[Pending] = deque()  # seq acked+1, acked+2, ... in order
        self.window = SendWindow(acked=0, max_in_flight=in_flight)
        self.lags: list[float] = []
        self.sent_events = 0  # every event put in a batch, resends included
        self.resent_events = 0
        self._highest_sent = 0  # the highest seq ever put in a batch
        self.last_ack_at: datetime | None = None

    @property
    def acked(self) -> int:
        return self.window.acked

    @property
    def cursor(self) -> int:
        return self.window.cursor

    @property
    def in_flight(self) -> list[InFlight]:
        return self.window.in_flight

    @in_flight.setter
    def in_flight(self, batches_out: list[InFlight]) -> None:
        self.window.in_flight = batches_out

    @property
    def created(self) -> int:
        return self.next_seq - 1

    def create(self, count: int, *, now: float, wall: datetime, measured: bool) -> None:
        ident = self.identity
        for _ in range(count):
            seq = self.next_seq
            event = EventEnvelope(
                event_id=envelope.event_id(wall, secrets.token_bytes(10)),
                box_id=ident.box_id,
                seq=seq,
                type=EventType.REDEEMED,
                occurred_at=wall,
                code=f"SIM{self.index:06d}{seq:09d}",
                attribution=Attribution(
                    store_id=ident.store_id,
                    till_id=f"till-{seq % 6}",
                    cashier_id=f"cashier-{seq % 17}",
                    transaction_id=f"tx-{ident.box_id}-{seq}",
                    member_id=f"member-{(seq * 7919 + self.index) % 100_003}",
                    campaign_id="FLEET-SIM",
                    variant="A",
                    channel="app",
                ),
                amount=150 + seq % 900,
                details={"use_limit": 1, "lines": [["SKU-0001", 1500], ["SKU-0042", 320]]},
                prev_hash=self.last_hash,
            )
            sealed = Sealed.seal(event)
            self.outbox.append(Pending(seq=seq, text=sealed.text, created=now, measured=measured))
            self.last_hash = envelope.event_hash(sealed.text)
            self.next_seq += 1

    def next_batch(self, now: float) -> bytes | None:
        """The next signed batch to publish, or None (nothing unsent, or the window full)."""
        cursor = self.window.next_send()
        if cursor is None or cursor >= self.next_seq:
            return None
        start = cursor - self.acked - 1  # outbox[0] is seq acked + 1
        rows = ((p.seq, p.text) for p in islice(self.outbox, start, None))
        batch = batches.pack(
            store_id=self.identity.store_id,
            box_id=self.identity.box_id,
            key_id=self.key_id,
            events=rows,
            max_events=self.batch_events,
        )
        signature = self.identity.key.sign(batches.signing_bytes(batch))
        payload = batches.encode(batches.SignedBatch(batch=batch, signature=signature))
        self.window.sent(batch.first_seq, batch.last_seq, now=now)
        self.sent_events += len(batch.texts)
        if batch.first_seq <= self._highest_sent:
            self.resent_events += min(batch.last_seq, self._highest_sent) - batch.first_seq + 1
        self._highest_sent = max(self._highest_sent, batch.last_seq)
        return payload

    def on_ack(self, ack: Ack, *, now: float, wall: datetime) -> int:
        """Take HQ's ack; answers how many events it newly acknowledged."""
        through = min(ack.stored_through, self.created)  # HQ cannot hold what was never made
        if not self.window.on_ack(dataclasses.replace(ack, stored_through=through)):
            return 0
        self.last_ack_at = wall
        done = 0
        while self.outbox and self.outbox[0].seq <= through:
            pending = self.outbox.popleft()
            if pending.measured:
                self.lags.append(now - pending.created)
            done += 1
        return done

    def expired(self, *, now: float, timeout_s: float) -> bool:
        return self.window.expired(now=now, timeout_s=timeout_s)

    def rewind(self, to: int | None = None) -> None:
        self.window.rewind(to)

    def health(self, *, session: int, wall: datetime) -> Health:
        oldest = self.outbox[0] if self.outbox else None
        return Health(
            store_id=self.identity.store_id,
            box_id=self.identity.box_id,
            session=session,
            at=wall,
            agent_version=AGENT_VERSION,
            cache_version=None,
            printer_state="simulated",
            outbox_depth=len(self.outbox),
            oldest_unsent_at=None if oldest is None else wall,
            next_seq=self.next_seq,
            acked_through=self.acked,
            last_ack_at=self.last_ack_at,
            oldest_retained_seq=1,
            clock_offset_ms=None,
        )
