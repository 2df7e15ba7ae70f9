"""Receipt coupons end to end, on real parts only.

HQ (a real central store) defines the receipt campaigns, registers both stores' signing keys
and writes each store's snapshot. Store 1's agent serves the real POS API and prints on a real
python-escpos ``Network`` printer pointed at a loopback TCP sink. The printed bytes are turned
back into the QR and decoded by zxing-cpp; the decoded text is then scanned at store 2, whose
cache has never seen the code, and validates, redeems once, and is refused the second time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_sync.hq import store_keys
from cloud_sync.hq.central_store import CentralStore, MemberRow
from cloud_sync.hq.snapshot import write_snapshot
from config.model import AgentConfig
from edge_agent.api.auth import new_token, token_digest
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.receipt_campaigns import default_receipt_campaigns
from edge_agent.issuing import signing_key
from edge_agent.runtime.background import serving
from edge_agent.wiring import build_app
from hardware.printer.tcp_sink import PrinterSink
from tests.printer.escpos_decode import qr_texts

LOYAL = [f"loyal-{i}" for i in range(6)]
BASKET = {"lines": [{"sku": "tea", "category": "drinks", "quantity": 3, "unit_price": 450}]}


@dataclass
class Store:
    store_id: str
    url: str
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )


NAMESPACES: dict[str, str] = {}  # store id: the namespace HQ assigned it (set by _hq)


def _hq(tmp: Path, now: datetime, keys: dict[str, str], *, assign: bool = True) -> dict[str, Path]:
    central = CentralStore.create(tmp / "hq.db", fmt=AgentConfig().code_format.to_format())
    NAMESPACES["hq"] = central.hq_namespace(now=now)  # as `storeside-hq init` takes it
    for promotion in default_receipt_campaigns(
        starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=60)
    ):
        central.create_campaign(promotion, now=now)
    central.upsert_members([MemberRow(member_id=m, segment="loyal") for m in LOYAL])
    for store_id, public_key in keys.items():
        store_keys.register(central, store_id, public_key, now=now)
    snapshots = {}
    for store_id in keys:
        if assign:
            NAMESPACES[store_id] = central.assign_namespace(store_id, now=now)
        snapshots[store_id] = tmp / f"{store_id}.snapshot.db"
        write_snapshot(central, snapshots[store_id], store_id, now=now)
    central.close()
    return snapshots


def _config(tmp: Path, store_id: str, token: str, printer: dict[str, Any]) -> Any:
    return AgentConfig.model_validate(
        {
            "store": {"store_id": store_id},  # the namespace comes from HQ's snapshot
            "cache": {"path": str(tmp / f"{store_id}.cache.db")},
            "signing": {"key_path": str(tmp / f"{store_id}.key")},
            "printer": printer,
            "api": {"tills": [{"till_id": "till-1", "token_sha256": token_digest(token)}]},
        }
    )


@pytest.fixture(params=["TM-T88V", "POS-5890"], ids=["80mm-native", "58mm-raster"])
def chain(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Store, Store, PrinterSink]]:
    now = datetime.now(UTC)
    sink = PrinterSink()
    printer = {
        "kind": "network",
        "host": "127.0.0.1",
        "port": sink.port,
        "timeout_s": 0.5,
        "profile": request.param,
        "paper_width_mm": 80 if request.param == "TM-T88V" else 58,
        "retry_base_s": 0.05,
        "retry_cap_s": 0.1,
    }
    tokens = {"store-001": new_token(), "store-002": new_token()}
    cfgs = {
        "store-001": _config(tmp_path, "store-001", tokens["store-001"], printer),
        "store-002": _config(tmp_path, "store-002", tokens["store-002"], printer),
    }
    keys = {s: signing_key.create(Path(c.signing.key_path)).public_key for s, c in cfgs.items()}
    for store_id, snapshot in _hq(tmp_path, now, keys).items():
        cache = CodeCache.open(Path(cfgs[store_id].cache.path), store_id=store_id)
        cache.load_snapshot(snapshot)
        cache.close()
    agents = {s: build_app(c) for s, c in cfgs.items()}
    try:
        with serving(agents["store-001"]) as url1, serving(agents["store-002"]) as url2:
            yield (
                Store("store-001", url1, tokens["store-001"]),
                Store("store-002", url2, tokens["store-002"]),
                sink,
            )
    finally:
        for agent in agents.values():
            agent.close()
        sink.close()


def _issue(till: httpx.Client, txn: str) -> tuple[str, dict[str, Any]]:
    """Check out loyal members until one is outside the holdout; their coupon answer."""
    for member in LOYAL:
        body = {"transaction_id": f"{txn}-{member}", "cashier_id": "c-1", "member_id": member}
        answer = till.post("/v1/receipt-coupons", json={**body, "basket": BASKET}).json()
        if answer["issued"]:
            return member, answer
        assert answer["reason"] == "HOLDOUT", answer
    raise AssertionError("every member was held out")


def _scan(store: Store, text: str, member: str, txn: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"codes": [text], "cashier_id": "c-2", "member_id": member}
    body["basket"] = BASKET
    with store.client() as till:
        if txn is None:
            return dict(till.post("/v1/validate", json=body).json()["decisions"][0])
        result = till.post("/v1/commit", json={**body, "transaction_id": txn}).json()
        return dict(result["results"][0])


def test_printed_coupon_scans_back_and_redeems_once_in_another_store(
    chain: tuple[Store, Store, PrinterSink],
) -> None:
    store1, store2, sink = chain
    with store1.client() as till:
        member, answer = _issue(till, "T1")
    assert answer["print"]["status"] == "printed", answer
    coupon = answer["coupon"]
    # Minted in the namespace HQ's registry assigned store-001, never HQ's own.
    assert coupon["code"][2:4] == NAMESPACES["store-001"] != NAMESPACES["hq"]
    printed = b"".join(sink.wait_connections(1))
    assert coupon["display"].encode() in printed
    (scanned,) = qr_texts(printed)  # zxing-cpp reads what the printer received
    assert scanned == coupon["qr_payload"]

    # Store 2 has never seen the code: the signed token stands for it, offline.
    ok = _scan(store2, scanned, member)
    assert ok["ok"] is True and ok["discount"] > 0, ok
    wrong = _scan(store2, scanned, next(m for m in LOYAL if m != member))
    assert wrong["reason"] == "WRONG_MEMBER"
    forged = scanned[:-3] + ("A" if scanned[-3] != "A" else "B") + scanned[-2:]
    assert _scan(store2, forged, member)["reason"] in {"INVALID_SIGNATURE", "INVALID_TOKEN"}

    redeemed = _scan(store2, scanned, member, txn="S2-1")
    assert redeemed["redemption"]["code"] == coupon["code"]
    again = _scan(store2, scanned, member, txn="S2-2")
    assert again["decision"]["reason"] == "ALREADY_REDEEMED"
    # Typed by hand at store 2 (no scanner): the same code, now known to store 2's cache.
    assert _scan(store2, coupon["display"], member)["reason"] == "ALREADY_REDEEMED"


def test_printer_down_at_checkout_then_back(chain: tuple[Store, Store, PrinterSink]) -> None:
    store1, _, sink = chain
    sink.down()
    with store1.client() as till:
        member, answer = _issue(till, "T2")
        assert answer["print"]["status"] == "print_pending"
        assert answer["coupon"]["qr_payload"]  # the POS shows it on screen meanwhile
        txn = answer["transaction_id"]
        sink.up()
        deadline = time.monotonic() + 10
        status = answer["print"]
        while status["status"] != "printed" and time.monotonic() < deadline:
            time.sleep(0.05)
            status = till.get(f"/v1/receipt-coupons/{txn}/print").json()
        assert status["status"] == "printed"
        # The POS retries the checkout: the same coupon, never a second one.
        again = {"transaction_id": txn, "cashier_id": "c-1", "member_id": member}
        retry = till.post("/v1/receipt-coupons", json={**again, "basket": BASKET}).json()
        assert retry["replayed"] and retry["coupon"]["code"] == answer["coupon"]["code"]
        reprint = till.post(f"/v1/receipt-coupons/{txn}/reprint").json()
        assert reprint["status"] == "printed"
    streams = sink.wait_connections(2)
    assert b"REPRINT" in streams[-1]
    assert sum(answer["coupon"]["display"].encode() in s for s in streams) == 2


def test_a_store_hq_assigned_no_namespace_issues_no_coupons_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = new_token()
    cfg = _config(tmp_path, "store-009", token, {"kind": "simulated"})
    key = signing_key.create(Path(cfg.signing.key_path)).public_key
    (snapshot,) = _hq(tmp_path, datetime.now(UTC), {"store-009": key}, assign=False).values()
    cache = CodeCache.open(Path(cfg.cache.path), store_id="store-009")
    cache.load_snapshot(snapshot)
    cache.close()
    agent = build_app(cfg)
    answers = []
    try:
        with serving(agent) as url, caplog.at_level("WARNING"):
            store = Store("store-009", url, token)
            with store.client() as till:
                for member in LOYAL:
                    body = {"transaction_id": f"T-{member}", "cashier_id": "c", "member_id": member}
                    answers.append(
                        till.post("/v1/receipt-coupons", json={**body, "basket": BASKET}).json()
                    )
    finally:
        agent.close()
    assert not any(a["issued"] for a in answers)
    refused = [a for a in answers if a["reason"] == "NO_NAMESPACE"]
    assert refused and all(a["reason"] in ("NO_NAMESPACE", "HOLDOUT") for a in answers)
    assert "storeside-hq namespace assign store-009" in refused[0]["message"]
    warnings = [m for r in caplog.records if "receipt coupons are off" in (m := r.getMessage())]
    assert len(warnings) == 1  # once, not once per sale
