"""The ledger's tests run on both backends, with the event store's fixtures."""

from __future__ import annotations

from tests.hq.ingest.conftest import ingest, location, pg_database, store  # noqa: F401 (by name)
