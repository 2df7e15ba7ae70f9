"""What the box believes of HQ: the HQ keys it trusts, and the check of every HQ document.

Theory of operation
-------------------
The trust root is the HQ public key pinned in the box's config (``[sync] hq_public_key``): it
is always trusted and never retired by anything that arrives over the link. Keys HQ announces
(``cloud_sync/contract/hq_key.py``) join it once their announcement passes ``open`` with a key
already trusted; an announcement that retires a key sets when that key stops being trusted.
``HqTrust`` is a value: ``accept`` answers the next trust, and the caller stores it (the
cache's table of announced keys) before it acts on it.

``open(data, kind, now)`` is the one way in for a document from HQ. In order: the envelope
decodes (``hq_document.decode``, a ``MessageError`` is ``malformed``), its kind is the one the
topic carries (``wrong_kind``: a config published on the delta topic), its key is trusted
(``unknown_key``) and not retired at ``now`` (``retired_key``), and the Ed25519 signature holds
over ``signing_bytes`` (``bad_signature``). Only then is the body handed on, as text, for its
kind's decoder. Each refusal is an ``RefusedDocumentError`` with a stable ``reason`` the caller
logs and counts; nothing of the document is acted on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_sync.contract import hq_document, hq_key
from cloud_sync.contract.hq_document import Document, Kind
from cloud_sync.contract.message_codec import MessageError
from edge_agent.domain.token_codec import key_id_of


class Refusal(StrEnum):
    MALFORMED = "malformed"
    WRONG_KIND = "wrong_kind"
    UNKNOWN_KEY = "unknown_key"
    RETIRED_KEY = "retired_key"
    BAD_SIGNATURE = "bad_signature"
    KEY_ID_MISMATCH = "key_id_mismatch"  # an announcement whose key_id is not its key's


class RefusedDocumentError(Exception):
    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class HqKey:
    key_id: str
    public_key: bytes  # 32 raw bytes
    pinned: bool = False  # the config's key: the root, never retired
    retire_at: datetime | None = None  # refused from then on (never for the pinned key)

    def trusted_at(self, now: datetime) -> bool:
        return self.pinned or self.retire_at is None or now < self.retire_at


@dataclass(frozen=True, slots=True)
class HqTrust:
    keys: Mapping[str, HqKey]

    @classmethod
    def pinned(cls, public_key: bytes, announced: Iterable[HqKey] = ()) -> HqTrust:
        """The trust of a box whose config pins ``public_key``, with the keys it has accepted
        from announcements since (the pin wins over an announced key of the same id)."""
        root = HqKey(key_id=key_id_of(public_key), public_key=public_key, pinned=True)
        keys = {k.key_id: replace(k, pinned=False) for k in announced}
        keys[root.key_id] = root
        return cls(MappingProxyType(keys))

    @property
    def announced(self) -> tuple[HqKey, ...]:
        """What the box stores: every key but the pin."""
        return tuple(k for k in self.keys.values() if not k.pinned)

    def open(self, data: bytes, *, kind: Kind, now: datetime) -> Document:
        """The document in ``data`` if a key trusted at ``now`` signed it as ``kind``; else
        ``RefusedDocumentError`` (see the module docstring)."""
        try:
            signed = hq_document.decode(data)
        except MessageError as exc:
            raise RefusedDocumentError(Refusal.MALFORMED, f"{exc.reason}: {exc}") from None
        doc = signed.document
        if doc.kind is not kind:
            why = f"a {doc.kind.value} document where a {kind.value} belongs"
            raise RefusedDocumentError(Refusal.WRONG_KIND, why)
        key = self.keys.get(doc.key_id)
        if key is None:
            raise RefusedDocumentError(Refusal.UNKNOWN_KEY, f"key {doc.key_id} is not trusted")
        if not key.trusted_at(now):
            why = f"key {doc.key_id} was retired at {key.retire_at}"
            raise RefusedDocumentError(Refusal.RETIRED_KEY, why)
        try:
            public = Ed25519PublicKey.from_public_bytes(key.public_key)
            public.verify(signed.signature, hq_document.signing_bytes(doc))
        except (InvalidSignature, ValueError):  # ValueError: bytes that are no Ed25519 key
            why = f"not signed by key {doc.key_id}"
            raise RefusedDocumentError(Refusal.BAD_SIGNATURE, why) from None
        return doc

    def accept(self, data: bytes, *, now: datetime) -> tuple[HqTrust, hq_key.KeyAnnouncement]:
        """The trust after an announcement in ``data`` (signed by a trusted key), and the
        announcement; ``RefusedDocumentError`` and no change if it is not one."""
        doc = self.open(data, kind=Kind.HQ_KEY, now=now)
        try:
            announcement = hq_key.decode(doc.body)
        except MessageError as exc:
            raise RefusedDocumentError(Refusal.MALFORMED, f"{exc.reason}: {exc}") from None
        if key_id_of(announcement.public_key) != announcement.key_id:
            why = f"key_id {announcement.key_id} is not the id of the key announced"
            raise RefusedDocumentError(Refusal.KEY_ID_MISMATCH, why)
        keys = dict(self.keys)
        known = keys.get(announcement.key_id)
        if known is None:
            keys[announcement.key_id] = HqKey(
                key_id=announcement.key_id, public_key=announcement.public_key
            )
        retired = keys.get(announcement.retires or "")
        if retired is not None and not retired.pinned:
            keys[retired.key_id] = replace(retired, retire_at=announcement.retire_at)
        return HqTrust(MappingProxyType(keys)), announcement
