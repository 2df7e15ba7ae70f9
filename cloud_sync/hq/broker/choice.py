"""Which broker HQ uses: the one configured, else Mosquitto if installed, else amqtt.

Theory of operation
-------------------
``start_broker`` decides in this order, and says which it chose in ``kind``:

1. ``url`` given (``mqtt://`` or ``mqtts://``): a broker run elsewhere (production's Mosquitto,
   an EMQX or HiveMQ cluster). Nothing is started; ``ExternalBroker`` only carries the URL.
2. ``embedded`` not forced and ``mosquitto`` on the PATH (or in /usr/sbin, where Debian puts
   it): Mosquitto from the shipped config, as a child process, TLS on ``port`` (``mqtts://``),
   with the password file and the shipped ACL. Its TLS files are made once in
   ``directory/tls`` (a self-signed CA whose ``ca.crt`` the boxes pin) and reused after.
3. Otherwise amqtt, embedded in this process: plain TCP on 127.0.0.1 (``mqtt://``), so
   ``make demo`` and a one-machine pilot need nothing installed.

Users: ``users`` (name -> password, e.g. the demo's generated ones) and/or ``password_file``
(Mosquitto's format, e.g. made by ``mosquitto_passwd``); for Mosquitto the users are merged
into the password file (default ``directory/storeside.passwd``), which it reads itself.
``add_user`` later works on either broker. Passwords are never logged.

HQ's ingest then asks ``supports_shared_subscriptions``: with it, every worker subscribes to
``$share/ingest/storeside/v1/+/+/events``; without it (amqtt), one worker takes the plain
filter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from cloud_sync.hq.broker.embedded import EmbeddedBroker
from cloud_sync.hq.broker.errors import BrokerConfigError
from cloud_sync.hq.broker.mosquitto import MosquittoBroker, find_executable
from cloud_sync.hq.broker.mosquitto_config import BrokerFiles
from cloud_sync.hq.broker.password_file import (
    check_username,
    hash_password,
    read_password_file,
    write_hashes,
)
from cloud_sync.hq.broker.running_broker import ExternalBroker, RunningBroker
from cloud_sync.hq.broker.tls_files import make_tls_files, tls_files_in

PILOT_CERT_DAYS: Final = 825  # the longest server-cert life Apple's TLS accepts; rm tls/ to renew
URL_SCHEMES: Final = ("mqtt://", "mqtts://")
# Addresses that need no place in the certificate: the wildcard is no name anyone dials, and
# 127.0.0.1 is always in it.
_NOT_NAMES: Final = ("0.0.0.0", "127.0.0.1")  # noqa: S104 (not a bind: a list of names)


def start_broker(
    *,
    directory: Path,
    url: str | None = None,
    port: int = 0,
    users: Mapping[str, str] | None = None,
    password_file: Path | None = None,
    embedded: bool = False,
    bind_address: str = "127.0.0.1",
    hostnames: Sequence[str] = (),
    shared_subscriptions: bool = True,
) -> RunningBroker:
    """A running (or configured) broker; see the module docstring for the choice.

    ``directory`` holds what a started broker keeps (Mosquitto's config, persistence, log and
    TLS files); ``port=0`` picks a free one. ``bind_address`` and ``hostnames`` (names the
    boxes dial, put in the server certificate) apply to Mosquitto; amqtt listens on loopback
    only. ``shared_subscriptions`` says what an external broker supports (it cannot be asked).
    """
    if url is not None:
        if not url.startswith(URL_SCHEMES):
            raise BrokerConfigError(f"broker URL {url!r} is not mqtt:// or mqtts://")
        return ExternalBroker(url=url, supports_shared_subscriptions=shared_subscriptions)
    if not embedded and find_executable("mosquitto") is not None:
        return _start_mosquitto(
            directory=directory,
            port=port,
            users=users or {},
            password_file=password_file,
            bind_address=bind_address,
            hostnames=hostnames,
        )
    broker = EmbeddedBroker(port=port, users=users, password_file=password_file)
    broker.start()
    return broker


def _start_mosquitto(
    *,
    directory: Path,
    port: int,
    users: Mapping[str, str],
    password_file: Path | None,
    bind_address: str,
    hostnames: Sequence[str],
) -> MosquittoBroker:
    directory.mkdir(parents=True, exist_ok=True)
    tls = tls_files_in(directory / "tls")
    if not all(p.exists() for p in (tls.ca_cert, tls.server_cert, tls.server_key)):
        addresses = [bind_address] if bind_address not in _NOT_NAMES else []
        tls = make_tls_files(
            directory / "tls",
            common_name="storeside-pilot-ca",
            hostnames=hostnames,
            addresses=addresses,
            days=PILOT_CERT_DAYS,
        )
    passwords = password_file or directory / "storeside.passwd"
    hashes = read_password_file(passwords) if passwords.exists() else {}
    for name, password in users.items():
        hashes[check_username(name)] = hash_password(password)
    if users or not passwords.exists():
        write_hashes(passwords, hashes)  # Mosquitto refuses to start without the file
    broker = MosquittoBroker(
        directory=directory,
        files=BrokerFiles(tls=tls, password_file=passwords),
        port=port,
        bind_address=bind_address,
    )
    broker.start()
    return broker
