"""Schemathesis fuzzes the ledger API from its own OpenAPI document, in process (ASGI), on a
SQLite ledger with a history: whatever it sends (valid and invalid values, with a real
operator token so the routes run), the app answers no 5xx, only statuses the document lists,
with bodies that match the documented schemas. Bounded and derandomized, as tests/api's.
Only "schema-valid data is accepted" is not asked: see the comment where it is excluded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from cloud_sync.hq.ingest.event_store import open_event_store
from cloud_sync.hq.ledger_api import operator_tokens
from cloud_sync.hq.ledger_api.app import create_app
from cloud_sync.hq.ledger_api.operator_tokens import Operators
from tests.hq.ledger.history import build, end_of_history

TOKEN = "fuzzing-operator-token-0123456789abcdef"
OPERATIONS = [
    ("GET", "/v1/members/{member}/ledger"),
    ("GET", "/v1/members/{member}/balance"),
    ("GET", "/v1/programmes/{programme}/liability"),
    ("GET", "/v1/programmes/{programme}/campaign-report"),
    ("GET", "/v1/programmes/{programme}/entries.csv"),
]
CASES = [(m, p, mode) for m, p in OPERATIONS for mode in schemathesis.GenerationMode]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    store = open_event_store(str(Path(tmp_path_factory.mktemp("ledger")) / "events.db"))
    now = end_of_history(build(store, n=60)) + timedelta(hours=1)
    yield create_app(
        store=store, operators=Operators([operator_tokens.digest(TOKEN)]), clock=lambda: now
    )
    store.close()


def test_every_operation_is_fuzzed(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation's schema could be read
        found.add((result.ok().method.upper(), result.ok().path))
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=str)
def test_the_api_keeps_to_its_own_document(
    app: FastAPI, method: str, path: str, mode: schemathesis.GenerationMode
) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @settings(
        max_examples=15,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Any) -> None:  # a schemathesis.Case
        case.call_and_validate(
            headers={"Authorization": f"Bearer {TOKEN}"},
            # A schema-valid query may still be refused with a typed 422: a cursor this API
            # never handed out, a range whose start is not before its end.
            excluded_checks=[positive_data_acceptance],
        )

    fuzz()
