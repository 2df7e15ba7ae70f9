"""A real POS API server (uvicorn on a loopback socket) over a real SQLite cache file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.model import AgentConfig, TillCredential
from edge_agent.api.auth import new_token, token_digest
from edge_agent.issuing import signing_key
from edge_agent.runtime.background import serving
from edge_agent.wiring import build_app
from tests.cache import factories


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Server:
    base_url: str
    tokens: dict[str, str]
    clock: Clock
    cache_path: Path

    def client(self, till: str | None = "till-1") -> httpx.Client:
        headers = {} if till is None else {"Authorization": f"Bearer {self.tokens[till]}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10)


@contextmanager
def running_server(
    tmp_path: Path, *, receipts: bool = False, points: bool = False
) -> Iterator[Server]:
    """A real server over a seeded cache; with ``receipts``, a store signing key too, so the
    receipt coupon routes issue (without one they answer 503 receipts_unavailable)."""
    cache_path = tmp_path / "cache.db"
    factories.open_cache(cache_path).close()  # seed campaigns, members and codes
    tokens = {t: new_token() for t in ("till-1", "till-2")}
    extra: dict[str, Any] = {}
    if receipts:
        key_path = tmp_path / "store-signing.key"
        signing_key.create(key_path)
        extra["signing"] = {"key_path": str(key_path)}
    if points:  # the points routes answer 503 points_disabled without it
        extra["points"] = {"enabled": True}
    cfg = AgentConfig.model_validate(
        {
            "code_format": {"prefix": "SS"},
            "store": {"store_id": factories.STORE},
            "cache": {"path": str(cache_path)},
            "redemption": {"hold_seconds": 60, "till_failure_limit": 5},
            "api": {
                "tills": [
                    TillCredential(till_id=t, token_sha256=token_digest(tok)).model_dump()
                    for t, tok in tokens.items()
                ]
            },
            **extra,
        }
    )
    clock = Clock(factories.NOW)
    agent = build_app(cfg, clock=clock)
    try:
        with serving(agent) as base_url:
            yield Server(base_url, tokens, clock, cache_path)
    finally:
        agent.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as s:
        yield s
