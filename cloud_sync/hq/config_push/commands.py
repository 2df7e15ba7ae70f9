"""``storeside-hq config push FILE --store S | --fleet`` and ``storeside-hq config status``.

``push`` reads FILE (TOML, or JSON if it ends in ``.json``): a partial agent config, the
overlay. It is checked first (``config/overlay.refusals_before_push``: every schema error with
its key path, the fields a box keeps to itself, those no box can change live), and a file with
any error exits 2 with all of them and nothing recorded or published. Then it is recorded as
the next HQ-wide version, and every affected store's composed config (``config_layers``) is
signed with HQ's key and published retained, QoS 1, on the ``config`` topic of each of its
boxes HQ knows (``--box`` adds boxes HQ has not heard from yet), under the broker user
``hq-config``.

``status`` subscribes to every box's retained ``config_result`` for ``--wait-s`` and prints
one line per box: the version it runs, the last outcome, the version that was about, and its
errors. The results are retained by the broker, so nothing at HQ must have been listening.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt

from cloud_sync.contract import config_document, config_result, topics
from cloud_sync.contract.config_document import ConfigDocument
from cloud_sync.contract.config_result import ConfigResult
from cloud_sync.contract.hq_document import Kind
from cloud_sync.contract.message_codec import MessageError
from cloud_sync.contract.topics import Channel, TopicError
from cloud_sync.hq import hq_key_file, hq_signer
from cloud_sync.hq.config_push import config_layers
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.ingest import commands as ingest_commands
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from config.overlay import refusals_before_push

PUBLISH_TIMEOUT_S: Final = 10.0
EXIT_REFUSED: Final = 2


def read_overlay(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a config is a table of sections")
    return doc


def _connect(args: argparse.Namespace, prefix: str) -> mqtt.Client:
    login = ingest_commands.login(args)
    return ingest_commands.connected(login, args.client_id or f"{prefix}-{os.getpid()}")


def _composed(store: EventStore, store_id: str, now: datetime) -> ConfigDocument | None:
    return store.run(lambda tx: config_layers.compose(tx, store_id, now=now))


def _push(args: argparse.Namespace, now: datetime) -> int:
    overlay = read_overlay(Path(args.file))
    errors = refusals_before_push(overlay)
    if errors:
        for error in errors:
            print(f"{args.file}: {error}", file=sys.stderr)
        print(f"{args.file}: {len(errors)} errors: nothing pushed", file=sys.stderr)
        return EXIT_REFUSED
    key = hq_key_file.load(Path(args.hq_key))
    scope = None if args.fleet else args.store
    store = open_event_store(args.events_db)
    try:
        version = store.run(lambda tx: config_layers.record(tx, store_id=scope, overlay=overlay,
                                                            now=now))  # fmt: skip
        known = store.run(lambda tx: config_layers.boxes(tx, scope))
        for box in args.box or ():
            if scope is None:
                raise InputError("--box goes with --store")
            known.setdefault(box, scope)
        documents = {s: _composed(store, s, now) for s in sorted(set(known.values()))}
    finally:
        store.close()
    client = _connect(args, "hq-config")
    try:
        for box, store_id in sorted(known.items()):
            doc = documents[store_id]
            assert doc is not None  # a push was just recorded for it, or for the fleet
            refused = refusals_before_push(doc.overlay)  # the fleet's and the store's together
            if refused:
                print(f"store {store_id}: composed config refused: {refused[0]}", file=sys.stderr)
                continue
            payload = hq_signer.sign(Kind.CONFIG, config_document.encode(doc), key)
            try:
                name = topics.topic(store_id, box, Channel.CONFIG)
            except TopicError as exc:
                print(f"box {box}: {exc}", file=sys.stderr)
                continue
            info = client.publish(name, payload, qos=1, retain=True)
            info.wait_for_publish(timeout=PUBLISH_TIMEOUT_S)
            if not info.is_published():
                raise InputError(f"broker {args.broker} did not take the config for {box}")
            print(f"config {doc.version} published to box {box} of store {store_id}")
    finally:
        client.disconnect()
        client.loop_stop()
    what = "the fleet" if scope is None else f"store {scope}"
    print(f"config version {version} for {what}: {len(known)} boxes")
    return 0


def collect_results(client: mqtt.Client, wait_s: float) -> dict[tuple[str, str], ConfigResult]:
    """Every retained config result the broker hands over within ``wait_s``."""
    found: dict[tuple[str, str], ConfigResult] = {}
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            where = topics.parse_topic(message.topic)
            result = config_result.decode(bytes(message.payload))
        except (TopicError, MessageError):
            return
        if (result.store_id, result.box_id) == (where.store_id, where.box_id):
            with lock:
                found[(where.store_id, where.box_id)] = result

    client.on_message = on_message
    client.subscribe([(s, 1) for s in topics.config_subscriptions()])
    time.sleep(wait_s)
    with lock:
        return dict(found)


def _status(args: argparse.Namespace, now: datetime) -> int:
    client = _connect(args, "hq-config-status")
    try:
        results = collect_results(client, args.wait_s)
    finally:
        client.disconnect()
        client.loop_stop()
    print("store_id\tbox_id\trunning\toutcome\tversion\tat\terrors")
    for (store_id, box_id), r in sorted(results.items()):
        errors = "; ".join(map(str, r.errors))
        print(f"{store_id}\t{box_id}\t{r.running or '-'}\t{r.outcome.value}\t"
              f"{r.version or '-'}\t{r.at.isoformat()}\t{errors}")  # fmt: skip
    return 0


def add_commands(sub: Any) -> None:
    """Add ``config push`` and ``config status`` to ``storeside-hq``'s subparsers."""
    group = sub.add_parser("config", help="push config to the store boxes, see what they run")
    actions = group.add_subparsers(dest="action", required=True, parser_class=type(group))
    p = actions.add_parser("push", help="check, sign and publish a config to a store or the fleet")
    p.add_argument("file", help="the config to set (TOML, or .json): sections and fields")
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--store", help="for this store's boxes (over the fleet's)")
    scope.add_argument("--fleet", action="store_true", help="for every store")
    p.add_argument("--box", action="append", help="a box of --store HQ has not heard from yet")
    ingest_commands.add_db(p)
    ingest_commands.add_broker(p)
    p.add_argument("--hq-key", default="hq-signing.key", help="HQ's signing key")
    p.add_argument("--client-id", help="default hq-config-PID")
    p.set_defaults(handler=_push)
    p = actions.add_parser("status", help="which box runs which config, and what was refused")
    ingest_commands.add_broker(p)
    p.add_argument(
        "--wait-s",
        type=ingest_commands.seconds(0.1, 60.0),
        default=2.0,
        help="how long to gather (default 2)",
    )
    p.add_argument("--client-id", help="default hq-config-status-PID")
    p.set_defaults(handler=_status)
