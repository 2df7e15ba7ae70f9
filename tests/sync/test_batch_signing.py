"""Batches signed on the box (``edge_agent/sync/batch_signer.py``) and checked at HQ
(``cloud_sync/hq/batch_verifier.py``): only the named key of the batch's own store verifies,
and any changed byte of a signed batch fails, either as a payload or as a signature."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import batch as batches
from cloud_sync.contract.batch import Batch
from cloud_sync.contract.message_codec import MessageError
from cloud_sync.hq import batch_verifier
from cloud_sync.hq.batch_verifier import SignatureFault
from cloud_sync.hq.store_keys import StoreKey
from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import key_id, raw_public_key
from edge_agent.sync.batch_signer import sign
from tests.contract.streams import BOX, STORE, rows, stream

KEY_A = Ed25519PrivateKey.generate()  # box A's store key
KEY_B = Ed25519PrivateKey.generate()  # another box's
REGISTERED = datetime(2026, 1, 1, tzinfo=UTC)


def registered(key: Ed25519PrivateKey, store: str = STORE, revoked: bool = False) -> StoreKey:
    public = key.public_key()
    return StoreKey(
        key_id=key_id(public),
        store_id=store,
        public_key=token_codec.public_key_text(raw_public_key(public)),
        registered_at=REGISTERED,
        revoked_at=REGISTERED if revoked else None,
    )


def batch_of(key: Ed25519PrivateKey, count: int = 3) -> Batch:
    return batches.pack(
        store_id=STORE, box_id=BOX, key_id=key_id(key.public_key()), events=rows(stream(count))
    )


SIGNED_BY_A = sign(batch_of(KEY_A), KEY_A)
PAYLOAD = batches.encode(SIGNED_BY_A)


def test_a_batch_verifies_with_its_own_key_only() -> None:
    assert batch_verifier.verify(SIGNED_BY_A, KEY_A.public_key())
    assert not batch_verifier.verify(SIGNED_BY_A, KEY_B.public_key())
    received = batches.decode(PAYLOAD)
    assert batch_verifier.check(received.signed, [registered(KEY_B), registered(KEY_A)]) is None


def test_box_b_cannot_pose_as_box_a() -> None:
    # B signs A's batch with its own key but A's key id: HQ checks it with A's key.
    forged = batches.SignedBatch(
        batch=SIGNED_BY_A.batch, signature=KEY_B.sign(batches.signing_bytes(SIGNED_BY_A.batch))
    )
    keys = [registered(KEY_A), registered(KEY_B)]
    assert batch_verifier.check(forged, keys) is SignatureFault.BAD_SIGNATURE
    # B signs under its own key id, registered for another store: not this store's key.
    as_b = sign(batch_of(KEY_B), KEY_B)
    assert (
        batch_verifier.check(as_b, [registered(KEY_A), registered(KEY_B, store="store-002")])
        is SignatureFault.OTHER_STORE
    )


def test_unknown_and_revoked_keys_are_refused() -> None:
    assert batch_verifier.check(SIGNED_BY_A, [registered(KEY_B)]) is SignatureFault.UNKNOWN_KEY
    revoked = [registered(KEY_A, revoked=True)]
    assert batch_verifier.check(SIGNED_BY_A, revoked) is SignatureFault.REVOKED_KEY


def test_the_box_signs_only_with_the_key_its_batch_names() -> None:
    with pytest.raises(ValueError):
        sign(batch_of(KEY_A), KEY_B)


def test_a_coupon_signature_is_no_batch_signature() -> None:
    # The same key signs coupon tokens: the contexts keep the two apart.
    body = batches.signing_bytes(SIGNED_BY_A.batch)[len(batches.SIGNING_CONTEXT) :]
    other = batches.SignedBatch(
        batch=SIGNED_BY_A.batch, signature=KEY_A.sign(token_codec.SIGNING_CONTEXT + body)
    )
    assert not batch_verifier.verify(other, KEY_A.public_key())


@settings(max_examples=400)
@given(st.integers(min_value=0, max_value=len(PAYLOAD) - 1), st.integers(1, 255))
def test_any_changed_byte_fails(position: int, flip: int) -> None:
    changed = bytearray(PAYLOAD)
    changed[position] ^= flip
    try:
        received = batches.decode(bytes(changed))
    except MessageError:
        return  # refused as a payload
    assert batch_verifier.check(received.signed, [registered(KEY_A)]) is not None
