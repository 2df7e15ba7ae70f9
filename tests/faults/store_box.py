"""The store's side of a fault test: a real ``edge-agent serve`` inside the box's namespace
(``netns.py``) over a cache seeded with anonymous codes, and tills redeeming them through the
POS API over the store LAN link while the WAN link to HQ is cut and healed.

The cache is seeded directly (one campaign valid around now, ``CODES`` anonymous codes, a
fresh ``synced_at``) rather than from an HQ snapshot: loading a snapshot is tested in
tests/api and tests/cache, and what matters here is that every code a till commits becomes an
event the pump must deliver. The agent runs with a short MQTT keepalive and ack timeout so a
"long" partition outlives both in ~10 s instead of minutes.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from config.model import AgentConfig
from edge_agent.api.auth import new_token, token_digest
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.code_format import namespace_string, new_code
from edge_agent.domain.code_record import CodeRecord
from edge_agent.issuing import signing_key
from tests.agent_process import EDGE_AGENT, wait_for_health
from tests.cache.factories import promotion
from tests.faults.netns import BoxNet
from tests.sync.pump_harness import STORE

CODES = 20_000  # two tills at full speed redeemed up to ~220/s here: a 15 s test takes ~3,300
CAMPAIGN = "fault-5off"
TILLS = ("till-1", "till-2")
API_PORT = 8470  # the namespace is the box's own: its default port is free there
BASKET = {"lines": [{"sku": "SKU1", "category": "food", "quantity": 1, "unit_price": 2500}]}


@dataclass(frozen=True, kw_only=True)
class BoxFiles:
    box_id: str
    config: Path
    cache: Path
    signing_key: Path
    tokens: dict[str, str]
    codes: tuple[str, ...]


def seed_box(directory: Path, *, box_id: str, rng: random.Random) -> BoxFiles:
    """A cache file with ``CODES`` redeemable codes and this box's store signing key."""
    directory.mkdir(parents=True, exist_ok=True)
    fmt = AgentConfig().code_format.to_format()
    now = datetime.now(UTC)
    cache_path = directory / f"{box_id}.db"
    key_path = directory / f"{box_id}.key"
    signing_key.create(key_path)
    namespace = namespace_string(rng.randrange(1, 500), fmt)
    codes = sorted({new_code(fmt, namespace) for _ in range(CODES)})
    cache = CodeCache.open(cache_path, store_id=STORE, box_id=box_id)
    try:
        # The tests' 5.00-off coupon, valid around the real now: the agent runs on the wall clock.
        window = {"starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=1)}
        cache.put_campaign(promotion(CAMPAIGN, **window))
        cache.put_codes(CodeRecord(code=c, campaign_id=CAMPAIGN, member_id=None) for c in codes)
        cache.set_synced_at(now)
    finally:
        cache.close()
    return BoxFiles(
        box_id=box_id,
        config=directory / "agent.toml",
        cache=cache_path,
        signing_key=key_path,
        tokens={t: new_token() for t in TILLS},
        codes=tuple(codes),
    )


def write_agent_toml(
    box: BoxFiles, net: BoxNet, *, broker_url: str, ca: Path, password: str
) -> None:
    secret = box.config.parent / f"{box.box_id}.mqtt-password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    tills = "".join(
        f'[[api.tills]]\ntill_id = "{t}"\ntoken_sha256 = "{token_digest(tok)}"\n\n'
        for t, tok in box.tokens.items()
    )
    # keepalive 5 s (the schema's floor) and a 2 s ack timeout: a 12 s cut outlives both.
    box.config.write_text(
        f'[store]\nstore_id = "{STORE}"\nbox_id = "{box.box_id}"\n\n'
        f'[cache]\npath = "{box.cache}"\n\n'
        f'[signing]\nkey_path = "{box.signing_key}"\n\n'
        f'[api]\nhost = "{net.api_address}"\nport = {API_PORT}\n\n{tills}'
        f'[sync]\nbroker_url = "{broker_url}"\npassword_file = "{secret}"\n'
        f'ca_file = "{ca}"\nbatch_events = 50\ndrain_events_per_s = 5000\n'
        "keepalive_s = 5\nack_timeout_s = 2\nreconnect_min_s = 0.05\nreconnect_max_s = 0.5\n",
        encoding="utf-8",
    )


class Agent:
    """``edge-agent serve`` run with ``ip netns exec`` (which execs it: the PID is the
    agent's), its output collected for the failure message."""

    def __init__(self, box: BoxFiles, net: BoxNet) -> None:
        self.url = f"http://{net.api_address}:{API_PORT}"
        self.process = subprocess.Popen(
            [*net.exec_prefix(), str(EDGE_AGENT), "--config", str(box.config), "serve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""

    def wait_ready(self) -> None:
        health = wait_for_health(self.url, self.process)
        assert health.json()["tasks"]["sync"]["state"] == "running", health.text

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.output = self.process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.output = self.process.communicate(timeout=10)[0]
        return self.output


@dataclass
class TillTally:
    committed: list[str] = field(default_factory=list)  # codes the till was told are redeemed
    refused: list[str] = field(default_factory=list)  # reasons, for the failure message
    errors: list[str] = field(default_factory=list)


class Tills:
    """Each till in a thread of its own: reserve a code, commit it, next code, until
    ``stop()``. Codes are dealt from one shuffled deck, so no two tills hold the same one."""

    def __init__(self, box: BoxFiles, agent: Agent, rng: random.Random) -> None:
        self._deck = list(box.codes)
        rng.shuffle(self._deck)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._agent = agent
        self._tokens = box.tokens
        self.tally = TillTally()
        self._threads = [
            threading.Thread(target=self._run, args=(till,), daemon=True) for till in TILLS
        ]

    def start(self) -> Tills:
        for thread in self._threads:
            thread.start()
        return self

    def _next(self) -> str | None:
        with self._lock:
            return self._deck.pop() if self._deck else None

    def _run(self, till: str) -> None:
        headers = {"Authorization": f"Bearer {self._tokens[till]}"}
        with httpx.Client(base_url=self._agent.url, headers=headers, timeout=10) as client:
            sale = 0
            while not self._stop.is_set():
                code = self._next()
                if code is None:
                    self.tally.errors.append("the deck ran out: raise CODES")
                    return
                sale += 1
                body = {"codes": [code], "cashier_id": "c-1", "basket": BASKET}
                body["transaction_id"] = f"{till}-{sale}"
                try:
                    held = client.post("/v1/reserve", json=body).json()["results"][0]
                    if not held["decision"]["ok"]:
                        self.tally.refused.append(held["decision"]["reason"])
                        continue
                    done = client.post("/v1/commit", json=body).json()["results"][0]
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    self.tally.errors.append(f"{till}: {exc!r}")
                    return
                if done["redemption"] is None:
                    self.tally.refused.append(done["decision"]["reason"])
                else:
                    with self._lock:
                        self.tally.committed.append(code)

    def stop(self) -> TillTally:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.tally


@dataclass(frozen=True, kw_only=True)
class BoxFacts:
    last_seq: int  # the box's last committed sequence number
    outbox_depth: int
    connected: bool | None  # what the pump last recorded; None: never connected
    link_changed_us: int | None  # when it recorded that (wall clock, microseconds)
    connect_attempts: int  # the pump's session counter: one per connect attempt


def box_facts(cache: Path) -> BoxFacts:
    """Read from the box's file by another process, as `edge-agent sync status` would (WAL:
    the running agent keeps writing meanwhile)."""
    conn = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=10)
    try:
        (next_seq,) = conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        (depth,) = conn.execute("SELECT count(*) FROM outbox").fetchone()
        link = conn.execute("SELECT value FROM meta WHERE key = 'sync_connected'").fetchone()
        changed = conn.execute("SELECT value FROM meta WHERE key = 'sync_link_us'").fetchone()
        session = conn.execute("SELECT value FROM meta WHERE key = 'sync_session'").fetchone()
    finally:
        conn.close()
    return BoxFacts(
        last_seq=int(next_seq) - 1,
        outbox_depth=int(depth),
        connected=None if link is None else bool(int(link[0])),
        link_changed_us=None if changed is None else int(changed[0]),
        connect_attempts=0 if session is None else int(session[0]),
    )
