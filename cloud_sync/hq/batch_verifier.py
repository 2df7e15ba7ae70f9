"""HQ's check of a batch's signature against the store keys it registered.

A batch names the key that signed it (``key_id``); HQ trusts it only if that key is registered
(``store_keys.py``) for the batch's own store and not revoked, and the Ed25519 signature over
``signing_bytes`` verifies with it (``cloud_sync/contract/batch.py``). Any other answer is a
``SignatureFault``, the reason HQ quarantines the batch by; ``verify`` is the bare check with
one key. The registry knows keys per store, not per box: a box signs as its store, and the
broker's ACL (one subtree per box) keeps boxes of one store from publishing as each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_sync.contract.batch import SignedBatch, signing_bytes
from cloud_sync.hq.store_keys import StoreKey
from edge_agent.domain.token_codec import public_key_from_text


class SignatureFault(StrEnum):
    UNKNOWN_KEY = "unknown_key"  # no registered key has the batch's key_id
    OTHER_STORE = "other_store"  # the key is registered, for another store
    REVOKED_KEY = "revoked_key"
    BAD_SIGNATURE = "bad_signature"  # forged, altered, or signed with another key


def verify(signed: SignedBatch, public_key: Ed25519PublicKey) -> bool:
    """Whether ``signed``'s signature is ``public_key``'s over its signing bytes."""
    try:
        public_key.verify(signed.signature, signing_bytes(signed.batch))
    except InvalidSignature:
        return False
    return True


def check(signed: SignedBatch, keys: Iterable[StoreKey]) -> SignatureFault | None:
    """None if a registered, unrevoked key of the batch's store signed it; else why not."""
    batch = signed.batch
    key = next((k for k in keys if k.key_id == batch.key_id), None)
    if key is None:
        return SignatureFault.UNKNOWN_KEY
    if key.store_id != batch.store_id:
        return SignatureFault.OTHER_STORE
    if key.revoked_at is not None:
        return SignatureFault.REVOKED_KEY
    raw = public_key_from_text(key.public_key)
    if raw is None or not verify(signed, Ed25519PublicKey.from_public_bytes(raw)):
        return SignatureFault.BAD_SIGNATURE
    return None
