"""In-store presence end to end, on real parts: HQ's real central store enrols a consenting
member's phone key, her card and a member token; its snapshot reaches the box; the agent runs
from its config with the simulated BLE scanner and NFC readers replaying scenario files (the
twins of the bleak and nfcpy drivers) and serves the real POS API over HTTP.

The story: Anna taps her phone at the entrance (a check-in, once per visit), walks to the coffee
zone and lingers (a proximity offer: a coupon bound to her, an ``offer.triggered`` event); a
stranger's phone and a replay of Anna's identifier from half an hour ago are heard and refused;
she taps her card at till 1, and the POS asks who is at till 1 and gets her codes to apply,
which validate; till 2 may not ask about till 1. Health shows counts, never a member.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from cloud_sync.contract import member_token
from cloud_sync.contract.rotating_id import (
    MEMBER_SERVICE_UUID,
    counter_at,
    encode_frame,
    rotating_id,
)
from cloud_sync.hq import hq_key_file, identity_enrolment, member_tokens, store_keys
from cloud_sync.hq.central_store import CentralStore, MemberRow
from cloud_sync.hq.receipt_campaigns import create_proximity_campaigns
from cloud_sync.hq.snapshot import write_snapshot
from config.model import AgentConfig
from edge_agent.api.auth import new_token, token_digest
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.token_codec import public_key_text
from edge_agent.issuing import signing_key
from edge_agent.runtime.background import serving
from edge_agent.wiring import build_app

T = TypeVar("T")
STORE = "S1"
CARD_UID = "04a1b2c3d4e5f6"
BASKET = {"lines": [{"sku": "latte", "category": "coffee", "quantity": 2, "unit_price": 350}]}


def _hq(tmp: Path, now: datetime, store_key: str) -> tuple[Path, bytes, str, bytes]:
    """HQ's side; returns the snapshot, Anna's phone key, the HQ public key and her token."""
    central = CentralStore.create(tmp / "hq.db", fmt=AgentConfig().code_format.to_format())
    central.upsert_members(
        [
            MemberRow(member_id="anna", segment="loyal", tier="gold", proximity_consent=True),
            MemberRow(member_id="bob", segment="loyal", tier="gold", proximity_consent=False),
        ],
        now=now,
    )
    create_proximity_campaigns(
        central, now=now, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30)
    )
    store_keys.register(central, STORE, store_key, now=now)
    central.assign_namespace(STORE, now=now)
    # Enrolled an hour ago: a replay of her identifier from half an hour ago is one of hers.
    phone = identity_enrolment.new_key(central, "anna", now=now - timedelta(hours=1)).key
    identity_enrolment.enrol_card(central, "anna", CARD_UID, now=now)
    hq_key = hq_key_file.create(tmp / "hq-signing.key")
    token = member_tokens.issue(central, "anna", key=hq_key, now=now)
    snapshot = tmp / "s1.snapshot.db"
    write_snapshot(central, snapshot, STORE, now=now)
    central.close()
    public = hq_key.public_key().public_bytes_raw()
    return snapshot, phone, public_key_text(public), token


def _phone(key: bytes, at: datetime, t: float, rssi: int = -55) -> dict[str, Any]:
    frame = encode_frame(rotating_id(key, counter_at(at)))
    return {
        "t": t,
        "device": "phone",
        "rssi": rssi,
        "service_data": {MEMBER_SERVICE_UUID: frame.hex()},
    }


def _scenarios(tmp: Path, now: datetime, phone: bytes, token: bytes) -> dict[str, Path]:
    stranger = bytes(range(16))
    ble = [_phone(phone, now, 1.0 + i * 0.25) for i in range(20)]  # 1 s to 6 s in the coffee zone
    ble += [_phone(stranger, now, 1.1 + i * 0.5) for i in range(6)]
    ble.append(_phone(phone, now - timedelta(minutes=30), 2.0))  # a recorded old identifier
    ble.sort(key=lambda step: float(step["t"]))
    record = {"type": member_token.RECORD_TYPE, "payload_hex": token.hex()}
    files = {
        "coffee": (tmp / "coffee.jsonl", "\n".join(json.dumps(s) for s in ble)),
        "entrance": (
            tmp / "entrance.json",
            json.dumps(
                {
                    "events": [
                        {"after": 0.3, "records": [record]},
                        {"after": 0.5, "records": [record]},
                    ]
                }
            ),
        ),
        "till": (tmp / "till-1.json", json.dumps({"events": [{"after": 6.5, "uid": CARD_UID}]})),
    }
    for path, text in files.values():
        path.write_text(text)
    return {name: path for name, (path, _) in files.items()}


def _config(
    tmp: Path, tokens: dict[str, str], hq_public: str, files: dict[str, Path]
) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "store": {"store_id": STORE},
            "cache": {"path": str(tmp / "s1.cache.db")},
            "signing": {"key_path": str(tmp / "s1.key")},
            "printer": {"kind": "simulated"},
            "sync": {"hq_public_key": hq_public},
            "api": {"tills": [{"till_id": t, "token_sha256": token_digest(k)}
                              for t, k in tokens.items()]},
            "presence": {
                "enabled": True,
                "scanners": [{"id": "coffee-scanner", "kind": "simulated",
                              "scenario": str(files["coffee"])}],
                "zones": [
                    {"id": "coffee", "sources": ["coffee-scanner"]},
                    {"id": "entrance", "sources": ["entrance-reader"]},
                ],
                "rules": [{"id": "coffee-dwell", "zone": "coffee", "min_dwell_s": 2}],
                "readers": [
                    {"id": "entrance-reader", "kind": "simulated",
                     "scenario": str(files["entrance"]), "zone": "entrance"},
                    {"id": "till-1-reader", "kind": "simulated",
                     "scenario": str(files["till"]), "till": "till-1"},
                ],
            },
        }
    )  # fmt: skip


def _events(cache: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{cache}?mode=ro", uri=True) as conn:
        return [json.loads(p) for (p,) in conn.execute("SELECT payload FROM outbox ORDER BY seq")]


def _until(what: str, probe: Callable[[], T | None], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_member_is_checked_in_offered_a_coupon_and_known_at_the_till(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store_key = signing_key.create(tmp_path / "s1.key").public_key
    snapshot, phone, hq_public, token = _hq(tmp_path, now, store_key)
    tokens = {"till-1": new_token(), "till-2": new_token()}
    cfg = _config(tmp_path, tokens, hq_public, _scenarios(tmp_path, now, phone, token))
    cache_path = Path(cfg.cache.path)
    cache = CodeCache.open(cache_path, store_id=STORE)
    cache.load_snapshot(snapshot)
    cache.close()
    agent = build_app(cfg)
    try:
        with serving(agent) as url:
            till1 = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {tokens['till-1']}"}
            )
            till2 = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {tokens['till-2']}"}
            )

            def offered() -> dict[str, Any] | None:
                found = [e for e in _events(cache_path) if e["type"] == "offer.triggered"]
                return found[0] if found else None

            offer = _until("the proximity offer", offered)
            assert offer["member_id"] == "anna" and offer["channel"] == "proximity"
            assert offer["campaign_id"] == "proximity-loyal"
            assert offer["details"]["zone"] == "coffee" and offer["details"]["dwell_s"] >= 2

            def at_till() -> dict[str, Any] | None:
                body: dict[str, Any] = till1.get("/v1/tills/till-1/member").json()
                return body if body["member"] is not None else None

            seen = _until("the tap at till 1", at_till)
            assert seen["member"]["member_id"] == "anna" and seen["member"]["how"] == "card"
            codes = [c["code"] for c in seen["codes"]]
            assert offer["code"] in codes
            checked = till1.post(
                "/v1/validate",
                json={"codes": codes, "member_id": "anna", "basket": BASKET, "cashier_id": "c-1"},
            ).json()
            assert checked["decisions"][0]["ok"] is True and checked["total_discount"] == 70
            assert till2.get("/v1/tills/till-1/member").status_code == 403
            assert till1.delete("/v1/tills/till-1/member").json()["member"] is None
            health = httpx.get(f"{url}/v1/health").json()
            assert agent.presence is not None
            summary = agent.presence.summary() or ""  # what the box's MQTT health tells HQ
            assert "ble coffee-scanner scanning" in summary
            assert "nfc till-1-reader connected" in summary
    finally:
        agent.close()
    events = _events(cache_path)
    check_ins = [e for e in events if e["type"] == "member.checked_in"]
    assert [e["details"]["first_of_visit"] for e in check_ins] == [True, False]
    assert {e["member_id"] for e in check_ins} == {"anna"}
    assert check_ins[0]["details"]["how"] == "token"
    assert len([e for e in events if e["type"] == "offer.triggered"]) == 1
    presence = health["presence"]
    counts = presence["counts"]
    assert counts["unresolved:unknown"] == 6 and counts["unresolved:stale"] == 1
    assert counts["taps_identified"] == 3 and counts["offers"] == 1
    assert presence["scanners"]["coffee-scanner"]["phase"] == "scanning"
    assert presence["readers"]["till-1-reader"]["taps"] == 1
    assert "anna" not in json.dumps(health)
