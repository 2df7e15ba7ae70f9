"""The fan-out's tests run on both event store backends, as ingest's do."""

from tests.hq.ingest.conftest import (  # noqa: F401 (pytest finds fixtures by name)
    ingest,
    location,
    pg_database,
    store,
)
