"""Till authentication: each till presents its own bearer token.

Config holds only SHA-256 digests of tokens, so a leaked config file does not let anyone act
as a till. Comparison is constant-time over the digest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from config.model import TillCredential


def new_token() -> str:
    """A fresh till token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TillAuthenticator:
    def __init__(self, tills: Iterable[TillCredential]) -> None:
        self._by_digest = {t.token_sha256: t.till_id for t in tills}

    def till_for(self, authorization: str | None) -> str | None:
        """The till id behind an ``Authorization: Bearer <token>`` header, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = token_digest(token.strip())
        for known, till_id in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return till_id
        return None
