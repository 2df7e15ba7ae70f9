"""The event batch: a run of one box's events, signed by the box, on ``.../{box}/events``.

Theory of operation
-------------------
A box sends its outbox in order as batches, many events per MQTT message (PERFORMANCE.md: 100
events a message moved ~700k events/s where one a message moved ~23k). A batch is one flat JSON
object (schema version 1)::

    schema_version  int     1
    store_id        str     the sending store and box: topic levels (``topics.level_fault``),
    box_id          str     equal to the topic's and to every event's own
    first_seq       int     the seq of the first event, >= 1
    last_seq        int     the seq of the last: first_seq + len(events) - 1
    events          [str]   the events' stored texts, exactly as in the box's ``events.body``
                            (``event_envelope``), in seq order with no gap
    key_id          str     which of the store's keys signed (8 hex digits: ``key_id_of``)
    signature       str     Ed25519 over ``signing_bytes``, 64 bytes as 128 lowercase hex

Events travel as JSON strings holding their stored text rather than as nested objects, so HQ
hashes (the chain, ``chain.py``) and stores exactly the bytes the box hashed and stored; a
nested object would be re-encoded by every reader on the way.

Bounds: at most ``MAX_BATCH_EVENTS`` events and ``MAX_BATCH_BYTES`` of encoded batch,
signature included. 256 KiB is far under every broker's default maximum (Mosquitto: 256 MB;
amqtt and EMQX: 1 MB and more), holds ~500 events of ~500 bytes, and keeps what a box holds in
flight small (``paho`` has no back-pressure); an event is at most a few KiB (a POS API body
is at most 64 KiB), so one always fits. ``pack`` takes the longest run of the outbox that fits
both; HQ refuses anything over either before parsing it.

Signing: ``signing_bytes`` is ``SIGNING_CONTEXT`` followed by the SHA-256 digest of the
canonical JSON (``wire_json.CANONICAL``) of every field but ``signature``; Ed25519 signs those
57 bytes. The digest is for the box's tills, not for the cryptography: py-spy saw a 256 KiB
batch signed whole hold the GIL ~1.6 ms inside ``cryptography`` (which does not release it)
and its canonical text, made in one ``json`` call, another ~2 ms, time in which the agent's
loop could not answer a till. ``hashlib`` releases the GIL while it hashes, and ``_text``
builds the canonical text from one short encoding per event, so no single call holds it long.
The context is there because the same Ed25519 key signs receipt coupon tokens
(``edge_agent/domain/token_codec.py``, whose context differs), so no signature over one can
pass as a signature over the other. The key is
the store key HQ registers (``cloud_sync/hq/store_keys.py``): a box that reaches the broker
with another box's credentials still cannot sign as that box. The signing and the checking
use ``cryptography`` and live outside this pure package: ``edge_agent/sync/batch_signer.py``
on the box, ``cloud_sync/hq/batch_verifier.py`` at HQ.

Decoding (``decode``) runs ``message_codec``'s checks, then these rules on the values, each a
``BadValueError`` naming its field unless said otherwise: ids are topic levels, key_id and
signature are lowercase hex of their lengths, 1 to ``MAX_BATCH_EVENTS`` events each a string
(``WrongTypeError``), first_seq >= 1, last_seq agrees with the count; then each event, in
order, is a valid envelope (``BadEventError``, the envelope's error as its cause) of this store
and box with the seq its place says (``BadEventError``). It does not verify the signature or
the chain: those need HQ's keys and HQ's last link.

The signature covers what the batch means, not its bytes: HQ rebuilds ``signing_bytes`` from
the decoded fields, so a payload that differs from the box's only in JSON spelling (spaces, key
order, escapes) verifies too. That is deliberate and harmless, because each event's text is a
string value carried exactly, so what is hashed and stored is still byte for byte the box's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.chain import Sealed
from cloud_sync.contract.decode_errors import (
    BadEventError,
    WrongTypeError,
)
from cloud_sync.contract.event_envelope import (
    EnvelopeError,
)
from cloud_sync.contract.message_codec import (
    Kind,
    is_text,
    require,
)
from cloud_sync.contract.topics import level_fault

SCHEMA_VERSION: Final = 1
MAX_BATCH_BYTES: Final = 256 * 1024
MAX_BATCH_EVENTS: Final = 1000
SIGNING_CONTEXT: Final = b"storeside/event-batch/v2\x00"  # v2: over the digest
SIGNATURE_BYTES: Final = 64  # Ed25519 (RFC 8032)

FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": Kind.INT,
        "store_id": Kind.STR,
        "box_id": Kind.STR,
        "first_seq": Kind.INT,
        "last_seq": Kind.INT,
        "events": Kind.LIST,
        "key_id": Kind.STR,
        "signature": Kind.STR,
    }
}
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_SIGNATURE = re.compile(r"[0-9a-f]{128}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """What the box signs: a non-empty run of its events' stored texts, from ``first_seq`` in
    seq order with no gap. The box packs it from its outbox rows without decoding them (that
    would cost the loop ~10 us an event during a drain); HQ's ``decode`` checks every event."""

    store_id: str
    box_id: str
    key_id: str
    first_seq: int
    texts: tuple[str, ...]

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.texts) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedBatch:
    batch: Batch
    signature: bytes  # SIGNATURE_BYTES of Ed25519 over signing_bytes(batch)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedBatch:
    """A decoded batch with its events checked and sealed (what HQ verifies and stores)."""

    signed: SignedBatch
    events: tuple[Sealed, ...]  # one per text, in order, each of the batch's store and box

    @property
    def batch(self) -> Batch:
        return self.signed.batch


def _text(batch: Batch, signature: bytes | None) -> str:
    """``message_codec.canonical`` of the batch's document (with ``signature`` if given), built
    from its parts: the keys in their sorted order, and each event encoded on its own, so no
    one call holds the GIL for the whole batch (see the module docstring). A test holds it to
    ``canonical(_unsigned_doc(...))`` on arbitrary batches."""
    string = message_codec.canonical
    events = ",".join([string(text) for text in batch.texts])
    signed = "" if signature is None else f',"signature":"{signature.hex()}"'
    return (
        f'{{"box_id":{string(batch.box_id)},"events":[{events}],'
        f'"first_seq":{batch.first_seq},"key_id":{string(batch.key_id)},'
        f'"last_seq":{batch.last_seq},"schema_version":{SCHEMA_VERSION}{signed},'
        f'"store_id":{string(batch.store_id)}}}'
    )


def signing_bytes(batch: Batch) -> bytes:
    """The bytes the box signs and HQ verifies: the context, then the SHA-256 digest of the
    unsigned canonical JSON."""
    return SIGNING_CONTEXT + hashlib.sha256(_text(batch, None).encode("ascii")).digest()


def encode(signed: SignedBatch) -> bytes:
    """The payload published on the box's events topic."""
    if len(signed.signature) != SIGNATURE_BYTES:
        raise ValueError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes")
    # ASCII: CANONICAL escapes every non-ASCII character, so the length is the byte count.
    return _text(signed.batch, signed.signature).encode("ascii")


def pack(
    *,
    store_id: str,
    box_id: str,
    key_id: str,
    events: Iterable[tuple[int, str]],
    max_bytes: int = MAX_BATCH_BYTES,
    max_events: int = MAX_BATCH_EVENTS,
) -> Batch:
    """The longest leading run of ``events`` (``(seq, stored text)`` pairs of this box, in seq
    order) whose signed batch fits the bounds.

    The size is counted as the encoding will be, with last_seq at its widest (20 digits), so a
    batch may come out a few bytes under its bound, never over. ``ValueError`` if no event fits
    (an event over the bound alone cannot be sent; no box writes one) or if the seqs do not
    run on without a gap.
    """
    texts: list[str] = []
    first = size = 0
    for seq, text in events:
        if len(texts) == max_events:
            break
        if not texts:
            first = seq
            size = _overhead(store_id, box_id, key_id, seq)
        elif seq != first + len(texts):
            # HQ would refuse it whole: a caller's bug, not a payload to send
            raise ValueError(f"event {seq} does not continue the run at {first + len(texts)}")
        # each event is one JSON string, with a comma before all but the first
        grown = size + len(message_codec.canonical(text)) + (1 if texts else 0)
        if grown > max_bytes:
            break
        texts.append(text)
        size = grown
    if not texts:
        raise ValueError("no event fits in a batch")
    return Batch(
        store_id=store_id, box_id=box_id, key_id=key_id, first_seq=first, texts=tuple(texts)
    )


def _overhead(store_id: str, box_id: str, key_id: str, first_seq: int) -> int:
    """The encoded batch's size without its events: the ``[]`` is counted, the widest
    last_seq assumed (19 digits and a sign are more than any seq needs)."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "store_id": store_id,
        "box_id": box_id,
        "first_seq": first_seq,
        "last_seq": -(10**19),
        "events": [],
        "key_id": key_id,
        "signature": "0" * (2 * SIGNATURE_BYTES),
    }
    return len(message_codec.canonical(doc))


def decode(data: str | bytes) -> ReceivedBatch:
    """The signed batch in ``data`` with its events sealed; a ``MessageError`` naming the
    first fault if there is none. The signature and the chain are not checked here (see the
    module docstring)."""
    _, doc = message_codec.read(data, max_bytes=MAX_BATCH_BYTES, fields=FIELDS)
    store_id, box_id = doc["store_id"], doc["box_id"]
    for name in ("store_id", "box_id"):
        fault = level_fault(doc[name])
        require(fault is None, name, doc[name], f"not a topic level ({fault})")
    require(_KEY_ID.fullmatch(doc["key_id"]) is not None, "key_id", doc["key_id"], "not 8 hex")
    signature = doc["signature"]
    require(_SIGNATURE.fullmatch(signature) is not None, "signature", signature, "not 128 hex")
    texts = doc["events"]
    require(1 <= len(texts) <= MAX_BATCH_EVENTS, "events", len(texts), "events out of bounds")
    first, last = doc["first_seq"], doc["last_seq"]
    require(first >= 1, "first_seq", first, "a seq is >= 1")
    require(last == first + len(texts) - 1, "last_seq", last, f"{len(texts)} events")
    sealed = tuple(
        _event(i, text, store_id=store_id, box_id=box_id, seq=first + i)
        for i, text in enumerate(texts)
    )
    batch = Batch(
        store_id=store_id,
        box_id=box_id,
        key_id=doc["key_id"],
        first_seq=first,
        texts=tuple(texts),
    )
    return ReceivedBatch(
        signed=SignedBatch(batch=batch, signature=bytes.fromhex(signature)), events=sealed
    )


def _event(index: int, text: object, *, store_id: str, box_id: str, seq: int) -> Sealed:
    if not is_text(text):
        raise WrongTypeError("events", "an array of strings")
    try:
        sealed = Sealed.of(text)
    except EnvelopeError as exc:
        raise BadEventError(f"{exc.reason}: {exc}", index=index) from exc
    event = sealed.event
    if event.box_id != box_id or event.attribution.store_id != store_id:
        raise BadEventError(
            f"an event of store {event.attribution.store_id!r} box {event.box_id!r}", index=index
        )
    if event.seq != seq:
        raise BadEventError(f"seq {event.seq} where {seq} belongs", index=index)
    return sealed
