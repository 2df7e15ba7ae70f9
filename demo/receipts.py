"""The receipt coupon part of the demo: issued at checkout, printed, scanned in another store."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from config.printer import PrinterConfig
from demo.narration import money, say, show, step
from edge_agent.printing import preview
from hardware.printer.tcp_sink import PrinterSink

BASKET = {
    "lines": [
        {"sku": "tea-green", "category": "drinks", "quantity": 3, "unit_price": 450},
        {"sku": "honey", "category": "pantry", "quantity": 1, "unit_price": 799},
    ]
}  # 21.49


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _checkout(till: httpx.Client, txn: str, member: str | None) -> dict[str, Any]:
    body = {"transaction_id": txn, "cashier_id": "cashier-7", "member_id": member}
    return dict(till.post("/v1/receipt-coupons", json={**body, "basket": BASKET}).json())


def _scan(till: httpx.Client, text: str, member: str, txn: str | None = None) -> Any:
    body: dict[str, Any] = {"codes": [text], "cashier_id": "c-9", "member_id": member}
    body["basket"] = BASKET
    if txn is None:
        return till.post("/v1/validate", json=body).json()["decisions"][0]
    return till.post("/v1/commit", json={**body, "transaction_id": txn}).json()["results"][0]


def receipt_story(
    *,
    store1: tuple[str, str],
    store2: tuple[str, str],
    sink: PrinterSink,
    printer: PrinterConfig,
    work: Path,
) -> None:
    """``store1``/``store2``: (POS API URL, till token)."""
    with _client(*store1) as till1, _client(*store2) as till2:
        step("store-001: Alice (loyal) pays; the agent prints a next-visit coupon on her receipt")
        answer = _checkout(till1, "R-5001", "alice")
        coupon = answer["coupon"]
        say(f"   {coupon['offer_text']}  [{coupon['discount']}]")
        say(f"   code {coupon['display']}, valid until {coupon['expires_at'][:10]}")
        say(f"   terms: {coupon['stacking_terms']}")
        say(f"   print: {answer['print']['status']}; QR payload {len(coupon['qr_payload'])} chars")
        printed = b"".join(sink.wait_connections(1))
        png = work / "coupon.png"
        preview.write_png(printed, printer.paper(), png)
        say(f"   the exact bytes the printer received, rendered: {png}")

        step("store-001: the printer runs out of paper while Bob checks out")
        sink.state.paper_out = True
        bob = _checkout(till1, "R-5002", "bob")
        say(f"   print: {bob['print']['status']} ({bob['print']['last_error']}); the POS shows")
        say(f"   the code {bob['coupon']['display']} and its QR on screen meanwhile")
        sink.state.paper_out = False
        status = till1.get("/v1/receipt-coupons/R-5002/print").json()
        for _ in range(200):
            if status["status"] == "printed":
                break
            status = _wait(till1, "R-5002")
        say(f"   paper refilled: {status['status']} after {status['attempts']} attempts")

        step("store-001: twenty more members check out (5% holdout, one coupon a month)")
        outcomes = Counter(
            _checkout(till1, f"R-6{i:03d}", f"member-{i:02d}")["reason"] or "ISSUED"
            for i in range(20)
        )
        say("   " + ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items())))
        again = _checkout(till1, "R-5003", "alice")
        say(f"   Alice again the same day: {again['reason']}: {again['message']}")

        step("store-002, offline from store-001: Alice scans her printed QR")
        qr = coupon["qr_payload"]
        show(_scan(till2, qr, "alice"))
        forged = qr[:-4] + ("Q" if qr[-4] != "Q" else "R") + qr[-3:]
        say("   someone alters one character of the QR text:")
        show(_scan(till2, forged, "alice"))
        say("   Bob presents Alice's receipt:")
        show(_scan(till2, qr, "bob"))
        paid = _scan(till2, qr, "alice", txn="S2-7001")
        r = paid["redemption"]
        say(f"   redeemed {r['code']} -{money(r['amount'])} at store-002 (event seq {r['seq']})")
        say("   and the same receipt once more:")
        show(_scan(till2, qr, "alice", txn="S2-7002")["decision"])


def _wait(till: httpx.Client, txn: str) -> Any:
    time.sleep(0.05)
    return till.get(f"/v1/receipt-coupons/{txn}/print").json()
