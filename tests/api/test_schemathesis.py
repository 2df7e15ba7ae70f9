"""Schemathesis fuzzes the real POS API from its own OpenAPI document: whatever it sends (valid
and invalid data, with the real till tokens so the protected routes run), the server answers no
5xx, only statuses the document lists, and bodies that match the documented schemas.

Bounded and reproducible: a fixed number of examples per operation and generation mode,
derandomized (Hypothesis derives the examples from the test, not the clock, so every run sends
the same requests). Schemathesis's pytest plugin (``from_fixture``) does not run on this
pytest, so each operation's strategy is driven by Hypothesis here directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import Server, running_server


@pytest.fixture
def receipt_server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path, receipts=True, points=True) as s:
        yield s


OPERATIONS = [
    ("GET", "/v1/health"),
    ("POST", "/v1/validate"),
    ("POST", "/v1/reserve"),
    ("POST", "/v1/commit"),
    ("POST", "/v1/void"),
    ("POST", "/v1/reverse"),
    ("POST", "/v1/links"),
    ("GET", "/v1/members/{member_id}/linked-codes"),
    ("GET", "/v1/codes/{code}"),
    ("GET", "/v1/tills/{till_id}/member"),
    ("DELETE", "/v1/tills/{till_id}/member"),
    ("POST", "/v1/receipt-coupons"),
    ("GET", "/v1/receipt-coupons/{transaction_id}/print"),
    ("POST", "/v1/receipt-coupons/{transaction_id}/reprint"),
    ("POST", "/v1/points/quote"),
    ("POST", "/v1/points/checkout"),
    ("POST", "/v1/points/void"),
    ("POST", "/v1/points/returns"),
    ("GET", "/v1/members/{member_id}/points"),
]


def _has_inputs(method: str, path: str) -> bool:
    return method == "POST" or "{" in path


# Every operation with valid data; with invalid data, those that take any input at all (the
# health check takes none, so there is nothing to make invalid).
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in schemathesis.GenerationMode
    if mode is not schemathesis.GenerationMode.NEGATIVE or _has_inputs(method, path)
]


def test_every_operation_is_fuzzed(receipt_server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{receipt_server.base_url}/openapi.json")
    found = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=str)
def test_the_api_keeps_to_its_own_document(
    receipt_server: Server, method: str, path: str, mode: schemathesis.GenerationMode
) -> None:
    server = receipt_server
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    operation = schema[path][method]
    headers = {"Authorization": f"Bearer {server.tokens['till-1']}"}

    @settings(
        max_examples=15,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=server.base_url, headers=headers)

    fuzz()
