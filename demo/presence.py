"""The demo's in-store presence story at store-001: Chen (who opted in) checks in with her phone,
lingers at the coffee counter and gets a proximity offer that HQ pushes to her app; a passer-by,
Bob (who did not opt in) and a replayed identifier are heard and ignored; at till 1 she taps her
member card and the POS applies her coupons without anyone typing a code.

The scanner and the readers are the simulated twins the config names (``kind = "simulated"``);
the story feeds them from this thread as the real radios would be fed by the air.
"""

from __future__ import annotations

import http.server
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from cloud_sync.hq import member_tokens
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.member_push.signature import verify
from cloud_sync.hq.member_push.status import summary
from cloud_sync.hq.member_push.webhook import Webhook
from cloud_sync.hq.member_push.worker import PushWorker
from demo.hq import CHEN_CARD
from demo.narration import money, say, show, step
from demo.sync import HqLink
from edge_agent.presence.ndef_message import NdefRecord
from edge_agent.wiring import Agent
from hardware.ble.sim_scanner import SimAdvert, SimBeaconScanner
from hardware.nfc.sim_reader import SimulatedReader
from hardware.screen.sim_screen import SimShelfScreen

T = TypeVar("T")
WAIT_S = 20.0
BASKET = {
    "lines": [
        {"sku": "latte", "category": "coffee", "quantity": 2, "unit_price": 350},
        {"sku": "croissant", "category": "bakery", "quantity": 2, "unit_price": 180},
    ]
}
SECRET = b"demo-webhook-secret-not-for-production"


def presence_section(work: Path) -> dict[str, Any]:
    """store-001's ``[presence]``: a coffee-zone scanner, an entrance reader, a till reader."""
    scenario = work / "no-scenario.json"  # the story feeds the twins live instead
    scenario.write_text('{"events": []}')
    ble = work / "no-scenario.jsonl"
    ble.write_text("")
    return {
        "enabled": True,
        "scanners": [{"id": "coffee-scanner", "kind": "simulated", "scenario": str(ble)}],
        "zones": [
            {"id": "coffee", "sources": ["coffee-scanner"], "screen_url": "simulated"},
            {"id": "entrance", "sources": ["entrance-reader"]},
        ],
        "rules": [{"id": "coffee-dwell", "zone": "coffee", "min_dwell_s": 3}],
        "readers": [
            {"id": "entrance-reader", "kind": "simulated", "scenario": str(scenario),
             "zone": "entrance"},
            {"id": "till-1-reader", "kind": "simulated", "scenario": str(scenario),
             "till": "till-1"},
        ],
    }  # fmt: skip


def _until(what: str, probe: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise RuntimeError(f"the demo timed out waiting for {what}")


def _events(cache: Path, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{cache}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT body FROM events WHERE type = ? ORDER BY seq", (kind,))
        return [json.loads(body) for (body,) in rows]


def _phone(key: bytes, at: datetime, t: float, device: str, rssi: int = -58) -> SimAdvert:
    frame = encode_frame(rotating_id(key, counter_at(at)))
    return SimAdvert(t=t, device=device, rssi=rssi, service_data={MEMBER_SERVICE_UUID: frame})


@contextmanager
def _member_app_backend() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The member app's backend: a webhook that checks HQ's signature on every push."""
    got: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            why = verify(SECRET, self.headers.get("Storeside-Signature"), body,
                         now=datetime.now(UTC))  # fmt: skip
            ok = why is None
            if ok:
                got.append(json.loads(body))
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/offers", got
    finally:
        server.shutdown()
        server.server_close()


def presence_story(
    link: HqLink, agent: Agent, url: str, token: str, *, work: Path, phone_key: bytes
) -> None:
    presence = agent.presence
    assert presence is not None
    scanner = presence.scanners["coffee-scanner"]
    entrance = presence.readers["entrance-reader"][1]
    till_reader = presence.readers["till-1-reader"][1]
    assert isinstance(scanner, SimBeaconScanner)
    assert isinstance(entrance, SimulatedReader) and isinstance(till_reader, SimulatedReader)
    cache = Path(agent.cfg.cache.path)
    now = datetime.now(UTC)

    step("store-001: Chen walks in and taps her phone on the entrance reader")
    with CentralStore.open(work / "hq.db") as central:  # storeside-hq identities token chen
        member = member_tokens.issue(central, "chen", key=link.hq_key, now=now)
    say(f"   her app holds an HQ-signed member token ({len(member)} bytes, one NDEF record)")
    entrance.present_threadsafe(
        records=(NdefRecord(type=member_token.RECORD_TYPE, payload=member),)
    )
    checked = _until("the check-in", lambda: _events(cache, "member.checked_in"))
    say(f"   member.checked_in: {checked[0]['member_id']}, first of this visit: "
        f"{checked[0]['details']['first_of_visit']} (a check-in reward, when configured, is "
        "given once per visit)")  # fmt: skip

    step("She lingers at the coffee counter; the coffee-zone scanner hears her phone")
    base = scanner.scenario_time
    steps = [_phone(phone_key, now, base + 0.3 + i * 0.25, "chen-phone") for i in range(28)]
    stranger, bobs = bytes(range(16)), bytes(range(16, 32))
    for i in range(6):  # a passer-by, and Bob, whose app HQ holds no key of (he did not opt in)
        steps.append(_phone(stranger, now, base + 0.4 + i * 0.5, "passer-by", -70))
        steps.append(_phone(bobs, now, base + 0.6 + i * 0.5, "bob-phone", -62))
    old = now - timedelta(minutes=30)  # someone replays what her phone sent half an hour ago
    steps.append(_phone(phone_key, old, base + 1.0, "replayer", -60))
    for one in sorted(steps, key=lambda a: a.t):  # the twin replays its steps in order
        scanner.inject_threadsafe(one)
    offer = _until("the proximity offer", lambda: _events(cache, "offer.triggered"))[0]
    d = offer["details"]
    say(f"   after {d['dwell_s']:.1f} s in the coffee zone: offer.triggered for "
        f"{offer['member_id']} ({d['segment']}): {d['benefit']}, coupon {d['display']} bound to "
        f"her, valid to {d['expires_at'][:10]}")  # fmt: skip
    screen = presence.shelf.screen("coffee")
    assert isinstance(screen, SimShelfScreen)
    shown = _until("the shelf screen", lambda: screen.shown)[0]
    say(f"   the coffee counter's screen shows: {shown.campaign_name}: {shown.benefit} "
        "(it names nobody: the code goes to her phone)")  # fmt: skip
    health = httpx.get(f"{url}/v1/health", timeout=5).json()["presence"]["counts"]
    say(f"   the passer-by's and Bob's phones: heard, recognised as nobody, nothing kept "
        f"({health.get('unresolved:unknown', 0)} adverts); the replayed identifier: refused as "
        f"stale ({health.get('unresolved:stale', 0)})")  # fmt: skip

    _push_to_app(link)
    _at_till(url, token, till_reader)


def _push_to_app(link: HqLink) -> None:
    step("HQ pushes the offer to Chen's app (storeside-hq push run)")
    with _member_app_backend() as (webhook, received):
        _until("the offer at HQ", lambda: _pushable(link))
        PushWorker(store=link.store, sender=Webhook(url=webhook, secret=SECRET)).drain()
        pushed = _until("the push", lambda: received)
    say(f"   the member app's backend got it, HMAC-signed: {pushed[0]['member_id']}, "
        f"{pushed[0].get('benefit', '')} ({len(received)} push)")  # fmt: skip


def _at_till(url: str, token: str, till_reader: SimulatedReader) -> None:
    step("At till 1 Chen taps her member card; the POS asks who is at till 1")
    till_reader.present_threadsafe(uid=bytes.fromhex(CHEN_CARD))
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as till:

        def at_till() -> dict[str, Any] | None:
            body: dict[str, Any] = till.get("/v1/tills/till-1/member").json()
            return body if body["member"] is not None else None

        seen = _until("the tap at till 1", at_till)
        codes = [c["code"] for c in seen["codes"]]
        who = seen["member"]
        listed = ", ".join(f"{c['code']} ({c['kind']})" for c in seen["codes"])
        say(f"   GET /v1/tills/till-1/member: {who['member_id']} (by {who['how']}), "
            f"{len(codes)} codes to apply: {listed}")  # fmt: skip
        answer = till.post(
            "/v1/validate",
            json={"codes": codes, "member_id": "chen", "basket": BASKET, "cashier_id": "c-3"},
        ).json()
        for decision in answer["decisions"]:
            show(decision)
        say(f"   applied without typing a code: -{money(answer['total_discount'])}; what does not "
            "combine stays hers for another visit")  # fmt: skip
        till.delete("/v1/tills/till-1/member")


def _pushable(link: HqLink) -> bool:
    """Whether HQ's event store holds the offer yet (the box's outbox drains in batches)."""
    return summary(link.store, now=datetime.now(UTC)).pending > 0
