"""Typed failures of HQ's event store and its ingest worker.

A payload HQ refuses is never an exception: it is quarantined with a reason (``quarantine.py``)
and ingest carries on. These are the failures of HQ's own side, each one telling the worker
what to do with the message it holds:

    HqError (cloud_sync.hq.errors)
    └── IngestError
        ├── StoreUnavailableError   the database cannot be reached or written right now
        │                           (connection lost, server down, disk full, locked past the
        │                           busy timeout): nothing was committed, so the message is
        │                           left unacknowledged and comes again
        ├── EventStoreFileError     the location is not an HQ event store, or one written by a
        │                           newer version: an operator's mistake, the worker stops
        └── BrokerUrlError          ``--broker`` is not ``mqtt://host[:port]`` or ``mqtts://...``
"""

from __future__ import annotations

from cloud_sync.hq.errors import HqError


class IngestError(HqError):
    """Base of the event store's and the ingest worker's failures."""


class StoreUnavailableError(IngestError):
    """Transient: retry later; nothing of the failed transaction was kept."""


class EventStoreFileError(IngestError):
    """The event store at the given location cannot be used by this version."""


class BrokerUrlError(IngestError):
    """A broker address that is not ``mqtt://`` or ``mqtts://`` host and port."""
