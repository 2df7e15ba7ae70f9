"""The port the agent reads NFC taps through, the reader's health, and the reader failures.

A ``TagReader`` runs until stopped and hands each ``Tap`` to a callback on the agent's event
loop: a card or phone entered the field, its UID and NDEF records were read. A tag that stays on
the reader is one tap (the reader waits for it to leave before polling again). A tag pulled away
mid-read gives no tap (a log line), since half a read identifies nobody. The real driver
(``hardware/nfc/nfcpy_reader.py``, nfcpy in a thread of its own) and the simulated twin
(``hardware/nfc/sim_reader.py``) both implement it and pass one contract suite (``tests/nfc``).

A reader that cannot be opened or stops answering is not an error the agent sees: the driver
reports it in ``health()`` (absent, reconnecting) and retries with backoff until it is plugged
back in or stopped. The failures below are what the driver maps nfcpy's and the OS's exceptions
to at its boundary, for its log and its health counters::

    ReaderError                     the reader cannot read taps now; the driver retries
    ├── ReaderNotFoundError         nothing at the path (ENODEV, no libusb, no such tty)
    ├── ReaderUnpluggedError        it was open and went away (an I/O error on a read)
    └── ReaderAccessError           it is there but cannot be opened (EACCES, EBUSY)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from edge_agent.presence.ndef_message import NdefFault, NdefRecord

__all__ = [
    "NdefFault",
    "NdefRecord",
    "ReaderAccessError",
    "ReaderError",
    "ReaderHealth",
    "ReaderNotFoundError",
    "ReaderState",
    "ReaderUnpluggedError",
    "TagReader",
    "Tap",
    "TapCallback",
]


class ReaderError(Exception):
    reason = "reader_error"


class ReaderNotFoundError(ReaderError):
    reason = "not_found"


class ReaderUnpluggedError(ReaderError):
    reason = "unplugged"


class ReaderAccessError(ReaderError):
    reason = "access"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tap:
    """One card or phone read at one reader."""

    reader_id: str
    uid: bytes | None  # the NFCID; a phone shows a random one on every tap
    records: tuple[NdefRecord, ...] = ()
    tag_type: str = ""  # "Type2Tag", "Type4Tag", "Type3Tag" (nfcpy's names)
    at: float = 0.0  # time.monotonic() when the read completed
    ndef_fault: NdefFault | None = None  # the tag held NDEF bytes that are no message


class ReaderState(StrEnum):
    STARTING = "starting"
    CONNECTED = "connected"  # open and polling
    ABSENT = "absent"  # could not be opened; retrying
    RECONNECTING = "reconnecting"  # was open, failed; reopening
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderHealth:
    state: ReaderState
    taps: int = 0
    reads_lost: int = 0  # a tag pulled away mid-read
    open_failures: int = 0
    disconnects: int = 0  # an open reader that failed
    last_error: str | None = None  # the ReaderError reason and message, for the health view
    tag_in_field: bool = False  # a tag is activated and has not left yet (left lying there)


TapCallback = Callable[[Tap], None]


class TagReader(Protocol):
    """An NFC reader. ``run`` is a coroutine on the agent's loop; it calls ``on_tap`` on that
    loop, returns after ``stop()``, and stops the reader if cancelled."""

    @property
    def reader_id(self) -> str: ...

    def health(self) -> ReaderHealth: ...

    async def run(self, on_tap: TapCallback) -> None: ...

    def stop(self) -> None:
        """Ask ``run`` to return; safe from any thread, before or during ``run``."""
        ...
