"""The ``storeside-hq identities`` commands: consenting members' presence identities.

    identities key-new MEMBER                  the member's first rotating-identifier key
    identities key-rotate MEMBER [--overlap-hours 24]
    identities tag-enrol|tag-unenrol MEMBER KIND HEX   (ibeacon, altbeacon, eddystone_uid)
    identities card-enrol|card-unenrol MEMBER UID_HEX
    identities show MEMBER                     key ids and windows, tags, card digests
    identities token MEMBER [--hq-key F] [--days 30]   an NFC member token for the member's phone

A new key is printed once, as its id and base64 (standard alphabet, padded), to provision the
member app; it is on stdout only, never in a log, and ``show`` never prints a key. Every
command refuses an unknown member or one without proximity consent (exit 2, one line).
"""

from __future__ import annotations

import argparse
import base64
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cloud_sync.contract import member_token
from cloud_sync.hq import hq_key_file, identity_enrolment, member_tokens
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.identity_enrolment import NewKey

MAX_OVERLAP_HOURS = 24 * 90


def _open(args: argparse.Namespace) -> CentralStore:
    return CentralStore.open(Path(args.db))


def _print_key(made: NewKey) -> None:
    print(f"member {made.member_id}: key {made.key_id} valid from {made.valid_from.isoformat()}")
    if made.others_end is not None:
        print(f"earlier keys stop resolving at {made.others_end.isoformat()}")
    print(f"key_id {made.key_id}")
    print(f"key {base64.b64encode(made.key).decode('ascii')}")
    print("give the key to the member app now: HQ never shows it again")


def _key_new(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        _print_key(identity_enrolment.new_key(central, args.member, now=now))
    return 0


def _key_rotate(args: argparse.Namespace, now: datetime) -> int:
    overlap = timedelta(hours=args.overlap_hours)
    with _open(args) as central:
        _print_key(identity_enrolment.rotate_key(central, args.member, now=now, overlap=overlap))
    return 0


def _tag_enrol(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        new = identity_enrolment.enrol_tag(central, args.member, args.kind, args.value, now=now)
    print(f"{args.kind} tag {'enrolled' if new else 'was enrolled already'} for {args.member}")
    return 0


def _tag_unenrol(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        identity_enrolment.unenrol_tag(central, args.member, args.kind, args.value, now=now)
    print(f"{args.kind} tag unenrolled for {args.member}")
    return 0


def _card_enrol(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        new = identity_enrolment.enrol_card(central, args.member, args.uid, now=now)
    print(f"card {'enrolled' if new else 'was enrolled already'} for {args.member} (by digest)")
    return 0


def _card_unenrol(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        identity_enrolment.unenrol_card(central, args.member, args.uid, now=now)
    print(f"card unenrolled for {args.member}")
    return 0


def _token(args: argparse.Namespace, now: datetime) -> int:
    key = hq_key_file.load(Path(args.hq_key))
    with _open(args) as central:
        payload = member_tokens.issue(
            central, args.member, key=key, now=now, valid=timedelta(days=args.days)
        )
    print(f"record_type {member_token.EXTERNAL_TYPE}")
    print(f"payload {payload.hex()}")
    print(f"expires_at {(now.replace(microsecond=0) + timedelta(days=args.days)).isoformat()}")
    return 0


def _show(args: argparse.Namespace, now: datetime) -> int:
    with _open(args) as central:
        found = identity_enrolment.show(central, args.member)
    for k in found.keys:
        start = "-" if k.valid_from is None else k.valid_from.isoformat()
        end = "-" if k.valid_until is None else k.valid_until.isoformat()
        print(f"key\t{k.key_id}\t{start}\t{end}")
    for t in found.tags:
        print(f"tag\t{t.kind}\t{t.value.hex()}")
    for digest in found.cards:
        print(f"card\t{digest}")
    return 0


def add_commands(sub: Any, whole: Callable[[int, int], Callable[[str], int]]) -> None:
    """The ``identities`` group on ``storeside-hq``'s subparsers ``sub``."""
    top = sub.add_parser(
        "identities", help="consenting members' presence identities (keys, beacon tags, cards)"
    )
    group = top.add_subparsers(dest="action", required=True, parser_class=type(top))
    p = group.add_parser("key-new", help="make a member's rotating-identifier key (shown once)")
    p.add_argument("member")
    p.set_defaults(handler=_key_new)
    p = group.add_parser("key-rotate", help="a new key; the earlier ones end after an overlap")
    p.add_argument("member")
    p.add_argument(
        "--overlap-hours",
        type=whole(0, MAX_OVERLAP_HOURS),
        default=24,
        help="how long the earlier keys keep resolving (default 24)",
    )
    p.set_defaults(handler=_key_rotate)
    for name, handler, verb in (
        ("tag-enrol", _tag_enrol, "enrol"),
        ("tag-unenrol", _tag_unenrol, "unenrol"),
    ):
        p = group.add_parser(name, help=f"{verb} a fixed beacon tag for a member")
        p.add_argument("member")
        p.add_argument("kind", help="ibeacon, altbeacon or eddystone_uid")
        p.add_argument(
            "value",
            help="hex: iBeacon UUID+major+minor (20 bytes), AltBeacon id (20), "
            "Eddystone-UID namespace+instance (16); dashes and colons allowed",
        )
        p.set_defaults(handler=handler)
    for name, handler, verb in (
        ("card-enrol", _card_enrol, "enrol"),
        ("card-unenrol", _card_unenrol, "unenrol"),
    ):
        p = group.add_parser(name, help=f"{verb} an NFC member card (HQ keeps only a digest)")
        p.add_argument("member")
        p.add_argument("uid", help="the card's UID in hex (4, 7 or 10 bytes)")
        p.set_defaults(handler=handler)
    p = group.add_parser("token", help="an NFC member token (an NDEF record) for the member app")
    p.add_argument("member")
    p.add_argument("--hq-key", default="hq-signing.key", help="HQ's signing key")
    p.add_argument("--days", type=whole(1, 365), default=30, help="how long it lives (30)")
    p.set_defaults(handler=_token)
    p = group.add_parser("show", help="a member's key ids and windows, tags and card digests")
    p.add_argument("member")
    p.set_defaults(handler=_show)
