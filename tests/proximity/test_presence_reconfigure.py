"""HQ's push of new offer rules applies live on a running agent: the proximity service on the
cache's thread and the presence loop take them; moving a scanner to another zone still needs a
restart and changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from config.model import AgentConfig
from edge_agent.api.auth import new_token
from edge_agent.issuing import signing_key
from edge_agent.runtime.reconfigure import Status
from tests.runtime.test_reconfigure import config, reconfigure, running


def _presence(tmp_path: Path, rules: list[dict[str, Any]], scanner_zone: str = "coffee") -> Any:
    scenario = tmp_path / "empty.jsonl"
    scenario.write_text("")
    zones = [{"id": "coffee", "sources": []}, {"id": "bakery", "sources": []}]
    for zone in zones:
        zone["sources"] = ["scanner-1"] if zone["id"] == scanner_zone else [f"{zone['id']}-x"]
    return {
        "enabled": True,
        "scanners": [{"id": "scanner-1", "kind": "simulated", "scenario": str(scenario)}],
        "zones": zones,
        "rules": rules,
    }


def _cfg(tmp_path: Path, tokens: dict[str, str], presence: Any) -> AgentConfig:
    return config(
        tmp_path,
        tokens=tokens,
        signing={"key_path": str(tmp_path / "s.key")},
        presence=presence,
    )


def test_new_offer_rules_apply_live_and_a_new_layout_needs_a_restart(tmp_path: Path) -> None:
    signing_key.create(tmp_path / "s.key")
    tokens = {"till-1": new_token()}
    first = [{"id": "coffee-20", "zone": "coffee", "min_dwell_s": 20}]
    cfg = _cfg(tmp_path, tokens, _presence(tmp_path, first))
    with running(cfg) as (agent, _url):
        assert agent.presence is not None
        second = [*first, {"id": "bakery-5", "zone": "bakery", "min_dwell_s": 5, "max_per_day": 3}]
        done = reconfigure(agent, _cfg(tmp_path, tokens, _presence(tmp_path, second)))
        assert done.status is Status.APPLIED, done
        loop = agent.supervisor.loop
        assert loop is not None

        async def rules() -> list[str]:
            def read(s: Any) -> list[str]:
                return [r.rule_id for r in s.proximity.policy.rules]

            return await agent.db.run(read)

        assert asyncio.run_coroutine_threadsafe(rules(), loop).result(10) == [
            "coffee-20",
            "bakery-5",
        ]
        bakery = next(z for z in agent.presence.loop.tracker.config.zones if z.zone_id == "bakery")
        assert bakery.dwell_marks_s == (5.0,)
        moved = _cfg(tmp_path, tokens, _presence(tmp_path, second, scanner_zone="bakery"))
        refused = reconfigure(agent, moved)
        assert refused.status is Status.REFUSED
        assert any(c.path == "presence.zones" for c in refused.diff.restart)
        assert agent.cfg.presence.zones[0].sources == ("scanner-1",)
