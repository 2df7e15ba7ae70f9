"""The ``storeside-hq`` commands of the fan-out: ``fanout`` (the service) and ``hq-key``.

HQ's signing key signs every delta (and every config) a box will take: it is a PKCS#8 PEM
file only HQ's user may read (mode 0600, refused when looser; the same rules as a store's
coupon key, ``edge_agent/issuing/signing_key.py``). ``hq-key init`` makes it and prints the
public key every box pins as ``[sync] hq_public_key``; ``hq-key show`` prints it again.
"""

from __future__ import annotations

import argparse
import socket
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cloud_sync.hq.errors import InputError
from cloud_sync.hq.fanout.service import FanoutService
from cloud_sync.hq.ingest import commands as ingest_commands
from cloud_sync.hq.ingest.event_store import open_event_store
from edge_agent.issuing import signing_key

DEFAULT_KEY: Final = "hq-signing.key"


def _key(path: str) -> Any:
    try:
        return signing_key.load(Path(path))
    except signing_key.KeyFileMissingError:
        raise InputError(f"{path}: no HQ key; create one with `storeside-hq hq-key init`") from None
    except signing_key.SigningKeyError as exc:
        raise InputError(str(exc)) from None


def _fanout(args: argparse.Namespace, now: datetime) -> int:
    key = _key(args.hq_key)
    login = ingest_commands.login(args)
    store = open_event_store(args.events_db)
    service = FanoutService(
        login=login,
        store=store,
        journal=None,
        key=key,
        client_id=args.client_id,
        interval_s=args.interval_s,
    )
    return ingest_commands.run_service(args, "storeside.hq.fanout", service.run, store)


def _hq_key_init(args: argparse.Namespace, now: datetime) -> int:
    try:
        made = signing_key.create(Path(args.key))
    except signing_key.SigningKeyError as exc:
        raise InputError(str(exc)) from None
    print(f"HQ key {made.key_id} written to {made.path}")
    print(f'every box\'s [sync] hq_public_key = "{made.public_key}"')
    return 0


def _hq_key_show(args: argparse.Namespace, now: datetime) -> int:
    made = signing_key.info(Path(args.key), _key(args.key))
    print(f"key_id {made.key_id}")
    print(f'hq_public_key = "{made.public_key}"')
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.05 <= value <= 60.0:
        raise argparse.ArgumentTypeError(f"{text}: from 0.05 to 60 seconds")
    return value


def add_commands(sub: Any) -> None:
    """Add the fan-out's commands to ``storeside-hq``'s subparsers."""
    p = sub.add_parser(
        "fanout", help="run the fan-out: every store's code cache deltas, signed, over MQTT"
    )
    ingest_commands.add_db(p)
    ingest_commands.add_broker(p)
    p.add_argument(
        "--hq-key", default=DEFAULT_KEY, help=f"HQ's signing key (default {DEFAULT_KEY})"
    )
    p.add_argument(
        "--interval-s",
        type=_seconds,
        default=0.5,
        help="how often changes are gathered into deltas (default 0.5)",
    )
    p.add_argument(
        "--client-id",
        default=f"hq-fanout-{socket.gethostname()}",
        help="default hq-fanout-HOSTNAME",
    )
    p.set_defaults(handler=_fanout)

    key = sub.add_parser("hq-key", help="HQ's signing key for deltas and config").add_subparsers(
        dest="action", required=True, parser_class=type(p)
    )
    p = key.add_parser("init", help="create HQ's signing key and print its public key")
    p.add_argument("--key", default=DEFAULT_KEY, help=f"where (default {DEFAULT_KEY})")
    p.set_defaults(handler=_hq_key_init)
    p = key.add_parser("show", help="print HQ's public key, as boxes pin it")
    p.add_argument("--key", default=DEFAULT_KEY, help=f"which (default {DEFAULT_KEY})")
    p.set_defaults(handler=_hq_key_show)
