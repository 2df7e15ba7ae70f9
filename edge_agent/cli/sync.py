"""``edge-agent sync status``: how far behind HQ this box is, read from its cache file.

It reads the file, not the running agent, so it answers with the agent stopped too: the
outbox (depth, oldest unsent event), HQ's last ack, and the link's state as the agent last
recorded it (with when, since a killed agent cannot record that it is gone).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.model import AgentConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.sync import outbox_access
from edge_agent.sync.outbox_access import SyncFacts


def _ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never"
    seconds = max(0, int((now - at).total_seconds()))
    if seconds < 120:
        return f"{at:%Y-%m-%d %H:%M:%S}Z ({seconds} s ago)"
    return f"{at:%Y-%m-%d %H:%M:%S}Z ({seconds // 60} min ago)"


def describe(facts: SyncFacts, cfg: AgentConfig, *, now: datetime) -> list[str]:
    if cfg.sync.broker_url is None:
        link = "off (sync.broker_url is not set: events wait in the outbox)"
    elif facts.connected is None:
        link = f"never connected to {cfg.sync.broker_url}"
    else:
        state = "connected" if facts.connected else "disconnected"
        link = f"{state} to {cfg.sync.broker_url} since {_ago(facts.link_changed_at, now)}"
    oldest = (
        "none"
        if facts.oldest_unsent_seq is None
        else f"#{facts.oldest_unsent_seq}, {_ago(facts.oldest_unsent_at, now)}"
    )
    return [
        f"box {cfg.store.box_id} of store {cfg.store.store_id}",
        f"link:          {link} (session {facts.session})",
        f"outbox:        {facts.outbox_depth} events waiting; oldest unsent {oldest}",
        f"acknowledged:  through #{facts.acked_through} of #{facts.next_seq - 1}, last ack "
        f"{_ago(facts.last_ack_at, now)}",
    ]


def cmd_sync_status(args: argparse.Namespace, cfg: AgentConfig) -> int:
    path = Path(cfg.cache.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache = CodeCache.open(path, store_id=cfg.store.store_id, box_id=cfg.store.box_id)
    try:
        facts = outbox_access.facts(cache)
    finally:
        cache.close()
    if args.json:
        doc = {"box_id": cfg.store.box_id, "broker_url": cfg.sync.broker_url, **asdict(facts)}
        print(json.dumps(doc, indent=2, default=str))
    else:
        print("\n".join(describe(facts, cfg, now=datetime.now(UTC))))
    return 0


def register(sub: Any) -> None:
    """Add `sync` and its subcommands to the `edge-agent` parser's subparsers."""
    sync = sub.add_parser("sync", help="the link to HQ")
    ssub = sync.add_subparsers(dest="sync_command", required=True)
    p = ssub.add_parser("status", help="connected?, outbox depth, oldest unsent, last ack")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_sync_status)
