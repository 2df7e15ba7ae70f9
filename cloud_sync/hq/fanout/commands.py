"""The ``storeside-hq`` commands of the fan-out: ``fanout`` (the service) and ``hq-key``
(``init``, ``show``, ``announce``: the next key, signed by the current one).

HQ's signing key signs every delta (and every config) a box will take: it is a PKCS#8 PEM
file only HQ's user may read (mode 0600, refused when looser; the same rules as a store's
coupon key; ``cloud_sync/hq/hq_key_file.py``). ``hq-key init`` makes it and prints the
public key every box pins as ``[sync] hq_public_key``; ``hq-key show`` prints it again.
"""

from __future__ import annotations

import argparse
import socket
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.hq import hq_key_file
from cloud_sync.hq.code_io import parse_time
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.fanout import key_announcements
from cloud_sync.hq.fanout.central_journal import CentralJournal
from cloud_sync.hq.fanout.service import FanoutService
from cloud_sync.hq.fanout.snapshot_shelf import SnapshotShelf
from cloud_sync.hq.ingest import commands as ingest_commands
from cloud_sync.hq.ingest.event_store import open_event_store
from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import key_id, raw_public_key

DEFAULT_KEY: Final = "hq-signing.key"


def _key(path: str) -> Ed25519PrivateKey:
    return hq_key_file.load(Path(path))


def _public(key: Ed25519PrivateKey) -> tuple[str, str]:
    """The key's id and its public half as a box's ``hq_public_key`` takes it."""
    public = key.public_key()
    return key_id(public), token_codec.public_key_text(raw_public_key(public))


def _fanout(args: argparse.Namespace, now: datetime) -> int:
    key = _key(args.hq_key)
    login = ingest_commands.login(args)
    store = open_event_store(args.events_db)
    service = FanoutService(
        login=login,
        store=store,
        journal=CentralJournal(Path(args.hq_db)),
        key=key,
        shelf=SnapshotShelf(central=Path(args.hq_db), directory=Path(args.snapshots), key=key),
        client_id=args.client_id,
        interval_s=args.interval_s,
    )
    return ingest_commands.run_service(args, "storeside.hq.fanout", service.run, store)


def _hq_key_init(args: argparse.Namespace, now: datetime) -> int:
    kid, text = _public(hq_key_file.create(Path(args.key)))
    print(f"HQ key {kid} written to {args.key}")
    print(f'every box\'s [sync] hq_public_key = "{text}"')
    return 0


def _hq_key_show(args: argparse.Namespace, now: datetime) -> int:
    kid, text = _public(_key(args.key))
    print(f"key_id {kid}")
    print(f'hq_public_key = "{text}"')
    return 0


def _hq_key_announce(args: argparse.Namespace, now: datetime) -> int:
    current, next_key = _key(args.key), _key(args.next)
    retire_at = None if args.retire_at is None else parse_time(args.retire_at, "--retire-at")
    if retire_at is not None and retire_at <= now:
        raise InputError(f"--retire-at {args.retire_at} is not in the future")
    store = open_event_store(args.events_db)
    try:
        made = store.run(
            lambda tx: key_announcements.announce(
                tx, current=current, next_key=next_key, retire_at=retire_at, now=now
            )
        )
    finally:
        store.close()
    print(f"HQ key {made.key_id} announced, signed by {key_id(current.public_key())}")
    if made.retires is not None:
        print(f"key {made.retires} is refused by the boxes from {made.retire_at}")
    print(f"boxes hear it at their next connect; then run the fan-out with --hq-key {args.next}")
    return 0


def add_commands(sub: Any) -> None:
    """Add the fan-out's commands to ``storeside-hq``'s subparsers."""
    p = sub.add_parser(
        "fanout", help="run the fan-out: every store's code cache deltas, signed, over MQTT"
    )
    ingest_commands.add_db(p)
    p.add_argument(
        "--hq-db",
        default="hq.db",
        help="central store whose change journal becomes the deltas (default hq.db)",
    )
    p.add_argument(
        "--snapshots",
        default="hq-snapshots",
        help="folder for the snapshots offered to boxes deltas cannot bring up; emptied at "
        "start (default hq-snapshots)",
    )
    ingest_commands.add_broker(p)
    p.add_argument(
        "--hq-key", default=DEFAULT_KEY, help=f"HQ's signing key (default {DEFAULT_KEY})"
    )
    p.add_argument(
        "--interval-s",
        type=ingest_commands.seconds(0.05, 60.0),
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
    p = key.add_parser("announce", help="announce HQ's next key to the boxes, signed by this one")
    ingest_commands.add_db(p)
    p.add_argument("--key", default=DEFAULT_KEY, help=f"the key HQ signs with now ({DEFAULT_KEY})")
    p.add_argument("--next", required=True, help="the next key's file (hq-key init --key NEXT)")
    p.add_argument("--retire-at", help="ISO 8601 with offset: from when boxes refuse --key")
    p.set_defaults(handler=_hq_key_announce)
    p = key.add_parser("show", help="print HQ's public key, as boxes pin it")
    p.add_argument("--key", default=DEFAULT_KEY, help=f"which (default {DEFAULT_KEY})")
    p.set_defaults(handler=_hq_key_show)
