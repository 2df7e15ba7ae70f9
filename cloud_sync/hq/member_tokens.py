"""Member tokens at HQ: the signed NDEF record a member's phone (or a printed card) presents at a
store's NFC reader (``cloud_sync/contract/member_token.py``).

HQ signs with its own key, the one the boxes already trust for HQ's documents, so a box checks a
token offline with nothing new to provision. A token names an existing member and lives
``valid`` (30 days by default): the member app fetches a fresh one well before it expires, and a
lost phone's token dies on its own. It identifies; it does not pay.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cloud_sync.contract import member_token
from cloud_sync.contract.member_token import MemberClaims
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.errors import InputError, UnknownMemberError
from edge_agent.domain.token_codec import key_id_of

DEFAULT_VALID = timedelta(days=30)


def issue(
    central: CentralStore,
    member_id: str,
    *,
    key: Ed25519PrivateKey,
    now: datetime,
    valid: timedelta = DEFAULT_VALID,
) -> bytes:
    """The token payload for ``member_id``, signed by ``key`` (HQ's)."""
    member_id = member_id.strip()
    if central.member(member_id) is None:
        raise UnknownMemberError(member_id)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    issued = now.replace(microsecond=0)
    try:
        return member_token.encode(
            MemberClaims(member_id=member_id, issued_at=issued, expires_at=issued + valid),
            key_id=key_id_of(public),
            sign=key.sign,
        )
    except ValueError as exc:
        raise InputError(f"no token for {member_id!r}: {exc}") from None
