"""`make demo`: one chain, two stores, their tills and a receipt printer; every answer shown is
what the agent returned over real HTTP. Files go to ``var/demo/`` (recreated on each run)."""

from __future__ import annotations

import logging
import shutil
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.model import AgentConfig
from demo.config_push import config_story
from demo.event_log import event_log_story
from demo.follow import follow_story
from demo.hq import hq
from demo.narration import say, step
from demo.points import points_story
from demo.presence import presence_section, presence_story
from demo.receipts import receipt_story
from demo.reconfigure import reconfigure_story
from demo.sync import HqLink, hq_link, sync_story
from demo.till import till_story
from edge_agent.api.auth import new_token, token_digest
from edge_agent.cache.code_cache import CodeCache
from edge_agent.issuing import signing_key
from edge_agent.runtime.background import serving
from edge_agent.wiring import build_app
from hardware.printer.tcp_sink import PrinterSink

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "demo"
STORES = ("store-001", "store-002")  # each mints in the namespace HQ's snapshot assigns it


def store_config(
    store_id: str,
    tokens: dict[str, str],
    printer: dict[str, Any],
    link: HqLink,
    presence: dict[str, Any] | None = None,
) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            **({} if presence is None else {"presence": presence}),
            "store": {"store_id": store_id, "box_id": link.boxes[store_id].box_id},
            "sync": link.sync_section(store_id),
            "cache": {"path": str(WORK / f"{store_id}.cache.db")},
            "signing": {"key_path": str(WORK / f"{store_id}.key")},
            "printer": {**printer, "header_lines": [f"Storeside {store_id}", "Thank you!"]},
            "api": {
                "tills": [
                    {"till_id": t, "token_sha256": token_digest(tok)} for t, tok in tokens.items()
                ]
            },
        }
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="   [agent log] %(message)s", force=True)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    now = datetime.now(UTC)
    say("Storeside demo: two stores of one chain, on real SQLite, real HTTP, real ESC/POS bytes,")
    say("with simulated BLE beacons and NFC readers at store-001")
    sink = PrinterSink()  # store-001's receipt printer: a raw TCP printer on loopback
    printer = {"kind": "network", "host": "127.0.0.1", "port": sink.port, "timeout_s": 1.0}
    tokens = {s: {t: new_token() for t in ("till-1", "till-2")} for s in STORES}
    step("Each store box makes its coupon signing key (edge-agent keys init)")
    keys = {}
    for store_id in STORES:
        info = signing_key.create(WORK / f"{store_id}.key")
        keys[store_id] = info.public_key
        say(f"   {store_id}: key {info.key_id}")
    snapshots, codes, phone_key = hq(now, WORK, keys)
    with hq_link(WORK, STORES) as link:
        cfgs = {
            "store-001": store_config(
                "store-001", tokens["store-001"], printer, link, presence_section(WORK)
            ),
            "store-002": store_config(
                "store-002", tokens["store-002"], {"kind": "simulated"}, link
            ),
        }
        _stores(
            cfgs=cfgs,
            snapshots=snapshots,
            codes=codes,
            tokens=tokens,
            sink=sink,
            printer=printer,
            link=link,
            phone_key=phone_key,
        )
    for store_id, cfg in cfgs.items():
        event_log_story(Path(cfg.cache.path), store_id)
    say()
    say(
        f"Done. Files are in {WORK.relative_to(ROOT)}/ "
        "(hq.db, events.db, snapshots, caches, coupon.png)."
    )


def _stores(
    *,
    cfgs: dict[str, AgentConfig],
    snapshots: dict[str, Path],
    codes: dict[str, str],
    tokens: dict[str, dict[str, str]],
    sink: PrinterSink,
    printer: dict[str, Any],
    link: HqLink,
    phone_key: bytes,
) -> None:

    step("The store boxes load their snapshots and start their POS APIs and links to HQ")
    for store_id, cfg in cfgs.items():
        cache = CodeCache.open(Path(cfg.cache.path), store_id=store_id, box_id=cfg.store.box_id)
        loaded = cache.load_snapshot(snapshots[store_id])
        cache.close()
        say(
            f"   {store_id}: {loaded.codes:,} codes, {loaded.campaigns} campaigns, "
            f"minting in namespace {loaded.namespace}"
        )
    with ExitStack() as stack:
        stack.callback(sink.close)
        urls, agents = {}, {}
        for store_id, cfg in cfgs.items():
            agents[store_id] = agent = build_app(cfg)
            stack.callback(agent.close)
            urls[store_id] = stack.enter_context(serving(agent))
            say(f"   {store_id}: POS API at {urls[store_id]} (OpenAPI at /docs)")
        till_story(urls["store-001"], tokens["store-001"], codes)
        receipt_story(
            store1=(urls["store-001"], tokens["store-001"]["till-1"]),
            store2=(urls["store-002"], tokens["store-002"]["till-1"]),
            sink=sink,
            printer=cfgs["store-001"].printer,
            work=WORK,
        )
        reconfigure_story(agents["store-002"], urls["store-002"])
        sync_story(link, agents, urls, tokens, codes)
        follow_story(link, agents, urls, tokens, codes, work=WORK)
        config_story(
            link, agents["store-001"], urls["store-001"], tokens["store-001"]["till-1"], work=WORK
        )
        presence_story(
            link,
            agents["store-001"],
            urls["store-001"],
            tokens["store-001"]["till-1"],
            work=WORK,
            phone_key=phone_key,
        )
        points_story(link, agents["store-001"], urls["store-001"], tokens["store-001"], work=WORK)


if __name__ == "__main__":
    main()
