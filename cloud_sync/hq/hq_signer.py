"""HQ signs what it sends to its stores (``cloud_sync/contract/hq_document.py``).

HQ's signing key is its own (never a store's): the public half is what every box pins in its
``[sync] hq_public_key``, and what the next key's announcement (``hq_key.py``) is signed with.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import hq_document
from cloud_sync.contract.hq_document import Document, Kind, SignedDocument
from edge_agent.domain.coupon_token import key_id


def sign(kind: Kind, body: str, key: Ed25519PrivateKey) -> bytes:
    """The payload of ``body`` as a document of ``kind``, signed with HQ's ``key``."""
    document = Document(kind=kind, key_id=key_id(key.public_key()), body=body)
    signature = key.sign(hq_document.signing_bytes(document))
    return hq_document.encode(SignedDocument(document=document, signature=signature))
