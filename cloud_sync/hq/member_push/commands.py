"""The ``storeside-hq push`` commands: the delivery worker, its status, requeue, a new secret.

``push run`` is a long-running service like ``ingest`` and ``fanout`` (SIGTERM stops it after
the offer in hand). ``push status`` prints the counts per state and the last failures, or one
offer's delivery record with ``--event``; ``--json`` gives the same through the views'
dataclasses. ``push retry`` requeues failed offers; ``push secret`` writes a new shared secret.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from pydantic import TypeAdapter

from cloud_sync.hq.errors import InputError
from cloud_sync.hq.ingest import commands as ingest_commands
from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.member_push import push_queue, secret_file, status
from cloud_sync.hq.member_push.retry_policy import RetryPolicy
from cloud_sync.hq.member_push.webhook import Webhook
from cloud_sync.hq.member_push.worker import PushWorker

LEASE_TIMEOUTS: Final = 3  # the lease outlasts this many timeouts (connect, send, read)


def _run(args: argparse.Namespace, now: datetime) -> int:
    if args.lease_s < LEASE_TIMEOUTS * args.timeout_s:
        raise InputError(
            f"--lease-s {args.lease_s:g} must be at least {LEASE_TIMEOUTS} x --timeout-s "
            f"({LEASE_TIMEOUTS * args.timeout_s:g}): a request must end before its lease"
        )
    if args.cap_s < args.base_s:
        raise InputError(f"--cap-s {args.cap_s:g} is below --base-s {args.base_s:g}")
    webhook = Webhook(
        url=args.webhook,
        secret=secret_file.load(Path(args.secret_file)),
        timeout_s=args.timeout_s,
        cafile=None if args.cafile is None else Path(args.cafile),
    )
    store = open_event_store(args.events_db)
    worker = PushWorker(
        store=store,
        sender=webhook,
        policy=RetryPolicy(
            base=timedelta(seconds=args.base_s),
            cap=timedelta(seconds=args.cap_s),
            max_attempts=args.max_attempts,
        ),
        lease=timedelta(seconds=args.lease_s),
        idle_s=args.idle_s,
    )
    return ingest_commands.run_service(args, "storeside.hq.member_push", worker.run, store)


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.isoformat(timespec="seconds")


def _line(r: status.PushRecord) -> str:
    said = "-" if r.last_status is None else str(r.last_status)
    return "\t".join(
        (_when(r.updated_at), r.event_id, r.store_id, r.member_id or "-", str(r.attempts), said,
         r.last_error or "-")
    )  # fmt: skip


def _status(args: argparse.Namespace, now: datetime) -> int:
    store = open_event_store(args.events_db)
    try:
        if args.event is not None:
            found = status.record(store, args.event)
            if found is None:
                raise InputError(f"no offer {args.event!r} was queued for pushing")
            if args.json:
                _json(status.PushRecord, found)
            else:
                for name in status.PushRecord.__dataclass_fields__:
                    value = getattr(found, name)
                    shown = _when(value) if isinstance(value, datetime) else value
                    print(f"{name}\t{'-' if shown is None else shown}")
            return 0
        s = status.summary(store, now=now, failures=args.failures)
    finally:
        store.close()
    if args.json:
        _json(status.PushSummary, s)
        return 0
    oldest = _when(s.oldest_pending_at)
    print(f"pending\t{s.pending}\t(in flight {s.in_flight}; oldest queued {oldest})")
    print(f"delivered\t{s.delivered}")
    print(f"failed\t{s.failed}")
    if s.last_failures:
        print("\nlast failures, newest first:")
        print(
            "\t".join(("failed_at", "event_id", "store", "member", "attempts", "status", "reason"))
        )
        for r in s.last_failures:
            print(_line(r))
    return 0


def _json(shape: Any, value: object) -> None:
    sys.stdout.write(TypeAdapter(shape).dump_json(value, indent=2).decode() + "\n")


def _retry(args: argparse.Namespace, now: datetime) -> int:
    if args.failed == bool(args.event_ids):
        raise InputError("give --failed or EVENT_ID..., not both or neither")
    ids = None if args.failed else list(args.event_ids)
    store = open_event_store(args.events_db)
    try:
        count = store.run(lambda tx: push_queue.requeue(tx, ids, now=now))
    finally:
        store.close()
    print(f"{count} failed offer(s) queued again")
    return 0


def _secret(args: argparse.Namespace, now: datetime) -> int:
    secret_file.create(Path(args.out))
    print(f"webhook secret written to {args.out} (mode 0600): give its line to the receiver")
    return 0


def add_commands(sub: Any, whole: Any) -> None:
    """Add ``push`` to ``storeside-hq``'s subparsers; ``whole`` is the CLI's integer type."""
    seconds = ingest_commands.seconds
    group = sub.add_parser(
        "push", help="deliver proximity offers to the member's phone or wallet (webhook)"
    )
    push = group.add_subparsers(dest="action", required=True, parser_class=type(group))
    p = push.add_parser("run", help="the delivery worker: POST each queued offer, signed")
    ingest_commands.add_db(p)
    p.add_argument("--webhook", required=True, help="the receiver's URL, http:// or https://")
    p.add_argument("--secret-file", required=True, help="the shared HMAC secret (mode 0600)")
    p.add_argument("--cafile", help="CA certificate of an https:// receiver (default: system)")
    p.add_argument(
        "--timeout-s", type=seconds(0.1, 300.0), default=10.0, help="per connect/read (10)"
    )
    p.add_argument(
        "--lease-s",
        type=seconds(0.3, 3600.0),
        default=60.0,
        help="an offer being sent is another worker's again after this (60; >= 3 timeouts)",
    )
    p.add_argument("--base-s", type=seconds(0.01, 3600.0), default=2.0, help="first retry (2)")
    p.add_argument("--cap-s", type=seconds(0.01, 86400.0), default=600.0, help="retry cap (600)")
    p.add_argument(
        "--max-attempts", type=whole(1, 10_000), default=40, help="then failed (default 40)"
    )
    p.add_argument(
        "--idle-s", type=seconds(0.05, 60.0), default=0.5, help="queue poll when idle (0.5)"
    )
    p.set_defaults(handler=_run)

    p = push.add_parser("status", help="pending / delivered / failed, the last failures")
    ingest_commands.add_db(p)
    p.add_argument("--event", metavar="EVENT_ID", help="one offer's delivery record")
    p.add_argument("--failures", type=whole(0, 10_000), default=10, help="how many (10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_status)

    p = push.add_parser("retry", help="queue failed offers again (after fixing the webhook)")
    ingest_commands.add_db(p)
    p.add_argument("--failed", action="store_true", help="every failed offer")
    p.add_argument("event_ids", nargs="*", metavar="EVENT_ID")
    p.set_defaults(handler=_retry)

    p = push.add_parser("secret", help="write a new shared webhook secret (mode 0600)")
    p.add_argument("out", metavar="FILE")
    p.set_defaults(handler=_secret)
