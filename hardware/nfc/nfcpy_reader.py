"""The NFC reader driver on nfcpy: a blocking reader in a thread of its own, taps to the loop.

Theory of operation
-------------------
nfcpy blocks (``ContactlessFrontend.connect`` polls until a tag comes), so the driver owns one
thread per reader (STYLE.md: one asyncio loop, blocking devices get a thread each). ``run`` on
the loop starts it and waits; the thread hands each ``Tap`` back with
``loop.call_soon_threadsafe``, so ``on_tap`` always runs on the loop and agent state needs no
lock. ``stop()`` (or cancelling ``run``) sets an event that ``connect(terminate=...)`` checks
between polls; the thread ends within one poll.

The thread's loop: open ``ContactlessFrontend(path)`` ("usb", "usb:072f:2200", "tty:USB0:pn532",
"udp:127.0.0.1:PORT"); if that fails (``OSError`` ENODEV: no reader; ``FileNotFoundError``: no
libusb; EACCES/EBUSY) the state is ``absent`` and it retries with exponential backoff, never
raising. Open, it calls ``connect(rdwr=...)`` again and again. nfcpy's pitfalls shape the
options: only the configured ``targets`` are polled (each empty poll of a technology costs a
timeout), ``iterations=1`` so ``terminate`` is checked after every poll, ``on-connect`` reads
the tag and returns True so nfcpy holds it until it leaves (one tap per presentation, not one
per poll), ``on-release`` returns True (a falsy value makes ``connect`` poll forever), and
``beep-on-connect`` is off. ``connect`` swallows ``IOError`` and returns False: that, or an
``OSError`` escaping it, means the device failed (unplugged): the frontend is closed and
reopened (``reconnecting``). Any other exception is a bug and ends ``run`` with it.

A read is the UID (``tag.identifier``) and the NDEF message's octets, parsed by the pure
``ndef_message.decode_message``. nfcpy reports a read that failed as ``tag.ndef`` None, which is
also a blank card: a presence check tells them apart; a tag gone mid-read is logged and gives no
tap. UIDs are never logged (they identify a card); the log says which reader and what failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import nfc
import nfc.clf
import nfc.tag

from edge_agent.presence.ndef_message import NdefError, decode_message
from edge_agent.presence.nfc_port import (
    ReaderAccessError,
    ReaderError,
    ReaderHealth,
    ReaderNotFoundError,
    ReaderState,
    ReaderUnpluggedError,
    Tap,
    TapCallback,
)

log = logging.getLogger(__name__)
OpenFrontend = Callable[[str], Any]  # returns an opened nfc.ContactlessFrontend
_READ_ERRORS = (nfc.tag.TagCommandError, nfc.clf.CommunicationError)


def map_open_error(exc: OSError, path: str) -> ReaderError:
    """The ``ReaderError`` an ``OSError`` opening ``path`` means (the boundary's map)."""
    if exc.errno in (errno.EACCES, errno.EBUSY, errno.EPERM):
        return ReaderAccessError(f"reader {path}: {exc}")
    return ReaderNotFoundError(f"reader {path}: {exc}")


class NfcpyReader:
    """A ``TagReader`` on an nfcpy frontend (see the module docstring)."""

    def __init__(
        self,
        *,
        reader_id: str,
        path: str,
        targets: Sequence[str] = ("106A",),
        poll_interval: float = 0.05,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
        open_frontend: OpenFrontend = nfc.ContactlessFrontend,
    ) -> None:
        self._reader_id = reader_id
        self._path = path
        self._targets = list(targets)
        self._interval = poll_interval
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._open = open_frontend
        self._stopping = threading.Event()
        self._health = ReaderHealth(state=ReaderState.STARTING)
        self._health_lock = threading.Lock()  # written by the thread, read by the loop

    @property
    def reader_id(self) -> str:
        return self._reader_id

    def health(self) -> ReaderHealth:
        with self._health_lock:
            return self._health

    def stop(self) -> None:
        self._stopping.set()

    def _update(self, **changes: Any) -> None:
        with self._health_lock:
            self._health = replace(self._health, **changes)

    def _count(self, name: str, **changes: Any) -> None:
        with self._health_lock:
            self._health = replace(
                self._health, **{name: getattr(self._health, name) + 1}, **changes
            )

    async def run(self, on_tap: TapCallback) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finish(error: BaseException | None) -> None:
            if done.done():
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def emit(tap: Tap) -> None:
            loop.call_soon_threadsafe(on_tap, tap)

        def worker() -> None:
            error: BaseException | None = None
            try:
                self._serve(emit)
            except BaseException as exc:  # a bug: re-raised by run() on the loop
                error = exc
            finally:
                self._update(state=ReaderState.STOPPED)
                # RuntimeError: the loop closed under us, so nobody waits any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(finish, error)

        thread = threading.Thread(target=worker, name=f"nfc-{self._reader_id}", daemon=True)
        thread.start()
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            self._stopping.set()
            await asyncio.shield(done)
            raise
        finally:
            self._stopping.clear()

    # --- the reader's thread -------------------------------------------------------------

    def _serve(self, emit: TapCallback) -> None:
        delay = self._retry_initial
        while not self._stopping.is_set():
            try:
                clf = self._open(self._path)
            except OSError as exc:  # ENODEV, ENOENT (no libusb), EACCES, EBUSY, a bad host
                error = map_open_error(exc, self._path)
                log.warning("nfc %s: %s; retry in %.1f s", self._reader_id, error, delay)
                self._count("open_failures", state=ReaderState.ABSENT, last_error=_text(error))
                self._stopping.wait(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            delay = self._retry_initial
            log.info("nfc %s: reader open on %s", self._reader_id, self._path)
            self._update(state=ReaderState.CONNECTED)
            try:
                failure = self._poll(clf, emit)
            finally:
                clf.close()
            if failure is not None:
                log.warning("nfc %s: %s; reopening", self._reader_id, failure)
                self._count(
                    "disconnects", state=ReaderState.RECONNECTING, last_error=_text(failure)
                )
                self._stopping.wait(self._retry_initial)

    def _poll(self, clf: Any, emit: TapCallback) -> ReaderError | None:
        """Poll until stopped (None) or the device fails (the failure)."""
        options = {
            "targets": self._targets,
            "on-connect": lambda tag: self._on_connect(tag, emit),
            "on-release": self._on_release,
            "iterations": 1,
            "interval": self._interval,
            "beep-on-connect": False,
        }
        while not self._stopping.is_set():
            try:
                result = clf.connect(rdwr=options, terminate=self._stopping.is_set)
            except OSError as exc:  # not every path goes through connect's own catch
                return ReaderUnpluggedError(f"reader {self._path}: {exc}")
            if result is False:  # connect logged and swallowed an IOError
                return ReaderUnpluggedError(f"reader {self._path}: I/O error while polling")
        return None

    def _on_release(self, tag: Any) -> bool:
        self._update(tag_in_field=False)
        return True  # falsy would make connect() poll forever

    def _on_connect(self, tag: Any, emit: TapCallback) -> bool:
        self._update(tag_in_field=True)  # activated: nfcpy now holds it until it leaves
        try:
            uid = bytes(tag.identifier) or None
            ndef = tag.ndef
            octets = None if ndef is None else bytes(ndef.octets)
            present = octets is not None or bool(tag.is_present)
        except _READ_ERRORS as exc:
            log.info("nfc %s: read failed (%s): no tap", self._reader_id, type(exc).__name__)
            present = False
        if not present:
            log.info("nfc %s: tag removed mid-read: no tap", self._reader_id)
            self._count("reads_lost")
            return True
        records: tuple[Any, ...] = ()
        fault = None
        if octets:
            parsed = decode_message(octets)
            if isinstance(parsed, NdefError):
                log.info("nfc %s: NDEF refused: %s", self._reader_id, parsed.fault.value)
                fault = parsed.fault
            else:
                records = parsed
        tap = Tap(
            reader_id=self._reader_id,
            uid=uid,
            records=records,
            tag_type=str(tag.type),  # the NFC Forum type, "Type2Tag" even for an NTAG215
            at=time.monotonic(),
            ndef_fault=fault,
        )
        self._count("taps")
        emit(tap)
        return True  # nfcpy holds the tag until it leaves: one tap per presentation


def _text(error: ReaderError) -> str:
    return f"{error.reason}: {error}"
