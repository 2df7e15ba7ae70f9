"""The ledger HTTP API on both backends, in process (httpx's ASGI transport): operator
auth, typed 422s, the page walk and its closing balance, balances, finance and the CSV."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cloud_sync.hq.errors import InputError
from cloud_sync.hq.finance import entries_csv
from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.ledger_api import operator_tokens
from cloud_sync.hq.ledger_api.app import create_app
from cloud_sync.hq.ledger_api.operator_tokens import Operators
from edge_agent.domain.points.accounts import MemberAccount
from tests.hq.ledger.history import History, build, end_of_history
from tests.points.factories import T0, P

TOKEN = "operator-token-for-the-tests-only-0123456789"


@pytest.fixture
def history(store: EventStore) -> History:
    return build(store)


class Client:
    """httpx over the app's ASGI interface, called synchronously on a loop of its own."""

    def __init__(self, app: FastAPI) -> None:
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hq")

    def get(
        self, path: str, *, params: dict[str, Any] | None = None, token: str | None = TOKEN
    ) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return self.loop.run_until_complete(self.http.get(path, params=params, headers=headers))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture
def client(store: EventStore, history: History) -> Iterator[Client]:
    now = end_of_history(history) + timedelta(minutes=1)
    app = create_app(
        store=store, operators=Operators([operator_tokens.digest(TOKEN)]), clock=lambda: now
    )
    c = Client(app)
    yield c
    c.close()


def _get(client: Client, path: str, **params: Any) -> httpx.Response:
    return client.get(path, params={"programme": P, **params})


def test_every_route_refuses_a_missing_or_unknown_token(client: Client) -> None:
    paths = [
        "/v1/members/ann/ledger",
        "/v1/members/ann/balance",
        f"/v1/programmes/{P}/liability",
        f"/v1/programmes/{P}/campaign-report",
        f"/v1/programmes/{P}/entries.csv",
    ]
    for path in paths:
        for auth in (None, "nope", f"{TOKEN}x"):
            got = client.get(path, token=auth)
            assert got.status_code == 401, (path, auth)
            assert got.json()["error"] == "unauthorized"
            assert got.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in got.text


def test_a_page_walk_and_its_closing_balance(client: Client, history: History) -> None:
    start = T0.isoformat()
    seen: list[str] = []
    params: dict[str, Any] = {"from": start}
    while True:
        got = _get(client, "/v1/members/ann/ledger", **params)
        assert got.status_code == 200, got.text
        body = got.json()
        seen += [e["entry_id"] for e in body["entries"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    expected = [
        e.entry_id
        for e in sorted(
            (x for ev in history.booked for x in ev.entries()
             if isinstance(x.posting.account, MemberAccount) and x.posting.account.member == "ann"),
            key=lambda x: (x.at, history.booked.index(x.event), x.index),
            reverse=True,
        )
    ]  # fmt: skip
    assert seen == expected
    closing = body["closing"]
    held = sum(history.ledger.member_balances(P, "ann").values())
    assert closing["closing_balance"] == held == closing["view_net"]
    assert closing["opening_balance"] == 0
    balance = _get(client, "/v1/members/ann/balance").json()
    assert balance["total"] == held
    assert {a["category"] for a in balance["accounts"]} == {"regular", "promised"}


BAD_QUERIES: list[tuple[dict[str, str], str, str]] = [
    ({"channel": "carrier_pigeon"}, "invalid_request", "channel"),
    ({"kind": "gift"}, "invalid_request", "kind"),
    ({"category": "gold"}, "invalid_request", "category"),
    ({"side": "up"}, "invalid_request", "side"),
    ({"from": "2025-03-01T09:00:00"}, "invalid_request", "from"),  # no offset
    ({"to": "yesterday"}, "invalid_request", "to"),
    ({"till": "x" * 200}, "invalid_request", "till"),
    ({"cursor": "bm90IGEgY3Vyc29y"}, "bad_cursor", "cursor"),
    ({"from": "2025-03-02T00:00:00Z", "to": "2025-03-01T00:00:00Z"}, "empty_range", "from"),
    ({"chanel": "web"}, "unknown_parameter", "chanel"),
]


def test_bad_query_values_are_typed_422s(client: Client) -> None:
    for params, error, names in BAD_QUERIES:
        got = _get(client, "/v1/members/ann/ledger", **params)
        assert got.status_code == 422, params
        assert got.json()["error"] == error
        assert names in got.json()["detail"]
    assert _get(client, "/v1/members/bad member/ledger").status_code == 422
    assert client.get(f"/v1/programmes/{P}/liability", params={"seed": -1}).status_code == 422


def test_finance_routes(client: Client, history: History) -> None:
    got = client.get(f"/v1/programmes/{P}/liability", params={"seed": 5})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["member_balances"] == -(body["liability_account"] + body["breakage_account"])
    assert body["value_minor"] <= body["face_minor"] and body["seed"] == 5
    assert client.get(f"/v1/programmes/{P}/liability", params={"seed": 5}).json() == body
    report = client.get(f"/v1/programmes/{P}/campaign-report", params={"from": T0.isoformat()})
    assert report.status_code == 200 and report.json()["campaigns"] == []
    filtered = client.get(f"/v1/programmes/{P}/campaign-report", params={"channel": "web"})
    assert filtered.json()["error"] == "unknown_parameter"  # the report takes a range only
    csv_got = client.get(f"/v1/programmes/{P}/entries.csv", params={"from": T0.isoformat()})
    assert csv_got.status_code == 200
    assert csv_got.headers["content-type"].startswith("text/csv")
    rows = entries_csv.parse(csv_got.text)
    assert [r.entry_id for r in rows] == [x.entry_id for e in history.booked for x in e.entries()]
    one = client.get(
        f"/v1/programmes/{P}/entries.csv", params={"from": T0.isoformat(), "member": "bob"}
    )
    assert {r.holder for r in entries_csv.parse(one.text)} == {"bob"}


def test_the_openapi_document_is_complete(client: Client) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert set(ops) == {
        ("GET", "/v1/members/{member}/ledger"),
        ("GET", "/v1/members/{member}/balance"),
        ("GET", "/v1/programmes/{programme}/liability"),
        ("GET", "/v1/programmes/{programme}/campaign-report"),
        ("GET", "/v1/programmes/{programme}/entries.csv"),
    }
    for key, op in ops.items():
        assert {"200", "401", "422", "503"} <= set(op["responses"]), key
        assert op.get("security") == [{"HTTPBearer": []}], key
        assert op.get("description") or op.get("summary"), key
    names = {p["name"] for p in ops[("GET", "/v1/members/{member}/ledger")]["parameters"]}
    assert names == {
        "member", "programme", "channel", "till", "store", "kind", "side", "category",
        "from", "to", "cursor",
    }  # fmt: skip
    assert (
        "text/csv"
        in ops[("GET", "/v1/programmes/{programme}/entries.csv")]["responses"]["200"]["content"]
    )


def test_token_files(tmp_path: Path) -> None:
    path = tmp_path / "ops.token"
    operator_tokens.create(path)
    assert path.stat().st_mode & 0o077 == 0
    token = path.read_text().strip()
    ops = operator_tokens.load(path)
    assert ops.allows(f"Bearer {token}") and not ops.allows(f"Bearer {token}x")
    assert token not in repr(ops)
    with pytest.raises(InputError, match="exists"):
        operator_tokens.create(path)
    path.chmod(0o644)
    with pytest.raises(InputError, match="chmod 600") as refused:
        operator_tokens.load(path)
    assert token not in str(refused.value)
