"""systemd's end of the notify protocol for tests: a real AF_UNIX datagram socket that keeps
every message it receives, with the monotonic time it arrived."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    at: float  # time.monotonic() on arrival
    lines: tuple[str, ...]


class NotifyListener:
    """Bound to ``address`` (a path, or bytes starting with NUL for the abstract namespace)."""

    def __init__(self, address: str | bytes) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(address)
        self._sock.settimeout(0.05)
        self._messages: list[Message] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._done.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            with self._lock:
                self._messages.append(Message(time.monotonic(), tuple(data.decode().split("\n"))))

    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def with_line(self, line: str) -> list[Message]:
        return [m for m in self.messages() if line in m.lines]

    def wait_for(self, line: str, *, timeout_s: float = 30.0) -> Message:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.with_line(line)
            if found:
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no {line} within {timeout_s} s; got {self.messages()}")

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self._sock.close()
