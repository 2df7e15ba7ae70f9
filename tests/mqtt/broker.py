"""A real Mosquitto owned by the test: started from the shipped config, stopped by its PID.

Theory of operation
-------------------
``derive_config`` reads ``config/mosquitto.conf`` line by line and rewrites only the values
that must differ on a test machine: the listener's port (bound to 127.0.0.1), the TLS files,
the password and ACL files, the persistence directory, the log destination and the user to
run as. Every other line (persistence, ``allow_anonymous false``, TLS version, packet limits,
...) is the production one, so the tests exercise the file that ships. A key the derivation
expects but cannot find is an error: renaming a setting in the shipped file breaks the tests
instead of silently testing something else. The ACL is the shipped ``config/mosquitto.acl``
itself, not a copy.

``MosquittoBroker`` runs ``mosquitto -c <derived config>`` as a child process. ``start()``
returns once the log says the broker is running, every listener open (a few ms); ``stop()``
sends SIGTERM, on which Mosquitto writes its persistence file (sessions, queued QoS 1 messages,
retained messages) and exits; ``kill()`` sends SIGKILL, a crash that keeps only what the last
autosave wrote. ``start()`` after either reuses the same port (Mosquitto sets SO_REUSEADDR),
config and persistence directory, which is how broker outages are simulated. Logs (all levels,
including the "Denied PUBLISH" debug lines) go to ``log_path``; the conftest prints them under
a failed test's report.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.mqtt.tls import TlsFiles

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONF = ROOT / "config" / "mosquitto.conf"
SHIPPED_ACL = ROOT / "config" / "mosquitto.acl"

# Debian puts the broker in /usr/sbin, which is not on a non-root user's PATH.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
_READY_TIMEOUT_S = 5.0
_RUNNING = " running\n"  # "mosquitto version 2.0.11 running"
_STOP_TIMEOUT_S = 5.0


class BrokerError(RuntimeError):
    """The broker would not start, or a config line the tests rely on is missing."""


def executable(name: str) -> str:
    found = shutil.which(name, path=_SEARCH_PATH)
    if found is None:
        # Not a skip: a missing broker is an install step (.ci/run installs it).
        raise BrokerError(f"{name} not found: apt-get install mosquitto (see .ci/run)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Write ``users`` (name -> password) as a Mosquitto password file, hashed by the real
    ``mosquitto_passwd`` (``-U`` hashes a plaintext ``user:password`` file in place: one
    process for all users instead of one ``-b`` call each)."""
    for name in users:
        if ":" in name:
            raise ValueError(f"a Mosquitto username cannot contain ':': {name!r}")
    path.write_text("".join(f"{name}:{password}\n" for name, password in users.items()))
    path.chmod(0o600)
    subprocess.run(
        [executable("mosquitto_passwd"), "-U", str(path)],
        check=True,
        capture_output=True,
        timeout=10,
    )


@dataclass(frozen=True, kw_only=True)
class BrokerFiles:
    """Everything a derived config points at; shared by every broker of a test session."""

    tls: TlsFiles
    password_file: Path
    acl_file: Path = SHIPPED_ACL


def derive_config(
    shipped: str,
    *,
    port: int,
    files: BrokerFiles,
    persistence_dir: Path,
    log_path: Path,
    plain_port: int | None = None,
) -> str:
    """The shipped config with test-local paths, ports and user (see the module docstring)."""
    values = {
        "listener": f"{port} 127.0.0.1",
        "certfile": str(files.tls.server_cert),
        "keyfile": str(files.tls.server_key),
        "cafile": str(files.tls.ca_cert),
        "password_file": str(files.password_file),
        "acl_file": str(files.acl_file),
        # Mosquitto requires the trailing slash: it appends the file name to this string.
        "persistence_location": f"{persistence_dir}/",
        "log_dest": f"file {log_path}",
        # Mosquitto started as root drops to `user`; stay whoever runs the tests, so it can
        # read the test's files in its private tmp directory.
        "user": pwd.getpwuid(os.getuid()).pw_name,
    }
    seen: set[str] = set()
    lines: list[str] = []
    for line in shipped.splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() and not line.startswith("#") else ""
        if key in values:
            if key in seen:
                raise BrokerError(f"{key} appears twice in the shipped config")
            seen.add(key)
            lines.append(f"{key} {values[key]}")
        else:
            lines.append(line)
    missing = sorted(values.keys() - seen)
    if missing:
        raise BrokerError(f"the shipped mosquitto.conf has no {', '.join(missing)} line")
    # Debug lines too: they name each denied PUBLISH, which is what a failing ACL test needs.
    lines.append("log_type all")
    if plain_port is not None:
        # Appended last, so none of the TLS options above apply to it; the password file and
        # ACL do (per_listener_settings false). For quick tests only: ACL tests use TLS.
        lines.append(f"listener {plain_port} 127.0.0.1")
    return "\n".join(lines) + "\n"


class MosquittoBroker:
    """One Mosquitto process on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self, *, directory: Path, files: BrokerFiles, with_plain_listener: bool = False
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.plain_port = free_port() if with_plain_listener else None
        self.persistence_dir = directory / "persistence"
        self.persistence_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "mosquitto.log"
        self.config_path = directory / "mosquitto.conf"
        self.config_path.write_text(
            derive_config(
                SHIPPED_CONF.read_text(),
                port=self.port,
                files=files,
                persistence_dir=self.persistence_dir,
                log_path=self.log_path,
                plain_port=self.plain_port,
            )
        )
        self._process: subprocess.Popen[bytes] | None = None

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
        # Errors before Mosquitto opens its log file (a bad config line) go to stderr: keep
        # them in the same file.
        with self.log_path.open("ab") as early_log:
            self._process = subprocess.Popen(
                [executable("mosquitto"), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=early_log,
                stderr=early_log,
            )
        self._wait_until_ready(starts_before)

    def _wait_until_ready(self, starts_before: int) -> None:
        # Mosquitto logs "running" once every listener is bound and listening (connections
        # queue in the backlog from then on). Watching the log rather than probing the port
        # keeps failed-handshake noise out of it.
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise BrokerError(f"mosquitto exited at start-up:\n{self.log_text()}")
            if self.log_text().count(_RUNNING) > starts_before:
                return
            time.sleep(0.002)
        self.kill()
        raise BrokerError(
            f"mosquitto did not listen within {_READY_TIMEOUT_S}s:\n{self.log_text()}"
        )

    def reload(self) -> None:
        """SIGHUP, as ``systemctl reload mosquitto`` sends: Mosquitto re-reads its password
        file and ACL, and keeps every connection."""
        if self._process is None or self._process.poll() is not None:
            raise BrokerError("the broker is not running")
        os.kill(self._process.pid, signal.SIGHUP)

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its persistence file, then exits."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash; only the last autosave survives."""
        self._end(signal.SIGKILL)

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
