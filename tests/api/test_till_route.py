"""The lean path of ``TillBodyRoute`` answers exactly as FastAPI's own path does.

A well-formed validate takes the lean path; the same request with a content type the lean path
leaves alone (``application/json; charset=utf-8``) goes down FastAPI's path. Both must give
the same status, headers that matter and body, for an acceptance, a refusal and a request
each path refuses.
"""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import Server
from tests.cache.factories import A, B

LEAN = {"Content-Type": "application/json"}
FASTAPI_PATH = {"Content-Type": "application/json; charset=utf-8"}


def _body(*codes: str, member: str | None = None) -> dict[str, Any]:
    lines = [{"sku": "SKU1", "category": "food", "quantity": 2, "unit_price": 1500}]
    return {
        "codes": list(codes),
        "cashier_id": "c-1",
        "member_id": member,
        "basket": {"lines": lines},
    }


def _both(server: Server, body: object, till: str | None = "till-1") -> Any:
    with server.client(till) as client:
        answers = [
            client.post("/v1/validate", content=json.dumps(body), headers=headers)
            for headers in (LEAN, FASTAPI_PATH)
        ]
    lean, slow = answers
    assert lean.status_code == slow.status_code
    assert lean.headers["content-type"] == slow.headers["content-type"]
    assert lean.content == slow.content
    return lean.json()


def test_an_acceptance_is_the_same_on_both_paths(server: Server) -> None:
    assert _both(server, _body(A, member="M1"))["decisions"][0]["ok"] is True


def test_refusals_are_the_same_on_both_paths(server: Server) -> None:
    typo = A[:-2] + A[-1] + A[-2]
    _both(server, _body(typo, B, member="M1"))


def test_requests_refused_whole_are_the_same_on_both_paths(server: Server) -> None:
    _both(server, {**_body(A), "discount_override": 1})  # 422 from FastAPI's path, both times
    _both(server, _body(A), till=None)  # 401
    _both(server, [1, 2])  # a JSON array, not a body
