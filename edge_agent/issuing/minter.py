"""Codes this box mints offline: in the namespace HQ assigned to its store, never a taken one.

Receipt coupons (``service.py``) and proximity offers (``edge_agent/proximity``) both mint here,
so both obey the same rules: the minting namespace is the one HQ's registry assigned to this
store, recorded from the last snapshot (``CodeCache.minting_namespace``); none, one that does not
fit the code format, or one other than the config's ``store.namespace`` (a cross-check when set)
means no code, and ``problem`` says why. A drawn code must be new to the ``codes`` table and to
every table that keeps this box's minted codes for a snapshot reload (``CODE_TAKEN_SQL``),
drawn again on the astronomically rare collision.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Final

from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.code_format import ALPHABET, CodeFormat, new_code, parse
from edge_agent.errors import StoreError

log = logging.getLogger(__name__)

MINT_ATTEMPTS: Final = 8  # at HQ's 3% namespace fill, 8 collisions in a row has odds ~1e-12
# A snapshot reload may have dropped one of ours from codes before HQ learnt it: the tables that
# keep our minted codes for the reload count as taken too.
CODE_TAKEN_SQL: Final = (
    "SELECT 1 FROM codes WHERE code = ?1 UNION ALL SELECT 1 FROM coupon_issues WHERE code = ?1 "
    "UNION ALL SELECT 1 FROM proximity_offers WHERE code = ?1"
)


class IssueError(StoreError):
    """Issuing failed; the transaction was rolled back."""


class CodeSpaceExhaustedError(IssueError):
    def __init__(self, *, namespace: str, attempts: int) -> None:
        super().__init__(
            f"{attempts} freshly minted codes in namespace {namespace!r} all existed already: "
            "the namespace is full; ask HQ for a fresh one"
        )
        self.namespace = namespace
        self.attempts = attempts


def fits(fmt: CodeFormat, namespace: str) -> bool:
    return len(namespace) == fmt.namespace_length and all(c in ALPHABET for c in namespace)


class Minter:
    """Mints codes of ``fmt`` in the store's assigned namespace; see the module docstring.

    ``draw`` makes one candidate (default ``new_code(fmt, namespace)``); it exists so tests can
    force a collision, and whatever it returns must be a code of ``fmt`` in the namespace."""

    def __init__(
        self,
        cache: CodeCache,
        *,
        fmt: CodeFormat,
        expected_namespace: str | None = None,
        draw: Callable[[], str] | None = None,
    ) -> None:
        if expected_namespace is not None and not fits(fmt, expected_namespace):
            raise ValueError(f"namespace {expected_namespace!r} does not fit the code format")
        self.cache = cache
        self.fmt = fmt
        self.expected_namespace = expected_namespace
        self._draw = draw

    def problem(self) -> str | None:
        """Why this box may not mint now (None: it may, in ``cache.minting_namespace()``)."""
        namespace = self.cache.minting_namespace()
        store = self.cache.store_id
        if namespace is None:
            return (
                f"no minting namespace: HQ's last snapshot assigned none to store {store} "
                f"(storeside-hq namespace assign {store}, then a new snapshot)"
            )
        if not fits(self.fmt, namespace):
            return f"the snapshot's namespace {namespace!r} does not fit this box's code format"
        if self.expected_namespace is not None and namespace != self.expected_namespace:
            return (
                f"the snapshot assigns namespace {namespace!r} to store {store}, but the "
                f"config's store.namespace says {self.expected_namespace!r}"
            )
        return None

    def mint(self, conn: sqlite3.Connection) -> str:
        """A new code, inside the caller's transaction. Call only when ``problem()`` is None."""
        namespace = self.cache.minting_namespace()
        if namespace is None:
            raise ValueError("mint() without a minting namespace: check problem() first")
        prefix = len(self.fmt.prefix)
        for _ in range(MINT_ATTEMPTS):
            code = self._draw() if self._draw is not None else new_code(self.fmt, namespace)
            if parse(code, self.fmt) != code or code[prefix:].find(namespace) != 0:
                raise ValueError(f"minted {code!r} is not a code of namespace {namespace}")
            if conn.execute(CODE_TAKEN_SQL, (code,)).fetchone() is None:
                return code
            log.warning("freshly minted code %s already exists; drawing another", code)
        raise CodeSpaceExhaustedError(namespace=namespace, attempts=MINT_ATTEMPTS)
