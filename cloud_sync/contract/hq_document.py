"""What HQ sends its stores, signed by HQ: one envelope for every HQ-to-box document.

Theory of operation
-------------------
A store box obeys what comes from HQ: code cache deltas, config pushes, snapshot
announcements, HQ's next key. The broker's ACL says who may publish on a topic, but a broker
is not a root of trust (a leaked HQ broker password, a misconfigured ACL, a test broker left
open), so the box believes a document only if HQ's Ed25519 key signed it. The box pins HQ's
public key in its config (``[sync] hq_public_key``); nothing that arrives over the link can
change that pin except a key announcement signed by a key already trusted (``hq_keys.py``).

A signed document is one flat JSON object, schema version 1, read with ``message_codec``'s
checks (so its faults are the link's typed ``MessageError``s)::

    schema_version  int  1
    kind            str  what ``body`` is: a ``Kind`` ("delta", "config", "snapshot", "hq_key")
    key_id          str  which HQ key signed: 8 lowercase hex digits (``key_id_of`` of the key)
    body            str  the document itself: its canonical JSON text, carried as a string
    signature       str  Ed25519 over ``signing_bytes``, 64 bytes as 128 lowercase hex

The body travels as a string, as events do in a batch (``batch.py``): what the box verifies
is exactly the text HQ signed, and only after the signature holds does the box parse it (a
document from no one is never parsed beyond its envelope). ``signing_bytes`` is
``SIGNING_CONTEXT``, the kind, a NUL, then the SHA-256 digest of the body's UTF-8 bytes, so
a signature over a delta cannot pass as one over a config (the kind is signed), and none of
HQ's signatures can pass as a box's batch signature or a coupon token's (each has its own
context). Signing and checking use ``cryptography`` and live outside this pure package: HQ
signs (``cloud_sync/hq/hq_signer.py``), the box verifies (``edge_agent/sync/hq_trust.py``).

Bounds: the whole envelope at most ``MAX_DOCUMENT_BYTES`` (a delta of ~2,000 changes; a
snapshot itself never travels in one: it is announced here and fetched in chunks).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.message_codec import Kind as FieldKind
from cloud_sync.contract.message_codec import require

SCHEMA_VERSION: Final = 1
MAX_DOCUMENT_BYTES: Final = 1024 * 1024
SIGNING_CONTEXT: Final = b"storeside/hq-document/v1\x00"
SIGNATURE_BYTES: Final = 64
FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": FieldKind.INT,
        "kind": FieldKind.STR,
        "key_id": FieldKind.STR,
        "body": FieldKind.STR,
        "signature": FieldKind.STR,
    }
}
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_SIGNATURE = re.compile(r"[0-9a-f]{128}")


class Kind(StrEnum):
    DELTA = "delta"
    CONFIG = "config"
    SNAPSHOT = "snapshot"
    HQ_KEY = "hq_key"


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """What HQ signs: a body of one kind, by one of its keys."""

    kind: Kind
    key_id: str
    body: str  # canonical JSON text of the kind's document


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedDocument:
    document: Document
    signature: bytes  # SIGNATURE_BYTES of Ed25519 over signing_bytes(document)


def signing_bytes(document: Document) -> bytes:
    """The bytes HQ signs and the box verifies (see the module docstring)."""
    digest = hashlib.sha256(document.body.encode("utf-8")).digest()
    return SIGNING_CONTEXT + document.kind.value.encode("ascii") + b"\x00" + digest


def encode(signed: SignedDocument) -> bytes:
    """The payload HQ publishes."""
    if len(signed.signature) != SIGNATURE_BYTES:
        raise ValueError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes")
    doc = signed.document
    text = message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": doc.kind.value,
            "key_id": doc.key_id,
            "body": doc.body,
            "signature": signed.signature.hex(),
        }
    )
    data = text.encode("ascii")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{len(data)} bytes is over the bound of {MAX_DOCUMENT_BYTES}")
    return data


def decode(data: str | bytes) -> SignedDocument:
    """The signed document in ``data``, its signature not yet checked; a ``MessageError``
    naming the first fault if there is none."""
    _, doc = message_codec.read(data, max_bytes=MAX_DOCUMENT_BYTES, fields=FIELDS)
    kinds = {k.value: k for k in Kind}
    require(doc["kind"] in kinds, "kind", doc["kind"], f"not one of {', '.join(kinds)}")
    require(_KEY_ID.fullmatch(doc["key_id"]) is not None, "key_id", doc["key_id"], "not 8 hex")
    signature = doc["signature"]
    require(_SIGNATURE.fullmatch(signature) is not None, "signature", signature, "not 128 hex")
    document = Document(kind=kinds[doc["kind"]], key_id=doc["key_id"], body=doc["body"])
    return SignedDocument(document=document, signature=bytes.fromhex(signature))
