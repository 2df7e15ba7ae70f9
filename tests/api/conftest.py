"""A real POS API server (uvicorn on a loopback socket) over a real SQLite cache file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from config.model import AgentConfig, TillCredential
from edge_agent.api.auth import new_token, token_digest
from edge_agent.api.background import serving
from edge_agent.wiring import build_app
from tests.store import factories


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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    cache_path = tmp_path / "cache.db"
    factories.open_cache(cache_path).close()  # seed campaigns, members and codes
    tokens = {t: new_token() for t in ("till-1", "till-2")}
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
        }
    )
    clock = Clock(factories.NOW)
    agent = build_app(cfg, clock=clock)
    try:
        with serving(agent.app) as base_url:
            yield Server(base_url, tokens, clock, cache_path)
    finally:
        agent.close()
