"""``storeside-hq broker``: run HQ's broker in the foreground for a pilot, or add a user.

    storeside-hq broker [--dir DIR] [--port N] [--users FILE] [--embedded]
                        [--listen ADDRESS] [--hostname NAME ...]
    storeside-hq broker --users FILE --add-user NAME   < password

The first runs Mosquitto (if installed; TLS, ``mqtts://``) or amqtt (``--embedded`` or no
Mosquitto; plain TCP on 127.0.0.1) until SIGINT or SIGTERM, logging its URL and, for
Mosquitto, the CA file the boxes must pin; SIGHUP re-reads the password file (as
``systemctl reload mosquitto`` does). The second hashes one line read from stdin into FILE (a
Mosquitto password file; created if missing) and exits: the way to add a box where
``mosquitto_passwd`` is not installed. Passwords are never logged or echoed.

Registered by ``add_broker_command`` so HQ's CLI module needs one line for it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Final, TypeVar

from cloud_sync.hq.broker.errors import BrokerStartError
from cloud_sync.hq.broker.mosquitto import MosquittoBroker, find_executable
from cloud_sync.hq.broker.password_file import (
    check_username,
    hash_password,
    read_password_file,
    write_hashes,
)
from cloud_sync.hq.broker.running_broker import RunningBroker
from cloud_sync.hq.errors import InputError

log = logging.getLogger("storeside.broker")
_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)
_WATCH_S: Final = 0.5  # how soon a Mosquitto that died is noticed


def add_broker_command(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("broker", help="run HQ's MQTT broker in the foreground (for a pilot)")
    p.add_argument(
        "--dir",
        default="storeside-broker",
        help="config, data, TLS (default ./storeside-broker)",
    )
    p.add_argument(
        "--port", type=int, default=None, help="default 8883 (Mosquitto, TLS), 1883 (amqtt)"
    )
    p.add_argument(
        "--users", metavar="FILE", help="Mosquitto password file (default DIR/storeside.passwd)"
    )
    p.add_argument("--embedded", action="store_true", help="amqtt even if Mosquitto is installed")
    p.add_argument("--listen", default="127.0.0.1", help="Mosquitto's address (0.0.0.0: all)")
    p.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="a name boxes dial, for the server certificate (repeatable)",
    )
    p.add_argument("--add-user", metavar="NAME", help="add NAME to --users (password on stdin)")
    p.set_defaults(handler=run_broker_command)


def run_broker_command(args: argparse.Namespace, _now: datetime) -> int:
    # Imported here, not at the top: amqtt costs every other storeside-hq command ~60 ms.
    from cloud_sync.hq.broker.choice import start_broker  # noqa: PLC0415

    directory = Path(args.dir)
    users = Path(args.users) if args.users else directory / "storeside.passwd"
    if args.add_user:
        return _add_user(users, args.add_user)
    embedded = args.embedded or find_executable("mosquitto") is None
    if embedded and args.listen != "127.0.0.1":
        raise InputError("amqtt listens on 127.0.0.1 only: install Mosquitto for remote boxes")
    _log_to_stderr()
    if not users.exists():
        log.warning("no password file %s yet: no one can connect (see --add-user)", users)
    broker = start_broker(
        directory=directory,
        port=args.port if args.port is not None else (1883 if embedded else 8883),
        password_file=users,
        embedded=embedded,
        bind_address=args.listen,
        hostnames=args.hostname,
    )
    log.info("MQTT broker (%s) at %s", broker.kind, broker.url)
    if broker.ca_cert is not None:
        log.info("boxes pin this CA: %s", broker.ca_cert)
    if not broker.supports_shared_subscriptions:
        log.info("no shared subscriptions: run one HQ ingest worker")
    try:
        _serve_until_signalled(broker)
    finally:
        broker.stop()
        log.info("broker stopped")
    return 0


def _serve_until_signalled(broker: RunningBroker) -> None:
    from cloud_sync.hq.broker.embedded import EmbeddedBroker  # noqa: PLC0415 (see above)

    done = threading.Event()

    def finish(_sig: int, _frame: FrameType | None) -> None:
        done.set()

    def reload(_sig: int, _frame: FrameType | None) -> None:
        if isinstance(broker, MosquittoBroker):
            broker.reload()
        elif isinstance(broker, EmbeddedBroker):
            broker.reload_password_file()
        log.info("password file re-read")

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, finish)
    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGHUP, reload)
    try:
        while not done.wait(_WATCH_S):
            if isinstance(broker, MosquittoBroker | EmbeddedBroker) and not broker.running:
                raise BrokerStartError("the broker stopped by itself; see its log")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _add_user(path: Path, username: str) -> int:
    password = sys.stdin.readline().rstrip("\n")
    hashes = read_password_file(path) if path.exists() else {}
    hashes[check_username(username)] = hash_password(password)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_hashes(path, hashes)
    print(f"{username} added to {path}; reload the broker (SIGHUP) to let it in", file=sys.stderr)
    return 0


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # amqtt logs every connection and plugin step at INFO; its warnings are what matter.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
