"""The ``storeside-hq`` commands of the event store: the worker, the views, resend.

``cloud_sync/hq/cli.py`` owns the parser and calls ``add_commands``; everything else is here.
These commands take the event store as their own ``--db`` (after the command name: a SQLite
path or a ``postgresql://`` URL, default ``hq-events.db``), distinct from the global ``--db``,
which is HQ's central store (campaigns, codes, store keys): the worker reads the keys from
that one as ``--hq-db``.

Views print a table (tab-separated, one line a row, a header first) or, with ``--json``, the
same rows as JSON through one pydantic ``TypeAdapter`` of the view's dataclass.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion
from pydantic import TypeAdapter

from cloud_sync.contract import topics
from cloud_sync.contract.ack import ResendRequest, SeqRange, encode_resend
from cloud_sync.contract.topics import Channel, TopicError
from cloud_sync.hq.code_io import parse_time
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from cloud_sync.hq.ingest.keyring import Keyring, central_keys
from cloud_sync.hq.ingest.worker import BrokerAddress, BrokerLogin, IngestWorker

DEFAULT_DB: Final = "hq-events.db"
PUBLISH_TIMEOUT_S: Final = 10.0
Handler = Callable[[argparse.Namespace, datetime], int]
_VERSIONS: Final = {"3.1.1": MQTTProtocolVersion.MQTTv311, "5": MQTTProtocolVersion.MQTTv5}


def _store(args: argparse.Namespace) -> EventStore:
    return open_event_store(args.events_db)


def login(args: argparse.Namespace) -> BrokerLogin:
    password = None
    if args.password_file is not None:
        try:
            password = Path(args.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise InputError(f"--password-file {args.password_file}: {exc.strerror}") from exc
    broker = BrokerAddress.parse(args.broker)
    if args.cafile is not None and not broker.tls:
        raise InputError("--cafile goes with an mqtts:// broker")
    return BrokerLogin(
        broker=broker,
        cafile=None if args.cafile is None else Path(args.cafile),
        username=args.username,
        password=password,
        protocol=_VERSIONS[args.mqtt_version],
    )


def connected(broker_login: BrokerLogin, client_id: str) -> mqtt.Client:
    """A one-shot command's client (clean session), connected, its network loop running;
    ``InputError`` when the broker cannot be reached. The caller disconnects and stops it."""
    client = broker_login.client(client_id, persistent=False)
    try:
        broker_login.connect(client, persistent=False)
    except OSError as exc:
        raise InputError(
            f"broker {broker_login.broker.host}:{broker_login.broker.port}: {exc}"
        ) from exc
    client.loop_start()
    return client


def seconds(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds from ``low`` to ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text}: from {low:g} to {high:g} seconds")
        return value

    return parse


def _ingest(args: argparse.Namespace, now: datetime) -> int:
    broker_login = login(args)
    group = None if args.no_share else args.group
    if group is not None:
        try:
            topics.checked_id("group", group)
        except TopicError as exc:
            raise InputError(f"--group: {exc}") from None
    keyring = Keyring(central_keys(Path(args.hq_db)))
    store = _store(args)
    worker = IngestWorker(
        login=broker_login,
        ingest=Ingest(store=store, keyring=keyring),
        client_id=args.client_id,
        group=group,
    )
    return run_service(args, "storeside.hq.ingest", worker.run, store)


class Service(Protocol):
    def __call__(self, stop: threading.Event) -> None: ...


def run_service(args: argparse.Namespace, name: str, run: Service, store: EventStore) -> int:
    """Log to stderr, run ``run`` until SIGTERM or SIGINT, then close ``store``: how every
    long-running HQ service (ingest, fanout, push) runs under systemd."""
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    broker = getattr(args, "broker", None)  # the push worker has none
    logging.getLogger(name).info(
        "event store %s%s",
        store.location,
        "" if broker is None else f"; broker {broker} (MQTT {args.mqtt_version})",
    )
    try:
        run(stop)
    finally:
        store.close()
    return 0


def _show(
    args: argparse.Namespace,
    read: Callable[[EventStore], Sequence[Any]],
    shape: Any,
    header: Sequence[str],
    line: Callable[[Any], Sequence[object]],
) -> int:
    """Read one view from the event store, close it, print the rows (table or --json)."""
    store = _store(args)
    try:
        rows = read(store)
    finally:
        store.close()
    _print(rows, shape, header, line, args.json)
    return 0


def _print(
    rows: Sequence[Any],
    shape: Any,
    header: Sequence[str],
    line: Callable[[Any], Sequence[object]],
    as_json: bool,
) -> None:
    if as_json:
        sys.stdout.write(TypeAdapter(list[shape]).dump_json(list(rows), indent=2).decode() + "\n")
        return
    print("\t".join(header))
    for row in rows:
        print("\t".join("-" if v is None else str(v) for v in line(row)))


def _ranges(ranges: Sequence[SeqRange]) -> str:
    return ",".join(f"{r.first}-{r.last}" for r in ranges) or "-"


def _when(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat(timespec="seconds")


def _outcome(outcome: str | None, version: int | None) -> str | None:
    """``rolled_back 7``: the last push's outcome and the version it is about."""
    if outcome is None:
        return None
    return outcome if version is None else f"{outcome} {version}"


def _fleet(args: argparse.Namespace, now: datetime) -> int:
    return _show(
        args,
        views.fleet,
        views.FleetRow,
        (
            "store",
            "box",
            "state",
            "last_seen",
            "outbox",
            "oldest_unsent",
            "stored_through",
            "lag",
            "parked",
            "missing",
            "deltas_behind",
            "config",
            "config_outcome",
            "devices",
        ),
        lambda r: (
            r.store_id,
            r.box_id,
            r.state or "unknown",
            _when(r.last_seen),
            r.outbox_depth,
            _when(r.oldest_unsent_at),
            r.stored_through,
            r.lag,
            r.parked,
            _ranges(r.missing),
            "needs snapshot" if r.needs_snapshot else r.deltas_behind,
            r.config_version,
            _outcome(r.config_outcome, r.config_outcome_version),
            r.devices_state,
        ),
    )


def _events(args: argparse.Namespace, now: datetime) -> int:
    where = views.EventFilter(
        store_id=args.store,
        box_id=args.box,
        code=args.code,
        type=args.type,
        since=None if args.since is None else parse_time(args.since, "--since"),
        until=None if args.until is None else parse_time(args.until, "--until"),
        limit=args.limit,
    )
    return _show(
        args,
        lambda store: views.events(store, where),
        views.EventRow,
        (
            "occurred_at",
            "store",
            "box",
            "seq",
            "type",
            "code",
            "till",
            "cashier",
            "member",
            "amount",
            "event_id",
        ),
        lambda r: (
            _when(r.occurred_at),
            r.store_id,
            r.box_id,
            r.seq,
            r.type,
            r.code,
            r.till_id,
            r.cashier_id,
            r.member_id,
            r.amount,
            r.event_id,
        ),
    )


def _conflicts(args: argparse.Namespace, now: datetime) -> int:
    def what(r: views.ConflictRow) -> str:
        if r.kind == "double_redemption":
            uses = r.detail["redemptions"]
            return f"{len(uses)} uses, limit {r.detail['use_limit']}: " + "; ".join(
                f"{u['store_id']}/{u['box_id']} seq {u['seq']} till {u['till_id']} "
                f"cashier {u['cashier_id']} member {u['member_id'] or '-'} at {u['occurred_at']}"
                for u in uses
            )
        return f"stored {r.detail['stored_hash']} received {r.detail['received_hash']}"

    return _show(
        args,
        views.conflicts,
        views.ConflictRow,
        ("detected_at", "kind", "code", "box", "seq", "detail"),
        lambda r: (_when(r.detected_at), r.kind, r.code, r.box_id, r.seq, what(r)),
    )


def _quarantine(args: argparse.Namespace, now: datetime) -> int:
    return _show(
        args,
        lambda store: views.quarantined(store, limit=args.limit),
        views.QuarantineRow,
        ("last_received_at", "times", "reason", "topic", "bytes", "detail"),
        lambda r: (
            _when(r.last_received_at),
            r.times,
            r.reason,
            r.topic,
            r.payload_size,
            r.detail,
        ),
    )


def _resend(args: argparse.Namespace, now: datetime) -> int:
    if args.first > args.last:
        raise InputError(f"--from {args.first} is after --to {args.last}")
    broker_login = login(args)
    store_id = args.store
    if store_id is None:
        store = _store(args)
        try:
            store_id = views.store_of(store, args.box)
        finally:
            store.close()
        if store_id is None:
            raise InputError(f"box {args.box!r} is unknown to the event store; give --store")
    try:
        topic = topics.topic(store_id, args.box, Channel.RESEND)
    except TopicError as exc:
        raise InputError(str(exc)) from None
    request = ResendRequest(
        store_id=store_id, box_id=args.box, ranges=(SeqRange(first=args.first, last=args.last),)
    )
    client = connected(broker_login, args.client_id or f"hq-resend-{os.getpid()}")
    try:
        info = client.publish(topic, encode_resend(request), qos=1)
        info.wait_for_publish(timeout=PUBLISH_TIMEOUT_S)
        if not info.is_published():
            raise InputError(f"broker {args.broker} did not take the request")
    finally:
        client.disconnect()
        client.loop_stop()
    print(f"asked box {args.box} of store {store_id} to resend {args.first}-{args.last}")
    return 0


def add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        dest="events_db",
        default=DEFAULT_DB,
        help=f"event store: SQLite path or postgresql:// URL (default {DEFAULT_DB})",
    )


def add_broker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port or mqtts://")
    p.add_argument("--cafile", help="CA certificate that signed the broker's (mqtts://)")
    p.add_argument("--username")
    p.add_argument("--password-file", help="file holding the broker password (one line)")
    p.add_argument("--mqtt-version", choices=sorted(_VERSIONS), default="3.1.1")


def add_commands(sub: Any, whole: Callable[[int, int], Callable[[str], int]]) -> None:
    """Add the event store's commands to ``storeside-hq``'s subparsers; ``whole`` is the
    CLI's bounded integer type."""
    p = sub.add_parser(
        "ingest", help="run an ingest worker: box batches from MQTT into the event store"
    )
    add_db(p)
    p.add_argument(
        "--hq-db", default="hq.db", help="central store with the store keys (default hq.db)"
    )
    add_broker(p)
    p.add_argument("--group", default="ingest", help="shared subscription group (default ingest)")
    p.add_argument(
        "--no-share",
        action="store_true",
        help="plain subscriptions: a broker without $share, one worker",
    )
    p.add_argument(
        "--client-id",
        default=f"hq-ingest-{socket.gethostname()}",
        help="stable per worker: the broker keeps its session (default hq-ingest-HOSTNAME)",
    )
    p.set_defaults(handler=_ingest)

    p = sub.add_parser("fleet", help="every box: state, last seen, outbox, lag, config run")
    add_db(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_fleet)

    p = sub.add_parser("events", help="stored events, filtered")
    add_db(p)
    p.add_argument("--store")
    p.add_argument("--box")
    p.add_argument("--code")
    p.add_argument("--type", help="e.g. code.redeemed")
    p.add_argument("--since", help="ISO 8601 with offset: occurred at or after")
    p.add_argument("--until", help="ISO 8601 with offset: occurred before")
    p.add_argument("--limit", type=whole(1, 10**7), default=1000, help="default 1000")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_events)

    p = sub.add_parser(
        "conflicts", help="double redemptions across stores, second versions of events"
    )
    add_db(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_conflicts)

    p = sub.add_parser("quarantine", help="refused payloads and why, newest first")
    add_db(p)
    p.add_argument("--limit", type=whole(1, 10**7), default=100, help="default 100")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_quarantine)

    p = sub.add_parser("resend", help="ask a box to send a range of its events again")
    add_db(p)
    p.add_argument("--box", required=True)
    p.add_argument("--store", help="the box's store (default: as the event store knows it)")
    p.add_argument("--from", dest="first", type=whole(1, 2**63 - 1), required=True)
    p.add_argument("--to", dest="last", type=whole(1, 2**63 - 1), required=True)
    add_broker(p)
    p.add_argument("--client-id", help="default hq-resend-PID")
    p.set_defaults(handler=_resend)
