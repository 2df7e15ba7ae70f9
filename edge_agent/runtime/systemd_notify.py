"""systemd's notify protocol, spoken directly: no libsystemd, no C dependency on the box.

The protocol (sd_notify(3)) is one datagram per message on the AF_UNIX socket named by
``$NOTIFY_SOCKET``: newline-separated ``KEY=value`` lines such as ``READY=1``, ``WATCHDOG=1``,
``STOPPING=1`` and ``STATUS=free text``. A name starting with ``@`` is in Linux's abstract
namespace (the ``@`` stands for a leading NUL byte); any other name is a filesystem path.
Without ``$NOTIFY_SOCKET`` (not started by systemd, or not ``Type=notify``) every message is
silently dropped, so the agent runs the same anywhere.

``$WATCHDOG_USEC`` (set by ``WatchdogSec=``) is how long systemd waits for a ``WATCHDOG=1``
before it kills and restarts the service; ``$WATCHDOG_PID``, when set, names the one process
meant to send them (a child that inherited the environment must not).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class NotifyEnvironmentError(ValueError):
    """``$NOTIFY_SOCKET`` or ``$WATCHDOG_USEC`` holds what systemd never sets."""


def socket_address(name: str) -> str | bytes:
    """The ``sendto`` address of ``$NOTIFY_SOCKET``'s value ``name``."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    if not name.startswith("/"):
        raise NotifyEnvironmentError(f"NOTIFY_SOCKET={name!r}: neither a path nor '@abstract'")
    return name


def watchdog_interval(env: Mapping[str, str], *, pid: int | None = None) -> float | None:
    """Seconds between two ``WATCHDOG=1``: half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3)
    recommends (one late ping is not yet a kill). None when no watchdog is asked of this
    process."""
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    meant_for = env.get("WATCHDOG_PID")
    if meant_for and int(meant_for) != (os.getpid() if pid is None else pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        raise NotifyEnvironmentError(f"WATCHDOG_USEC={usec!r} is not a whole number") from None
    if value <= 0:
        raise NotifyEnvironmentError(f"WATCHDOG_USEC={usec!r} must be positive")
    return value / 2_000_000


class Notifier:
    """Sends messages to systemd; a no-op when there is no socket to send them to."""

    def __init__(self, name: str | None) -> None:
        self._address = None if not name else socket_address(name)
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        return cls((os.environ if env is None else env).get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *lines: str) -> bool:
        """Send ``lines`` as one message; False when disabled or the socket refused it."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            # Never fatal: a lost READY shows as a start timeout and lost pings as a watchdog
            # restart, both by systemd, which is where the box's fate is decided.
            if not self._warned:
                log.warning("systemd notify socket refused a message: %s", exc)
                self._warned = True
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
