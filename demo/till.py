"""The tills' part of the demo: member coupons at the POS API, every answer explained."""

from __future__ import annotations

from typing import Any

import httpx

from demo.hq import GENERIC
from demo.narration import money, say, show, step

CART = [
    {"sku": "coffee-1kg", "category": "drinks", "quantity": 1, "unit_price": 1899},
    {"sku": "milk-1l", "category": "dairy", "quantity": 4, "unit_price": 129},
    {"sku": "croissant", "category": "bakery", "quantity": 6, "unit_price": 95},
]  # 18.99 + 5.16 + 5.70 = 29.85
SMALL_CART = [{"sku": "milk-1l", "category": "dairy", "quantity": 2, "unit_price": 129}]
TIER = {"name": "Gold tier 2%", "stacking_class": "tier_discount", "discount": 60}
SALE = {"name": "Weekend store sale", "stacking_class": "store_sale", "discount": 300}


def till_story(url: str, tokens: dict[str, str], codes: dict[str, str]) -> None:
    generic = GENERIC
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

        # Swap the last two neighbours that differ (swapping equal ones would change nothing,
        # which made the demo miss its MALFORMED about one run in 31).
        i = max(j for j in range(len(alice) - 1) if alice[j] != alice[j + 1])
        typo = alice[:i] + alice[i + 1] + alice[i] + alice[i + 2 :]
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
                say(f"   redeemed {r['code']} -{money(r['amount'])} (event seq {r['seq']})")
        replayed = all(r["replayed"] for r in again["results"])
        same = [{**r, "replayed": False} for r in again["results"]] == first["results"]
        say(f"   retry answered identically, nothing redeemed twice: {same} (replayed: {replayed})")
        changed = t1.post("/v1/commit", json={**paid, "basket": {"lines": SMALL_CART}})
        say(f"   the same sale id with another basket is no retry: {changed.status_code} "
            f"{changed.json()['error']}")  # fmt: skip
        step("Till 2 numbers its own sales: its T-1001 is another sale, not Alice's")
        theirs = t2.post("/v1/commit", json=paid).json()["results"][0]
        show(theirs["decision"])

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
