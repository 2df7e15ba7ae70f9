"""The config part of the demo: a running box takes a new till and new limits without a
restart, and refuses, whole, a change only a restart can make."""

from __future__ import annotations

import asyncio

import httpx

from config.model import AgentConfig
from demo.narration import say, step
from edge_agent.api.auth import new_token, token_digest
from edge_agent.runtime.reconfigure import Reconfigured
from edge_agent.wiring import Agent


def _apply(agent: Agent, cfg: AgentConfig) -> Reconfigured:
    """``agent.reconfigure`` on the agent's own loop (what SIGHUP does in ``edge-agent serve``)."""
    loop = agent.supervisor.loop
    if loop is None:
        raise RuntimeError("the agent is not running")
    return asyncio.run_coroutine_threadsafe(agent.reconfigure(cfg), loop).result(30)


def _linked_codes(url: str, token: str) -> int:
    got = httpx.get(
        f"{url}/v1/members/M-0001/linked-codes",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return got.status_code


def reconfigure_story(agent: Agent, url: str) -> None:
    step("The store opens a third till: a new config, applied while the tills keep working")
    token = new_token()
    say(f"   till-3 before the change: HTTP {_linked_codes(url, token)} (no such till yet)")
    doc = agent.cfg.model_dump(mode="json")
    doc["api"]["tills"].append({"till_id": "till-3", "token_sha256": token_digest(token)})
    doc["redemption"]["till_failure_limit"] = 20
    done = _apply(agent, AgentConfig.model_validate(doc))
    say(f"   {done.status.value}: " + "; ".join(c.path for c in done.diff.live))
    say(f"   till-3 after the change: HTTP {_linked_codes(url, token)}, no restart")

    step("A change only a restart can make is refused whole, and nothing changes")
    doc["api"]["port"] = 9999
    doc["redemption"]["till_failure_limit"] = 5
    done = _apply(agent, AgentConfig.model_validate(doc))
    say(f"   {done.status.value}: {done.problems[0]}")
    say(f"   the failure limit stays {agent.cfg.redemption.till_failure_limit}")
