"""Whatever a till sends, the POS API answers 200 or a 4xx with a reason, never a 5xx, and the
agent keeps running. Hypothesis generates the bodies; the server is the real one."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Server
from tests.cache.factories import A, G

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
codes = st.sampled_from([A, G, A.lower(), "SS-K7", "", "x" * 70]) | st.text(max_size=20)
lines = st.fixed_dictionaries(
    {
        "sku": st.text(max_size=8),
        "category": st.text(max_size=8),
        "quantity": st.integers(-2, 20_000),
        "unit_price": st.integers(-5, 10**9),
    },
    optional={"margin_band": st.sampled_from(["A", "B", "C", "D"])},
)
bodies = st.fixed_dictionaries(
    {"codes": st.lists(codes, max_size=22), "cashier_id": st.text(max_size=70)},
    optional={
        "member_id": st.none() | st.text(max_size=10),
        "transaction_id": st.text(max_size=10),
        "basket": st.fixed_dictionaries({"lines": st.lists(lines, max_size=3)}),
        "audience": st.sampled_from(["cashier", "customer", "robot"]),
        "extra": json_values,
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    route=st.sampled_from(["/v1/validate", "/v1/reserve", "/v1/commit", "/v1/void"]),
    body=bodies | json_values,
)
def test_any_body_gets_a_typed_answer(server: Server, route: str, body: Any) -> None:
    with server.client() as till:
        r = till.post(route, json=body)
        assert r.status_code < 500, r.text
        if r.status_code >= 400:
            assert set(r.json()) == {"error", "detail"}
        assert till.get("/v1/health").status_code == 200


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(raw=st.binary(max_size=200))
def test_raw_bytes_are_a_422_not_a_crash(server: Server, raw: bytes) -> None:
    with server.client() as till:
        r = till.post("/v1/commit", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code in (200, 400, 422), r.text
        if r.status_code != 200:
            assert set(r.json()) == {"error", "detail"}
