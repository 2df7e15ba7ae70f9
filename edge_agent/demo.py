"""`make demo`: one store's day with the coupon core, end to end, on real parts.

HQ mints a member-bound campaign and a generic influencer code and writes the store's snapshot;
the store box loads it into its SQLite cache and serves the POS API on loopback; two tills then
talk to it over real HTTP the way a POS does. Every answer shown is what the agent returned.
Files go to ``var/demo/`` (recreated on each run).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cloud_sync.central_store import CentralStore, MemberRow
from cloud_sync.minting import Issue, mint_anonymous, mint_for_members
from cloud_sync.snapshot import write_snapshot
from config.model import AgentConfig
from edge_agent.api.auth import new_token, token_digest
from edge_agent.api.background import serving
from edge_agent.domain.promotion import (
    Benefit,
    BenefitKind,
    Limits,
    Promotion,
    StackingRule,
)
from edge_agent.store.cache import CodeCache
from edge_agent.wiring import build_app

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "demo"
STORE = "store-001"
CART = [
    {"sku": "coffee-1kg", "category": "drinks", "quantity": 1, "unit_price": 1899},
    {"sku": "milk-1l", "category": "dairy", "quantity": 4, "unit_price": 129},
    {"sku": "croissant", "category": "bakery", "quantity": 6, "unit_price": 95},
]  # 18.99 + 5.16 + 5.70 = 29.85
SMALL_CART = [{"sku": "milk-1l", "category": "dairy", "quantity": 2, "unit_price": 129}]
TIER = {"name": "Gold tier 2%", "stacking_class": "tier_discount", "discount": 60}
SALE = {"name": "Weekend store sale", "stacking_class": "store_sale", "discount": 300}


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def say(text: str = "") -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say()
    say(f"-- {title}")


def show(decision: dict[str, Any]) -> None:
    if decision["ok"]:
        say(f"   ACCEPTED -{money(decision['discount'])}  {decision['cashier_message']}")
    else:
        say(f"   {decision['reason']}: {decision['cashier_message']}")


def hq(now: datetime) -> tuple[Path, dict[str, str], str]:
    """HQ's side: campaigns, minting, the store's snapshot. Returns codes by member."""
    step("HQ: two campaigns, minted and shipped to the store as a snapshot")
    central = CentralStore.create(WORK / "hq.db", fmt=AgentConfig().code_format.to_format())
    spring = Promotion(
        campaign_id="spring-10",
        name="Spring 10% (over 20.00)",
        benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=1000),
        stacking=StackingRule(
            stacking_class="member_coupon",
            combines_with=frozenset({"tier_discount", "partner_code"}),
        ),
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=21),
        min_spend=2000,
        requires_member=True,
    )
    influencer = Promotion(
        campaign_id="holiman",
        name="Influencer 1.00 off",
        benefit=Benefit(kind=BenefitKind.FIXED_OFF, value=100),
        stacking=StackingRule(
            stacking_class="partner_code",
            combines_with=frozenset({"tier_discount", "member_coupon"}),
        ),
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
        limits=Limits(total_uses_per_code=1000, uses_per_member=1),
    )
    central.create_campaign(spring, now=now)
    central.create_campaign(influencer, now=now)
    members = [
        MemberRow(member_id=m, segment=s, tier="gold")
        for m, s in (("alice", "loyal"), ("bob", "at_risk"), ("chen", "champion"))
    ]
    report = mint_for_members(
        central,
        campaign_id="spring-10",
        members=members,
        now=now,
        issue=Issue(channel="app", valid_for=timedelta(days=14)),
    )
    say(f"   minted {report.created} member-bound codes for spring-10 in {report.namespaces}")
    anon = mint_anonymous(central, campaign_id="holiman", count=50_000, now=now)
    say(f"   minted {anon.created:,} anonymous codes for paper vouchers (holiman campaign)")
    central.create_generic("holiman", "HOLIMAN100", now=now)
    say("   created the generic influencer code HOLIMAN100 (1 use per customer)")
    codes = {
        str(row[0]): str(row[1])
        for row in central.conn.execute(
            "SELECT member_id, code FROM codes WHERE campaign_id = 'spring-10'"
        )
    }
    snapshot = WORK / f"{STORE}.snapshot.db"
    summary = write_snapshot(central, snapshot, STORE, now=now)
    say(f"   snapshot for {STORE}: {summary.codes:,} codes, {summary.campaigns} campaigns")
    central.close()
    return snapshot, codes, "HOLIMAN100"


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="   [agent log] %(message)s")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    now = datetime.now(UTC)
    say("Storeside demo: the coupon core of one store, on real SQLite and real HTTP")
    snapshot, codes, generic = hq(now)

    step("Store box: load the snapshot into the local cache, start the POS API")
    tokens = {t: new_token() for t in ("till-1", "till-2")}
    cfg = AgentConfig.model_validate(
        {
            "store": {"store_id": STORE},
            "cache": {"path": str(WORK / "cache.db")},
            "api": {
                "tills": [
                    {"till_id": t, "token_sha256": token_digest(tok)} for t, tok in tokens.items()
                ]
            },
        }
    )
    cache = CodeCache.open(Path(cfg.cache.path), store_id=STORE)
    info = cache.load_snapshot(snapshot)
    cache.close()
    say(f"   loaded {info.codes:,} codes, {info.campaigns} campaigns in {info.seconds:.2f} s")
    agent = build_app(cfg)
    try:
        with serving(agent.app) as url:
            say(f"   POS API at {url} (OpenAPI at {url}/docs); two tills with their own tokens")
            till_story(url, tokens, codes, generic)
    finally:
        agent.close()
    ledger_story(Path(cfg.cache.path))
    say()
    say("Done. Files are in var/demo/ (hq.db, the snapshot, the store's cache.db).")


def till_story(url: str, tokens: dict[str, str], codes: dict[str, str], generic: str) -> None:
    alice = codes["alice"]

    def client(till: str) -> httpx.Client:
        return httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {tokens[till]}"}, timeout=10
        )

    def body(*c: str, member: str | None, lines: list[dict[str, Any]] = CART, **kw: Any) -> Any:
        applied = kw.pop("applied", [TIER])
        return {
            "codes": list(c),
            "cashier_id": "cashier-7",
            "member_id": member,
            "basket": {"lines": lines, "applied": applied},
            **kw,
        }

    with client("till-1") as t1, client("till-2") as t2:
        step(f"Alice (gold member) scans her app coupon {alice} on a 29.85 basket")
        show(t1.post("/v1/validate", json=body(alice, member="alice")).json()["decisions"][0])

        typo = alice[:-3] + alice[-2] + alice[-3] + alice[-1]
        step(f"The cashier types it by hand and swaps two characters: {typo}")
        show(t1.post("/v1/validate", json=body(typo, member="alice")).json()["decisions"][0])

        step("Bob tries Alice's code (codes are bound to their member)")
        show(t1.post("/v1/validate", json=body(alice, member="bob")).json()["decisions"][0])

        step("Alice with only two bottles of milk")
        small = body(alice, member="alice", lines=SMALL_CART)
        show(t1.post("/v1/validate", json=small).json()["decisions"][0])

        step("Alice's basket already has the weekend store sale applied")
        sale = body(alice, member="alice", applied=[TIER, SALE])
        show(t1.post("/v1/validate", json=sale).json()["decisions"][0])

        step("Till 1 reserves Alice's code at scan; till 2 tries the same code meanwhile")
        held = t1.post("/v1/reserve", json=body(alice, member="alice", transaction_id="T-1001"))
        say(f"   till-1: held until {held.json()['results'][0]['hold_until']}")
        other = t2.post("/v1/reserve", json=body(alice, member="alice", transaction_id="T-2001"))
        show(other.json()["results"][0]["decision"])

        step("Till 1 commits at payment; the network hiccups and the POS retries")
        paid = body(alice, generic, member="alice", transaction_id="T-1001")
        first = t1.post("/v1/commit", json=paid).json()
        again = t1.post("/v1/commit", json=paid).json()
        for result in first["results"]:
            r = result["redemption"]
            if r is None:
                show(result["decision"])
            else:
                say(f"   redeemed {r['code']} -{money(r['amount'])} (ledger seq {r['seq']})")
        say(f"   retry answered identically, nothing redeemed twice: {first == again}")

    after_sale(client=client, body=body, codes=codes, generic=generic, url=url)


def after_sale(*, client: Any, body: Any, codes: dict[str, str], generic: str, url: str) -> None:
    alice, bob, chen = codes["alice"], codes["bob"], codes["chen"]
    with client("till-1") as t1, client("till-2") as t2:
        step("Alice comes back with the same coupon tomorrow")
        show(t2.post("/v1/validate", json=body(alice, member="alice")).json()["decisions"][0])

        step("Alice returns the coffee: give back part of the discount")
        back = t1.post(
            "/v1/reverse",
            json={
                "code": alice,
                "transaction_id": "T-1001",
                "return_id": "R-1",
                "cashier_id": "cashier-7",
                "amount": 190,
            },
        ).json()
        say(f"   gave back {money(back['amount'])}; {money(back['remaining'])} still credited")

        step("Bob pays with his coupon and the influencer code, then tries that code again")
        once = body(generic, bob, member="bob", transaction_id="T-1002")
        for result in t2.post("/v1/commit", json=once).json()["results"]:
            if result["redemption"]:
                say(f"   redeemed {result['redemption']['code']}")
            else:
                show(result["decision"])
        show(t2.post("/v1/validate", json=body(generic, member="bob")).json()["decisions"][0])

        step("Someone at till 2 starts guessing codes")
        for n in range(12):
            guess = f"SS22{'ABCDEFGHJKMN'[n]}QRS7A2"
            last = t2.post("/v1/validate", json=body(guess, member=None)).json()["decisions"][0]
        show(last)
        say("   till-1 is unaffected:")
        show(t1.post("/v1/validate", json=body(chen, member="chen")).json()["decisions"][0])

        step("Without a till token")
        r = httpx.post(f"{url}/v1/validate", json=body(alice, member="alice"))
        say(f"   HTTP {r.status_code}: {r.json()['detail']}")


def ledger_story(cache_path: Path) -> None:
    step("The ledger: every change is an event in the outbox, waiting for HQ")
    with sqlite3.connect(cache_path) as conn:
        rows = conn.execute(
            "SELECT type, count(*) FROM ledger_events GROUP BY type ORDER BY min(seq)"
        ).fetchall()
        pending = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    for event_type, count in rows:
        say(f"   {event_type:<16} x{count}")
    say(f"   {pending} events pending sync (the MQTT link to HQ comes in a later issue)")


if __name__ == "__main__":
    main()
