"""The box's trust in HQ: only documents signed by a trusted HQ key, of the kind the topic
carries, are opened; HQ's next key is trusted once announced by a trusted one; a retired key
is refused after its retire_at; the pinned key is the root (nothing retires it) and is how an
installer brings over a box that missed an announcement. Keys are made by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import hq_document, hq_key
from cloud_sync.contract.hq_document import Kind
from cloud_sync.contract.hq_key import KeyAnnouncement
from cloud_sync.hq.hq_signer import sign
from edge_agent.domain.coupon_token import key_id, raw_public_key
from edge_agent.sync.hq_trust import HqTrust, Refusal, RefusedDocumentError

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
BODY = '{"hello":"stores"}'


def raw(key: Ed25519PrivateKey) -> bytes:
    return raw_public_key(key.public_key())


def announcing(
    new: Ed25519PrivateKey,
    *,
    by: Ed25519PrivateKey,
    retires: Ed25519PrivateKey | None = None,
    retire_at: datetime | None = None,
) -> bytes:
    body = hq_key.encode(
        KeyAnnouncement(
            key_id=key_id(new.public_key()),
            public_key=raw(new),
            announced_at=T0,
            retires=None if retires is None else key_id(retires.public_key()),
            retire_at=retire_at,
        )
    )
    return sign(Kind.HQ_KEY, body, by)


def refused(trust: HqTrust, data: bytes, *, kind: Kind = Kind.DELTA, now: datetime = T0) -> str:
    with pytest.raises(RefusedDocumentError) as raised:
        trust.open(data, kind=kind, now=now)
    return raised.value.reason.value


def test_a_document_signed_by_the_pinned_key_opens_and_nothing_else_does() -> None:
    hq, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    trust = HqTrust.pinned(raw(hq))
    assert trust.open(sign(Kind.DELTA, BODY, hq), kind=Kind.DELTA, now=T0).body == BODY

    assert refused(trust, sign(Kind.DELTA, BODY, stranger)) == Refusal.UNKNOWN_KEY
    assert refused(trust, sign(Kind.CONFIG, BODY, hq)) == Refusal.WRONG_KIND
    assert refused(trust, b'{"kind":"delta"}') == Refusal.MALFORMED
    assert refused(trust, b"\xff") == Refusal.MALFORMED
    # HQ's key id, another body: a signature that does not cover what came.
    genuine = hq_document.decode(sign(Kind.DELTA, BODY, hq))
    altered = hq_document.SignedDocument(
        document=hq_document.Document(
            kind=Kind.DELTA, key_id=genuine.document.key_id, body='{"hello":"thieves"}'
        ),
        signature=genuine.signature,
    )
    assert refused(trust, hq_document.encode(altered)) == Refusal.BAD_SIGNATURE
    unsigned = hq_document.SignedDocument(document=genuine.document, signature=bytes(64))
    assert refused(trust, hq_document.encode(unsigned)) == Refusal.BAD_SIGNATURE


def test_a_rotation_trusts_the_next_key_and_retires_the_old_one_at_its_time() -> None:
    first, second, third = (Ed25519PrivateKey.generate() for _ in range(3))
    trust = HqTrust.pinned(raw(first))
    trust, told = trust.accept(announcing(second, by=first), now=T0)
    assert told.key_id == key_id(second.public_key())
    assert trust.open(sign(Kind.CONFIG, BODY, second), kind=Kind.CONFIG, now=T0).body == BODY

    retire_at = T0 + timedelta(days=7)
    trust, _ = trust.accept(
        announcing(third, by=second, retires=second, retire_at=retire_at), now=T0
    )
    by_second = sign(Kind.DELTA, BODY, second)
    assert trust.open(by_second, kind=Kind.DELTA, now=retire_at - timedelta(seconds=1))
    assert refused(trust, by_second, now=retire_at) == Refusal.RETIRED_KEY
    assert trust.open(sign(Kind.DELTA, BODY, third), kind=Kind.DELTA, now=retire_at)
    # What the box stores, read back beside the same pin, trusts the same.
    again = HqTrust.pinned(raw(first), trust.announced)
    assert again == trust


def test_the_pinned_key_is_never_retired_by_an_announcement() -> None:
    root, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    trust = HqTrust.pinned(raw(root))
    trust, _ = trust.accept(announcing(other, by=root, retires=root, retire_at=T0), now=T0)
    later = T0 + timedelta(days=365)
    assert trust.open(sign(Kind.DELTA, BODY, root), kind=Kind.DELTA, now=later)


def test_an_announcement_not_signed_by_a_trusted_key_changes_nothing() -> None:
    hq, thief, thiefs_next = (Ed25519PrivateKey.generate() for _ in range(3))
    trust = HqTrust.pinned(raw(hq))
    with pytest.raises(RefusedDocumentError) as raised:
        trust.accept(announcing(thiefs_next, by=thief), now=T0)
    assert raised.value.reason is Refusal.UNKNOWN_KEY
    assert refused(trust, sign(Kind.DELTA, BODY, thiefs_next)) == Refusal.UNKNOWN_KEY


def test_an_announcement_whose_key_id_is_not_its_keys_is_refused() -> None:
    hq, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    body = hq_key.encode(KeyAnnouncement(key_id="0a1b2c3d", public_key=raw(new), announced_at=T0))
    with pytest.raises(RefusedDocumentError) as raised:
        HqTrust.pinned(raw(hq)).accept(sign(Kind.HQ_KEY, body, hq), now=T0)
    assert raised.value.reason is Refusal.KEY_ID_MISMATCH


def test_a_box_that_missed_the_announcement_is_brought_over_by_its_pin() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    missed = HqTrust.pinned(raw(old))
    assert refused(missed, sign(Kind.DELTA, BODY, new)) == Refusal.UNKNOWN_KEY
    installed = HqTrust.pinned(raw(new), missed.announced)  # the installer sets the new pin
    assert installed.open(sign(Kind.DELTA, BODY, new), kind=Kind.DELTA, now=T0).body == BODY
