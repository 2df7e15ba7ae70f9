"""Signing the box's event batches with the store key (``cloud_sync/contract/batch.py``).

The key is the store's Ed25519 signing key (``edge_agent/issuing/signing_key.py``), the one HQ
registers and ships to every store for receipt coupons; HQ checks batches against the same
registry (``cloud_sync/hq/batch_verifier.py``). The batch's own signing context keeps the two
uses apart, so a coupon signature never verifies as a batch or the other way round.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract.batch import Batch, SignedBatch, signing_bytes
from edge_agent.domain.coupon_token import key_id


def sign(batch: Batch, key: Ed25519PrivateKey) -> SignedBatch:
    """``batch`` signed with ``key``, which must be the key its ``key_id`` names."""
    if batch.key_id != key_id(key.public_key()):
        raise ValueError(f"batch names key {batch.key_id}, not this key's id")
    return SignedBatch(batch=batch, signature=key.sign(signing_bytes(batch)))
