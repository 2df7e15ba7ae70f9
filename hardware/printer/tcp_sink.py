"""A raw-TCP receipt printer on loopback (what a JetDirect port 9100 looks like to the driver),
for tests, benchmarks and the demo: the real python-escpos driver talks to it over a socket.

It records every byte python-escpos sends, answers DLE EOT n (n = 1..4) status queries from its
current state wherever they appear in the stream (as a real printer does, even inside image
data), and can misbehave: refuse connections (nothing listening), stop reading, drop the
connection after N bytes, or report paper out from the k-th status query on.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from hardware.printer.sim_printer import status_bytes


@dataclass
class SinkState:
    online: bool = True
    cover_open: bool = False
    paper_out: bool = False
    paper_near_end: bool = False
    stop_reading: bool = False
    drop_after: int | None = None  # bytes of a connection's stream, status queries included
    paper_out_from_set: int | None = None  # 0-based index of the query set that says paper out
    connections: list[bytes] = field(default_factory=list)  # closed connections' streams
    dropped: list[bytes] = field(default_factory=list)


class PrinterSink:
    def __init__(self) -> None:
        self.state = SinkState()
        self.lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._open_conns: list[socket.socket] = []
        self._closing = threading.Event()
        self.port = 0
        self.up()

    # -- availability -------------------------------------------------------------------------

    def up(self) -> None:
        """Listen (again) on the same port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # A small receive buffer so a printer that stops reading fills up quickly.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(8)
        self.port = sock.getsockname()[1]
        self._listener = sock
        t = threading.Thread(target=self._accept, args=(sock,), daemon=True)
        t.start()
        self._threads.append(t)

    def down(self) -> None:
        """Stop listening: connecting is refused, as with a printer switched off."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._listener.close()
            self._listener = None

    def close(self) -> None:
        self._closing.set()
        self.down()
        for conn in list(self._open_conns):
            with contextlib.suppress(OSError):
                conn.close()
        for t in self._threads:
            t.join(2)

    # -- recording ----------------------------------------------------------------------------

    def settle(self, timeout: float = 3.0) -> None:
        """Wait until every accepted connection has been closed and recorded."""
        deadline = time.monotonic() + timeout
        while self._open_conns and time.monotonic() < deadline:
            time.sleep(0.002)

    def wait_connections(self, count: int, timeout: float = 3.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.state.connections) >= count:
                    return list(self.state.connections)
            time.sleep(0.002)
        with self.lock:
            return list(self.state.connections)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            # Answer each status byte at once, as a printer's real-time reply does.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._open_conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _status(self, query_set: int, n: int) -> bytes:
        st = self.state
        paper_out = st.paper_out or (
            st.paper_out_from_set is not None and query_set >= st.paper_out_from_set
        )
        answers = status_bytes(
            online=st.online,
            cover_open=st.cover_open,
            paper_out=paper_out,
            paper_near_end=st.paper_near_end,
        )
        return answers[n - 1 : n]

    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        scanned = 0
        query_set = -1
        try:
            if self.state.stop_reading:
                # Neither read nor answer; hold the connection until the sink closes.
                self._closing.wait(10)
                return
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
                drop = self.state.drop_after
                if drop is not None and len(buf) >= drop:
                    del buf[drop:]
                    # SO_LINGER 0: close with RST, as a printer that resets mid-job.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    with self.lock:
                        self.state.dropped.append(bytes(buf))
                    return
                # Answer every complete DLE EOT n not yet answered (n = 1..4).
                while (at := buf.find(b"\x10\x04", scanned)) != -1 and at + 2 < len(buf):
                    n = buf[at + 2]
                    scanned = at + 1
                    if 1 <= n <= 4:
                        if n == 1:
                            query_set += 1
                        answer = self._status(query_set, n)
                        if n == 4 and answer[0] & 0x60 == 0x60:
                            self.state.paper_out = True  # once out, it stays out
                        conn.sendall(answer)
                scanned = max(scanned, len(buf) - 2)
            with self.lock:
                self.state.connections.append(bytes(buf))
        except OSError:
            with self.lock:
                self.state.dropped.append(bytes(buf))
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            if conn in self._open_conns:
                self._open_conns.remove(conn)
