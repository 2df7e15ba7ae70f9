"""Validation of codes on a basket: pure, deterministic, no I/O.

(Contract; the implementation is being written.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from edge_agent.domain.code_format import CodeFormat
from edge_agent.domain.code_record import CodeFacts
from edge_agent.domain.decision import Decision, ValidationRequest


def evaluate(
    request: ValidationRequest,
    facts: Mapping[str, CodeFacts],
    *,
    fmt: CodeFormat,
    store_cache_synced_at: datetime | None,
) -> tuple[Decision, ...]:
    """One decision per entry of ``request.codes``, in the same order.

    ``facts`` is keyed by canonical (normalised) code; a well-formed code missing from it is
    NOT_FOUND. ``store_cache_synced_at`` is when this store's cache last heard from HQ
    (None: never), for the offline policy.
    """
    raise NotImplementedError
