"""``edge-agent serve`` reloading its config file on SIGHUP (``systemctl reload``), as a real
process: live changes applied, a file with errors and a restart-only change refused with their
reasons in the log, the agent answering tills throughout."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx

from edge_agent.api.auth import new_token, token_digest
from tests.agent_process import EDGE_AGENT, free_port, wait_for_health


def agent_toml(cache: Path, port: int, tills: dict[str, str], extra: str = "") -> str:
    lines = [
        f'[store]\nstore_id = "store-001"\n\n[cache]\npath = "{cache}"\n',
        f'[api]\nhost = "127.0.0.1"\nport = {port}\n{extra}',
    ]
    lines += [
        f'[[api.tills]]\ntill_id = "{t}"\ntoken_sha256 = "{token_digest(tok)}"\n'
        for t, tok in tills.items()
    ]
    return "\n".join(lines)


def answer_to(url: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{url}/v1/members/M1/linked-codes", headers=headers, timeout=5).status_code


def reload_and_wait(agent: subprocess.Popen[str], log: Path, marker: str) -> str:
    """Send SIGHUP; the first new log line containing ``marker``."""
    seen = log.read_text(encoding="utf-8").count(marker)
    agent.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while True:
        lines = [line for line in log.read_text(encoding="utf-8").splitlines() if marker in line]
        if len(lines) > seen:
            return lines[seen]
        assert agent.poll() is None, log.read_text(encoding="utf-8")
        assert time.monotonic() < deadline, f"no {marker!r} in the log:\n{log.read_text()}"
        time.sleep(0.05)


def test_sighup_applies_live_changes_and_refuses_bad_files_while_serving(tmp_path: Path) -> None:
    port, old, new = free_port(), new_token(), new_token()
    cache, conf, log = tmp_path / "cache.db", tmp_path / "agent.toml", tmp_path / "agent.log"
    conf.write_text(agent_toml(cache, port, {"till-1": old}), encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    with log.open("w", encoding="utf-8") as out:
        agent = subprocess.Popen(
            [str(EDGE_AGENT), "--config", str(conf), "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        assert wait_for_health(url, agent).json()["tasks"]["config_reload"]["state"] == "running"
        assert (answer_to(url, old), answer_to(url, new)) == (200, 401)

        # A live change: the tills are swapped while the agent serves.
        conf.write_text(agent_toml(cache, port, {"till-2": new}), encoding="utf-8")
        line = reload_and_wait(agent, log, "applied:")
        assert "api.tills (till-2 added, till-1 removed) applied live" in line, line
        assert (answer_to(url, old), answer_to(url, new)) == (401, 200)

        # A file with errors: refused with every one of them; nothing changes.
        broken = agent_toml(cache, 70_000, {"till-1": old}, extra="prot = 1\n")
        conf.write_text(broken, encoding="utf-8")
        line = reload_and_wait(agent, log, "refused")
        assert "nothing changed" in line, line
        assert "api.port: Input should be less than or equal to 65535" in line, line
        assert "api.prot: Extra inputs are not permitted" in line, line
        assert (answer_to(url, old), answer_to(url, new)) == (401, 200)

        # A change that needs a restart: refused with why; the new tills in it are not applied.
        moved = agent_toml(cache, free_port(), {"till-1": old})
        conf.write_text(moved, encoding="utf-8")
        line = reload_and_wait(agent, log, "refused")
        assert "api.port" in line and "needs a restart" in line, line
        assert "its live changes were not applied either: api.tills" in line, line
        assert (answer_to(url, old), answer_to(url, new)) == (401, 200)

        tasks = httpx.get(f"{url}/v1/health", timeout=5).json()["tasks"]
        assert {t["state"] for t in tasks.values()} == {"running"}
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    output = log.read_text(encoding="utf-8")
    assert agent.returncode == 0, output
    assert "Traceback" not in output, output
