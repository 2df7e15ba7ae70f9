"""A real webhook receiver for the push tests: ``http.server`` on a free port in a thread,
checking every request's signature with the scheme's own ``verify`` and answering from a
plan (status, body, delay, hold), then 200."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cloud_sync.hq.member_push import signature


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    status: int = 200
    body: bytes = b""
    delay_s: float = 0.0  # before answering: beyond the worker's timeout, a timeout
    hold: bool = False  # answer only once the test releases ``Receiver.release``
    echo: bool = False  # append the request's body to ``body`` (a debugging receiver)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    idempotency_key: str | None
    attempt: str | None
    body: bytes
    refused_because: str | None  # the signature check's reason; None: it verified

    @property
    def doc(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


class Receiver:
    def __init__(self, secret: bytes, clock: Callable[[], datetime]) -> None:
        self.secret = secret
        self.clock = clock
        self.plan: deque[Reply] = deque()
        self.received: list[Received] = []
        self.release = threading.Event()
        self.url = ""
        self._lock = threading.Lock()

    def idempotency_keys(self) -> list[str | None]:
        with self._lock:
            return [r.idempotency_key for r in self.received]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.idempotency_keys()) < count:
            assert time.monotonic() < deadline, (
                f"{len(self.idempotency_keys())} requests, wanted {count}"
            )
            time.sleep(0.005)

    def _take(self, handler: BaseHTTPRequestHandler) -> tuple[Reply, bytes]:
        length = int(handler.headers.get("Content-Length", "0"))
        body = handler.rfile.read(length)
        problem = signature.verify(
            self.secret, handler.headers.get(signature.HEADER), body, now=self.clock()
        )
        with self._lock:
            self.received.append(
                Received(
                    idempotency_key=handler.headers.get("Idempotency-Key"),
                    attempt=handler.headers.get("Storeside-Attempt"),
                    body=body,
                    refused_because=problem,
                )
            )
            reply = self.plan.popleft() if self.plan else Reply()
        return reply, reply.body + (body if reply.echo else b"")


@contextmanager
def running(secret: bytes, clock: Callable[[], datetime]) -> Iterator[Receiver]:
    receiver = Receiver(secret, clock)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            reply, answer = receiver._take(self)
            if reply.hold:
                receiver.release.wait(30)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the worker gave up (timed out, or was killed) before the answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test reads ``received``

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/offers"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
