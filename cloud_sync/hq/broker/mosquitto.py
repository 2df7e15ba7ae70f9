"""Mosquitto as a child process of HQ (a pilot's broker) or of a test, from the shipped config.

Theory of operation
-------------------
``MosquittoBroker`` writes ``derive_config``'s file (``mosquitto_config.py``) into its
directory and runs ``mosquitto -c <it>``. ``start()`` returns once the log says the broker is
running, every listener open (a few ms; watching the log rather than probing the port keeps
failed-handshake noise out of it). ``stop()`` sends SIGTERM, on which Mosquitto writes its
persistence file (sessions, queued QoS 1 messages, retained messages) and exits; ``kill()``
sends SIGKILL, a crash that keeps only what the last autosave wrote. ``start()`` after either
reuses the same port (Mosquitto sets SO_REUSEADDR), config and persistence directory, which
is how broker outages are simulated.

``add_user`` rewrites the password file (``password_file.py`` writes the hashes Mosquitto
reads, atomically) and sends SIGHUP, as ``systemctl reload mosquitto`` does; it returns once
the log shows "Reloading config.". Mosquitto is single-threaded and re-reads the password file
and ACL in the same step that logs that line, before it reads any socket again, so a CONNECT
sent after ``add_user`` returns is checked against the new file. No connection is dropped.

Logs go to ``log_path`` (with ``debug_log``, every level, including "Denied PUBLISH"). Errors
before Mosquitto opens its log (a bad config line) go to the same file from its stderr.
Debian installs the broker in /usr/sbin, which is not on a non-root user's PATH, so that is
searched too. Shared subscriptions work (``$share/group/filter``, from MQTT 3.1.1 clients too).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Final

from cloud_sync.hq.broker.errors import BrokerError, BrokerNotFoundError, BrokerStartError
from cloud_sync.hq.broker.mosquitto_config import BrokerFiles, derive_config
from cloud_sync.hq.broker.password_file import (
    check_username,
    hash_password,
    read_password_file,
    write_hashes,
)
from cloud_sync.hq.broker.running_broker import BrokerKind
from cloud_sync.hq.broker.shipped_files import SHIPPED_CONF

log = logging.getLogger(__name__)

SEARCH_PATH: Final = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
_READY_TIMEOUT_S: Final = 5.0
_RUNNING: Final = " running\n"  # "mosquitto version 2.0.11 running"
_RELOADED: Final = "Reloading config."
_STOP_TIMEOUT_S: Final = 5.0
_POLL_S: Final = 0.002
_EVERY_ADDRESS: Final = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (compared, not bound)


def find_executable(name: str) -> str | None:
    """``name``'s path on the PATH or in the sbin directories, or None."""
    return shutil.which(name, path=SEARCH_PATH)


def executable(name: str) -> str:
    found = find_executable(name)
    if found is None:
        raise BrokerNotFoundError(f"{name} not found: apt-get install mosquitto")
    return found


def free_port() -> int:
    """A port free on 127.0.0.1 now (another process may take it before the broker binds:
    Mosquitto cannot listen on port 0 and say which it got)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MosquittoBroker:
    """One Mosquitto process (see the module docstring). ``port=0`` picks a free one."""

    kind: Final = BrokerKind.MOSQUITTO
    supports_shared_subscriptions: Final = True

    def __init__(
        self,
        *,
        directory: Path,
        files: BrokerFiles,
        port: int = 0,
        plain_port: int | None = None,
        bind_address: str = "127.0.0.1",
        debug_log: bool = False,
        shipped_conf: Path = SHIPPED_CONF,
    ) -> None:
        self.directory = directory
        self.files = files
        self.port = port or free_port()
        self.plain_port = plain_port
        self.bind_address = bind_address
        self.persistence_dir = directory / "persistence"
        self.persistence_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "mosquitto.log"
        self.config_path = directory / "mosquitto.conf"
        self.config_path.write_text(
            derive_config(
                shipped_conf.read_text(),
                port=self.port,
                files=files,
                persistence_dir=self.persistence_dir,
                log_path=self.log_path,
                plain_port=plain_port,
                bind_address=bind_address,
                debug_log=debug_log,
            )
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where the TLS listener answers: its bind address, or 127.0.0.1 when it listens on
        every address (127.0.0.1 is in the server certificate's names, tls_files.py; a
        specific address must be given to ``make_tls_files`` as well)."""
        host = "127.0.0.1" if self.bind_address in _EVERY_ADDRESS else self.bind_address
        return f"mqtts://{host}:{self.port}"

    @property
    def ca_cert(self) -> Path:
        return self.files.tls.ca_cert

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        if self.running:
            raise BrokerError("the broker is already running")
        starts_before = self.log_text().count(_RUNNING)
        with self.log_path.open("ab") as early_log:
            self._process = subprocess.Popen(  # noqa: S603 (our binary, our config file)
                [executable("mosquitto"), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=early_log,
                stderr=early_log,
            )
        self._wait_for_log(_RUNNING, starts_before, "listen")
        log.info("Mosquitto (pid %d) listening on %s", self._process.pid, self.url)

    def _wait_for_log(self, line: str, count_before: int, what: str) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise BrokerStartError(f"mosquitto exited:\n{self.log_text()[-4000:]}")
            if self.log_text().count(line) > count_before:
                return
            time.sleep(_POLL_S)
        self.kill()
        raise BrokerStartError(
            f"mosquitto did not {what} within {_READY_TIMEOUT_S}s:\n{self.log_text()[-4000:]}"
        )

    def reload(self) -> None:
        """SIGHUP, as ``systemctl reload mosquitto`` sends: Mosquitto re-reads its password
        file and ACL, and keeps every connection. Returns at once (see ``add_user``)."""
        if self._process is None or self._process.poll() is not None:
            raise BrokerError("the broker is not running")
        os.kill(self._process.pid, signal.SIGHUP)

    def add_user(self, username: str, password: str) -> None:
        """Add or replace ``username`` in the password file; a running broker reloads it."""
        path = self.files.password_file
        hashes = read_password_file(path) if path.exists() else {}
        hashes[check_username(username)] = hash_password(password)
        write_hashes(path, hashes)
        if self.running:
            reloads_before = self.log_text().count(_RELOADED)
            self.reload()
            self._wait_for_log(_RELOADED, reloads_before, "reload")

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its persistence file, then exits."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash; only the last autosave survives."""
        self._end(signal.SIGKILL)

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _end(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, sig)
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=_STOP_TIMEOUT_S)
            raise BrokerError(f"mosquitto ignored {sig.name}; killed it") from None
