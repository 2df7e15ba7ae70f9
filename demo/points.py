"""The points ledger in the demo, at the till: HQ turns points on at store 1, a checkout earns
5x on band A and nothing on band C, HQ books it and tells the box the balance, the member burns
points on clearance stock at 1.2x, a partial return reverses both exactly, and with the link
down the box refuses a burn beyond what it can account for. Every answer is the POS API's, over
real HTTP; HQ's side (``points_hq``) follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from cloud_sync.hq.ledger import intake
from demo.config_push import push_config
from demo.follow import fanning_out, until
from demo.narration import money, say, step
from demo.points_hq import hq_points_story
from demo.sync import HqLink, wait_until_hq_has
from edge_agent.wiring import Agent

MEMBER = "alice"
ALLOWANCE = 20  # points a burn may take beyond the balance the box knows
POINTS_TOML = f"""[points]
enabled = true

[points.burn]
offline_allowance_points = {ALLOWANCE}
"""
OIL = {"sku": "olive-oil-1l", "category": "pantry", "unit_price": 1200, "unit_cost": 540}  # 55%
CHEESE = {"sku": "manchego", "category": "deli", "unit_price": 800, "unit_cost": 400}  # 50%
SUGAR = {"sku": "sugar-1kg", "category": "pantry", "unit_price": 250, "unit_cost": 225}  # 10%
PASTA = {"sku": "pasta-clearance", "category": "pantry", "unit_price": 300, "unit_cost": 270}


def _lines(*items: tuple[dict[str, Any], int]) -> list[dict[str, Any]]:
    return [{**item, "quantity": n} for item, n in items]


def _margin(line: dict[str, Any]) -> int:
    return round(float(100 * (line["unit_price"] - line["unit_cost"]) / line["unit_price"]))


class _Till:
    """store-001's till 1 at the POS API: the points routes, as the POS calls them."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def post(self, path: str, body: dict[str, Any]) -> Any:
        answer = self.client.post(path, json={"cashier_id": "cashier-7", **body})
        return answer.raise_for_status().json()

    def balance(self) -> Any:
        return self.client.get(f"/v1/members/{MEMBER}/points").raise_for_status().json()


def points_story(
    link: HqLink, agent: Agent, url: str, tokens: dict[str, str], *, work: Path
) -> None:
    _enable(link, agent, work)
    headers = {"Authorization": f"Bearer {tokens['till-1']}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        till = _Till(client)
        _earn(till)
        with fanning_out(link, work / "hq.db"):
            step("The box syncs; HQ's poster books the postings; the fan-out tells the box")
            _synced(link, agent, till)
            b = till.balance()
            say(
                f"   GET /v1/members/alice/points: HQ's balance {b['synced_balance']} (through "
                f"the box's seq {b['synced_through_seq']}), unsynced {b['unsynced']}"
            )
            _burn(till)
            known = _return(till)
            _offline(link, agent, till)

            def box_heard() -> None:
                until("the merged balance at the box", lambda: till.balance()["known"] != known)
                got = till.balance()["known"]
                say(f"   store-001's box heard it from HQ: {MEMBER} has {got} points there now")

            hq_points_story(link, work=work, member=MEMBER, box_heard=box_heard)


def _enable(link: HqLink, agent: Agent, work: Path) -> None:
    step("HQ turns points on at store-001 (storeside-hq config push of a [points] section)")
    done = push_config(link, work, "points.toml", POINTS_TOML, "store-001")
    if done.returncode != 0:
        raise RuntimeError(f"storeside-hq config push failed: {done.stderr.strip()}")
    until("the box to apply the points config", lambda: agent.cfg.points.enabled)
    burn = agent.cfg.points.burn
    say(
        f"   applied live: band A (margin >= 45%) earns 5x, band C (<= 15%) 0x; "
        f"{burn.points_per_currency_unit} points = 1.00, band C burns at "
        f"{burn.clearance_value:g}x; offline allowance {burn.offline_allowance_points} points"
    )


def _earn(till: _Till) -> None:
    step("Alice checks out: olive oil and cheese are band A, sugar is band C")
    basket = _lines((OIL, 2), (CHEESE, 1), (SUGAR, 4))
    sale = {"member_id": MEMBER, "basket": {"lines": basket}}
    quote = till.post("/v1/points/quote", sale)
    earned = {x["line"]: x["points"] for x in quote["earn_lines"]}
    for i, line in enumerate(basket):
        total = money(line["quantity"] * line["unit_price"])
        say(f"   {line['sku']:<14} {total:>6}  margin {_margin(line)}%  earns {earned.get(i, 0)}")
    paid = till.post("/v1/points/checkout", {**sale, "transaction_id": "PTS-1"})
    say(
        f"   POST /v1/points/checkout PTS-1: ok {paid['ok']}, earned {paid['earned']} "
        f"(rules {paid['rules_version']}); known balance {paid['balance']['known']}"
    )


def _synced(link: HqLink, agent: Agent, till: _Till) -> None:
    """HQ holds the box's events, has booked them, and the box has HQ's balance back."""
    wait_until_hq_has(link, {"store-001": agent})
    t = intake.post_all(link.store)  # storeside-hq points post
    say(
        f"   HQ points post: taken {t.taken}, booked {t.booked}, refused {t.refused}, "
        f"accounts opened {t.opened}"
    )
    until("HQ's balance at the box", lambda: till.balance()["unsynced"] == 0)


def _burn(till: _Till) -> None:
    step("Alice pays with points for clearance pasta (band C: a point is worth 1.2x)")
    sale = {"member_id": MEMBER, "basket": {"lines": _lines((PASTA, 5), (OIL, 1))}}
    asked = till.post("/v1/points/quote", {**sale, "burn_points": 200})
    offer = asked["burn"]
    say(
        f"   quote, Alice asks for 200: balance {asked['balance']['known']}, the basket's "
        f"margins allow {offer['eligible']}, limit {offer['limit']}"
    )
    say(f"   cashier sees: {asked['message']}")
    say("   Alice burns 125, what the pasta can take down to cost:")
    paid = till.post("/v1/points/checkout", {**sale, "transaction_id": "PTS-2", "burn_points": 125})
    for x in paid["lines"]:
        took = f" = -{money(x['discount'])}" if x["side"] == "burn" else ""
        say(f"   {x['sku']:<16} {x['side']} {x['points']}{took}")
    say(
        f"   at face 125 points are 1.25; on band C they took {money(paid['discount'])} off; "
        f"no points earned on what points paid; balance {paid['balance']['known']}"
    )


def _return(till: _Till) -> int:
    step("Alice brings back 2 of the 5 pasta packs and the olive oil (a partial return)")
    lines = [{"line": 0, "quantity": 2}, {"line": 1, "quantity": 1}]
    back = till.post(
        "/v1/points/returns", {"return_id": "PR-1", "transaction_id": "PTS-2", "lines": lines}
    )
    paid = money(back["discount_reversed"])
    say(
        f"   {back['message']} Net {back['net']:+d} (the {paid} the points paid on the two "
        "packs comes back as points)"
    )
    known = int(till.balance()["known"])
    say(
        f"   exact shares: 125 x 2/5 = {back['given_back']}, the oil's 60 earned = "
        f"{back['taken_back']}; balance {known}"
    )
    return known


def _offline(link: HqLink, agent: Agent, till: _Till) -> None:
    step("store-001 loses its link to HQ; Alice wants to burn 150 points")
    link.broker.stop()
    big = {"member_id": MEMBER, "basket": {"lines": _lines((PASTA, 10))}}
    refused = till.post(
        "/v1/points/checkout", {**big, "transaction_id": "PTS-3", "burn_points": 150}
    )
    b = till.balance()
    say(f"   {refused['reason']}: {refused['message']}")
    say(
        f"   (HQ's {b['synced_balance']} as of the last sync, {b['unsynced']:+d} of this box's "
        f"own postings since, + {b['allowance']} allowance = {b['available']})"
    )
    link.broker.start()
    _synced(link, agent, till)
    say(
        "   the link is back: HQ booked the burn and the return; the box knows "
        f"{till.balance()['synced_balance']} from HQ"
    )
