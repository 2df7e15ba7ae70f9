"""HQ operators' bearer tokens for the ledger API: a file of one token a line, only HQ's
user may read it (mode 0600, as HQ's other secrets: ``hq_key_file``).

``create`` writes a new file with one fresh token (256 bits, URL-safe); an operator is given
a line of it. ``load`` returns only the tokens' SHA-256 digests, which is all the app keeps:
``Operators.allows`` compares digests in constant time. No error message, log line or
``repr`` ever carries a token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from cloud_sync.hq.errors import InputError
from cloud_sync.hq.hq_key_file import read_private, write_private

MIN_LENGTH: Final = 22  # 128 bits of URL-safe base64


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Operators:
    def __init__(self, digests: Iterable[str]) -> None:
        self._digests = tuple(digests)

    def __repr__(self) -> str:
        return f"Operators({len(self._digests)} tokens)"

    def allows(self, authorization: str | None) -> bool:
        """Whether ``Authorization: Bearer <token>`` carries a known token."""
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        wanted = digest(token.strip())
        # Every digest compared: the time does not say which one matched.
        return sum(hmac.compare_digest(wanted, d) for d in self._digests) > 0


def create(path: Path) -> None:
    """A new token file at ``path``; InputError if a file is there."""
    text = secrets.token_urlsafe(32) + "\n"
    write_private(path, text.encode("ascii"), exists=f"{path} exists; refusing to replace it")


def load(path: Path) -> Operators:
    data = read_private(
        path, missing=f"{path}: no token file (create one: storeside-hq ledger-api-token)"
    )
    try:
        lines = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    if not lines:
        raise InputError(f"{path}: no token in it")
    short = [n for n, line in enumerate(lines, start=1) if len(line) < MIN_LENGTH]
    if short:
        raise InputError(f"{path}: line {short[0]} is shorter than {MIN_LENGTH} characters")
    return Operators(digest(line) for line in lines)
