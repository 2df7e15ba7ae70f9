"""What the box keeps of HQ's config pushes (the ``config_push`` row, ``config_push_schema``):
read once at start, written after each push, each write one transaction."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from edge_agent.cache.code_cache import CodeCache


@dataclass(frozen=True, slots=True, kw_only=True)
class KeptPush:
    seen_version: int | None = None
    seen_digest: str | None = None
    running_version: int | None = None
    overlay: dict[str, Any] = field(default_factory=dict)  # the last good config's
    result: bytes | None = None  # the last config_result payload


def read(conn: sqlite3.Connection) -> KeptPush:
    row = conn.execute(
        "SELECT seen_version, seen_digest, running_version, overlay, result "
        "FROM config_push WHERE id = 1"
    ).fetchone()
    if row is None:
        return KeptPush()
    seen, digest, running, overlay, result = row
    return KeptPush(
        seen_version=seen,
        seen_digest=digest,
        running_version=running,
        overlay=json.loads(overlay),
        result=None if result is None else bytes(result),
    )


def write(cache: CodeCache, kept: KeptPush) -> None:
    with cache.transaction() as conn:
        conn.execute(
            "UPDATE config_push SET seen_version = ?, seen_digest = ?, running_version = ?, "
            "overlay = ?, result = ? WHERE id = 1",
            (
                kept.seen_version,
                kept.seen_digest,
                kept.running_version,
                json.dumps(kept.overlay, sort_keys=True),
                kept.result,
            ),
        )
